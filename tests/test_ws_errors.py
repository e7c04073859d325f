"""Every error code of PROTOCOL.md §4, where §4 says it. Each refusal is one error
MsgAck; nothing is stored (messages, watermarks, groups unchanged), nothing is pushed
to any other connection, and the refused connection stays open and serving."""

import asyncio
import json
import logging
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import Token, User
from chat import consumers, services
from infra import metrics, presence
from tests import ws_helpers
from tests.ws_helpers import (
    assert_all_quiet,
    assert_error_ack,
    db_state,
    layer_is_remote,
    message_count,
    store_message,
    watermarks,
)

pytestmark = pytest.mark.django_db(transaction=True)


# The shared fixtures, under the names tests ask for (see tests/ws_helpers.py).
connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


def settle() -> float:
    """Time for a control event (token revoked, member left) to cross the layer."""
    return 0.5 if layer_is_remote() else 0.05


@pytest.fixture
async def room(team, connect):
    """alice logged in on two devices, bob on one: every test's bystanders."""

    class Room:
        pass

    room = Room()
    room.team = team
    room.alice = await connect(user=team.alice, token=team.token(team.alice))
    room.alice_tablet = await connect(user=team.alice, token=team.token(team.alice))
    room.bob = await connect(user=team.bob, token=team.token(team.bob))
    room.before = await db_state()

    async def refused(client, client_msg_id, code):
        """`client`'s event was refused with `code`, and nothing else happened."""
        ack = await client.ack(client_msg_id)
        assert_error_ack(ack, code, client_msg_id)
        assert await db_state() == room.before
        bystanders = [c for c in (room.alice, room.alice_tablet, room.bob) if c is not client]
        await client.assert_open()
        await assert_all_quiet(client, *bystanders)
        return ack

    room.last_seq = 0

    async def team_message() -> int:
        """A message of alice's in the group, delivered to everyone, before the test's
        refusal: something to Ack or Read."""
        msg_id = await room.alice.msg(team.gid, "earlier")
        await room.bob.msg_push()
        await room.alice_tablet.msg_push()
        room.last_seq += 1
        room.before = await db_state()
        return msg_id

    async def still_delivers():
        """Live delivery still works, and alice's next message takes the next seq: no
        message was stored (or skipped) in between."""
        msg_id = await room.alice.msg(team.gid, "still fine")
        room.last_seq += 1
        for receiver in (room.bob, room.alice_tablet):
            body = await receiver.msg_push()
            assert (body["msgId"], body["seq"]) == (msg_id, room.last_seq)

    room.refused = refused
    room.team_message = team_message
    room.still_delivers = still_delivers
    return room


def msg_frame(uid: int, gid: int, **body) -> dict:
    return {
        "event": "Msg",
        "body": {
            "kind": "Text",
            "uid": uid,
            "gid": gid,
            "content": "hi",
            "clientMsgId": "err-1",
            "msgId": None,
        }
        | body,
    }


# -- bad_json -----------------------------------------------------------------------------


NOT_JSON_OBJECTS = [
    "not json",
    '{"event": "Msg", "body": ',
    '{"event": "Msg", "body": {"clientMsgId": "nan", "content": NaN}}',
    '{"event": "Msg", "body": {"clientMsgId": "inf", "gid": Infinity}}',
    '{"event": "Msg", "body": {"clientMsgId": "sur", "content": "\\ud800"}}',
    '[{"event": "Msg", "body": {"clientMsgId": "list"}}]',
    '"Msg"',
    "42",
    "null",
    " ",
]


async def test_a_frame_that_is_not_a_json_object_is_bad_json(room):
    for text in NOT_JSON_OBJECTS:
        await room.alice.send_raw(text)
        # Nothing in such a frame can be trusted, also not a clientMsgId.
        await room.refused(room.alice, None, "bad_json")
    await room.still_delivers()


async def test_a_binary_frame_is_bad_json_even_if_it_holds_a_valid_event(room):
    frame = msg_frame(room.team.alice.pk, room.team.gid, clientMsgId="binary-1")
    await room.alice.send_raw(data=json.dumps(frame).encode())
    await room.refused(room.alice, None, "bad_json")
    await room.alice.send_raw(data=b"\x00\xff\xfe")
    await room.refused(room.alice, None, "bad_json")
    await room.alice.send_raw(data=b"")
    await room.refused(room.alice, None, "bad_json")
    await room.still_delivers()


async def test_bad_json_before_login_keeps_the_connection(team, connect):
    client = await connect()
    await client.send_raw("{oops")
    assert_error_ack(await client.ack(None), "bad_json", None)
    await client.assert_open()
    await client.login(team.alice, team.token(team.alice))


# -- invalid_event --------------------------------------------------------------------------


async def test_an_unknown_event_is_invalid_event_and_echoes_the_client_msg_id(room):
    for event in [None, "msg", "MSG", "Push", "", 7, True, ["Msg"], {"Msg": 1}]:
        await room.alice.send_frame(
            msg_frame(room.team.alice.pk, room.team.gid, clientMsgId="ev-1") | {"event": event}
        )
        await room.refused(room.alice, "ev-1", "invalid_event")
    await room.still_delivers()


async def test_a_missing_event_is_invalid_event(room):
    frame = msg_frame(room.team.alice.pk, room.team.gid, clientMsgId="ev-2")
    del frame["event"]
    await room.alice.send_frame(frame)
    await room.refused(room.alice, "ev-2", "invalid_event")


# -- invalid_body ---------------------------------------------------------------------------


BAD_MSG_FIELDS = [
    ({"clientMsgId": ""}, None),
    ({"clientMsgId": "x" * 65}, None),
    ({"clientMsgId": 12}, None),
    ({"clientMsgId": None}, None),
    ({"kind": "Video"}, "ib"),
    ({"kind": None}, "ib"),
    ({"kind": ["Text"]}, "ib"),
    ({"gid": "GID"}, "ib"),
    ({"gid": True}, "ib"),
    ({"gid": None}, "ib"),
    ({"gid": 1.5}, "ib"),
    ({"uid": None}, "ib"),
    ({"uid": -1}, "ib"),
    ({"content": 5}, "ib"),
    ({"content": ""}, "ib"),
    ({"content": "a\x00b"}, "ib"),
    ({"msgId": "1"}, "ib"),
    ({"msgId": 2**63}, "ib"),
]


async def test_a_msg_with_a_bad_field_is_invalid_body(room):
    base = msg_frame(room.team.alice.pk, room.team.gid, clientMsgId="ib")
    for change, echo in BAD_MSG_FIELDS:
        await room.alice.send_frame({"event": "Msg", "body": base["body"] | change})
        await room.refused(room.alice, echo, "invalid_body")
    await room.still_delivers()


async def test_a_missing_or_non_object_body_is_invalid_body(room):
    for frame in [{"event": "Msg"}, *({"event": "Msg", "body": b} for b in (None, [], "b", 3))]:
        await room.alice.send_frame(frame)
        await room.refused(room.alice, None, "invalid_body")


@pytest.mark.parametrize("event", ["Ack", "Read"])
async def test_ack_and_read_without_msg_id_are_invalid_body(room, event):
    client_msg_id = await room.alice.send_event(event, gid=room.team.gid, msg_id=None)
    await room.refused(room.alice, client_msg_id, "invalid_body")


# -- not_logged_in --------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["Msg", "Ack", "Read", "Logout"])
async def test_events_before_login_are_not_logged_in(room, connect, event):
    stranger = await connect()
    client_msg_id = await stranger.send_event(
        event,
        uid=room.team.alice.pk,
        gid=room.team.gid,
        msg_id=room.team.side_msg_id,
        content="sneaky",
    )
    await room.refused(stranger, client_msg_id, "not_logged_in")
    await room.still_delivers()
    # Not bound by the refused event: alice's message is not pushed to it.
    await stranger.assert_quiet()


async def test_a_failed_login_leaves_the_connection_not_logged_in(room, connect):
    stranger = await connect()
    login = await stranger.send_event("Login", uid=room.team.alice.pk, content=str(uuid.uuid4()))
    await room.refused(stranger, login, "auth_failed")
    sent = await stranger.send_event("Msg", uid=room.team.alice.pk, gid=room.team.gid, content="x")
    await room.refused(stranger, sent, "not_logged_in")


# -- auth_failed ----------------------------------------------------------------------------


@sync_to_async
def expired_token(user: User) -> str:
    key = str(uuid.uuid4())
    Token.objects.create(
        key_hash=accounts.hash_token(key),
        user=user,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    return key


@sync_to_async
def revoked_token(user: User) -> str:
    key = accounts.issue_token(account=user.account, password="secret-pw")
    token = Token.objects.get(key_hash=accounts.hash_token(key))
    accounts.revoke_token(token_id=token.pk)
    return key


@sync_to_async
def token_of_deactivated_user(user: User) -> str:
    key = accounts.issue_token(account=user.account, password="secret-pw")
    # Straight to the row: the token survives, only the user is inactive.
    User.objects.filter(pk=user.pk).update(is_active=False)
    return key


@pytest.mark.parametrize(
    "case", ["unknown", "not a uuid", "expired", "revoked", "other user's", "deactivated user"]
)
async def test_login_with_a_token_that_is_not_valid_for_the_uid_is_auth_failed(team, connect, case):
    carol = team.carol
    if case == "unknown":
        key = str(uuid.uuid4())
    elif case == "not a uuid":
        key = "null"
    elif case == "expired":
        key = await expired_token(carol)
    elif case == "revoked":
        key = await revoked_token(carol)
    elif case == "other user's":
        key = team.token(team.dave)
    else:
        key = await token_of_deactivated_user(carol)
    dave = await connect(user=team.dave, token=team.token(team.dave))
    assert (await dave.msg_push())["content"] == "elsewhere"  # his own backlog
    client = await connect()
    before = await db_state()
    client_msg_id = await client.send_event("Login", uid=carol.pk, content=key)
    assert_error_ack(await client.ack(client_msg_id), "auth_failed", client_msg_id)
    assert await db_state() == before
    await client.assert_open()
    # Not bound: nothing of carol's group reaches it, and it cannot send as carol.
    sent = await client.send_event("Msg", uid=carol.pk, gid=team.side_gid, content="as carol?")
    assert_error_ack(await client.ack(sent), "not_logged_in", sent)
    await dave.assert_quiet()
    await dave.msg(team.side_gid, "to carol")
    await client.assert_quiet()
    assert await db_state() != before  # dave's message is stored: the check can see one


async def test_a_token_expiring_on_a_bound_connection_fails_its_next_event_and_unbinds(
    team, connect
):
    key = str(uuid.uuid4())
    await sync_to_async(Token.objects.create)(
        key_hash=accounts.hash_token(key),
        user=team.alice,
        expires_at=timezone.now() + timedelta(seconds=0.5),
    )
    alice = await connect(user=team.alice, token=key)
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await alice.msg(team.gid, "while valid")
    assert (await bob.msg_push())["content"] == "while valid"
    await asyncio.sleep(0.6)

    before = await db_state()
    sent = await alice.send_event("Msg", gid=team.gid, content="after expiry")
    assert_error_ack(await alice.ack(sent), "auth_failed", sent)
    assert await db_state() == before
    await bob.assert_quiet()
    # Unbound: bob's messages no longer reach it, its events are refused.
    await bob.msg(team.gid, "anyone?")
    await alice.assert_quiet()
    again = await alice.send_event("Ack", gid=team.gid, msg_id=1)
    assert (await alice.ack(again))["content"] in {"auth_failed", "not_logged_in"}
    # It stays open and may log in again with a valid token.
    await alice.assert_open()
    await alice.login(team.alice, team.token(team.alice))


async def test_a_token_revoked_by_rest_logout_fails_its_next_event_and_unbinds(team, connect):
    key = team.token(team.alice)
    alice = await connect(user=team.alice, token=key)
    other_device = await connect(user=team.alice, token=key)
    tablet_key = await sync_to_async(accounts.issue_token)(
        account=team.alice.account, password="secret-pw"
    )
    tablet = await connect(user=team.alice, token=tablet_key)
    bob = await connect(user=team.bob, token=team.token(team.bob))

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = await sync_to_async(api.post)("/api/user/logout", format="json")
    assert response.json()["data"] is True
    await asyncio.sleep(settle())

    before = await db_state()
    for client in (alice, other_device):
        sent = await client.send_event("Msg", gid=team.gid, content="after logout")
        assert_error_ack(await client.ack(sent), "auth_failed", sent)
        await client.assert_open()
    assert await db_state() == before
    await bob.assert_quiet()
    # Both connections of the revoked token are unbound; the tablet's token lives on.
    msg_id = await bob.msg(team.gid, "who is there?")
    assert (await tablet.msg_push())["msgId"] == msg_id
    await alice.assert_quiet()
    await other_device.assert_quiet()


# -- uid_mismatch ---------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["Msg", "Ack", "Read", "Logout"])
async def test_an_event_for_another_uid_is_uid_mismatch(room, event):
    msg_id = await room.team_message()
    client_msg_id = await room.alice.send_event(
        event, uid=room.team.bob.pk, gid=room.team.gid, msg_id=msg_id, content="spoofed"
    )
    await room.refused(room.alice, client_msg_id, "uid_mismatch")


async def test_a_spoofed_uid_is_never_stored_or_pushed(room):
    for uid in (room.team.bob.pk, room.team.carol.pk, 10**12):
        client_msg_id = await room.alice.send_event(
            "Msg", uid=uid, gid=room.team.gid, content="I am someone else"
        )
        await room.refused(room.alice, client_msg_id, "uid_mismatch")
    assert await message_count(content="I am someone else") == 0
    await room.still_delivers()


async def test_login_as_another_user_on_a_bound_connection_is_uid_mismatch(room):
    client_msg_id = await room.alice.send_event(
        "Login", uid=room.team.bob.pk, content=room.team.token(room.team.bob)
    )
    await room.refused(room.alice, client_msg_id, "uid_mismatch")
    # Still alice's: what it sends is alice's, and bob's messages reach it.
    await room.still_delivers()
    msg_id = await room.bob.msg(room.team.gid, "to alice")
    assert (await room.alice.msg_push())["msgId"] == msg_id
    assert (await room.alice_tablet.msg_push())["msgId"] == msg_id


# -- not_member -----------------------------------------------------------------------------


async def test_a_msg_from_a_non_member_is_not_member_and_not_stored(room, connect):
    carol = await connect(user=room.team.carol, token=room.team.token(room.team.carol))
    client_msg_id = await carol.send_event("Msg", gid=room.team.gid, content="let me in")
    await room.refused(carol, client_msg_id, "not_member")
    assert await message_count(content="let me in") == 0
    await room.still_delivers()


async def test_a_missing_group_and_a_foreign_group_are_refused_alike(room, connect):
    carol = await connect(user=room.team.carol, token=room.team.token(room.team.carol))
    missing_gid = room.team.gid + 10**9
    foreign = await carol.send_event("Msg", gid=room.team.gid, content="x")
    foreign_ack = await room.refused(carol, foreign, "not_member")
    missing = await carol.send_event("Msg", gid=missing_gid, content="x")
    missing_ack = await room.refused(carol, missing, "not_member")
    assert foreign_ack["detail"].replace(str(room.team.gid), "G") == missing_ack["detail"].replace(
        str(missing_gid), "G"
    )


@pytest.mark.parametrize("event", ["Ack", "Read"])
@pytest.mark.parametrize("where", ["foreign", "missing"])
async def test_ack_and_read_in_a_group_of_others_are_not_member(room, connect, event, where):
    msg_id = await room.team_message()
    carol = await connect(user=room.team.carol, token=room.team.token(room.team.carol))
    gid = room.team.gid if where == "foreign" else room.team.gid + 10**9
    client_msg_id = await carol.send_event(event, gid=gid, msg_id=msg_id)
    await room.refused(carol, client_msg_id, "not_member")


# -- unknown_message ------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["Ack", "Read"])
@pytest.mark.parametrize("where", ["another group's", "missing"])
async def test_ack_and_read_of_a_message_not_in_the_group_are_unknown_message(room, event, where):
    await room.team_message()
    msg_id = room.team.side_msg_id if where == "another group's" else 10**12
    client_msg_id = await room.bob.send_event(event, gid=room.team.gid, msg_id=msg_id)
    await room.refused(room.bob, client_msg_id, "unknown_message")
    assert await watermarks(room.team.bob, room.team.gid) == (0, 0)


# -- content_too_large ----------------------------------------------------------------------


async def test_content_over_the_default_limit_is_content_too_large(room):
    client_msg_id = await room.alice.send_event("Msg", gid=room.team.gid, content="a" * 65537)
    await room.refused(room.alice, client_msg_id, "content_too_large")
    await room.still_delivers()


async def test_content_limit_counts_utf8_bytes(room, settings):
    settings.RIM_MAX_CONTENT = 100
    client_msg_id = await room.alice.send_event("Msg", gid=room.team.gid, content="é" * 51)
    await room.refused(room.alice, client_msg_id, "content_too_large")
    msg_id = await room.alice.msg(room.team.gid, "é" * 50)
    assert (await room.bob.msg_push())["msgId"] == msg_id


async def test_a_frame_over_the_limit_that_reaches_the_application_closes_with_4009(room):
    """rim's server refuses such a frame in its transport with 1009 (tests/e2e); under
    another ASGI server the application sees it, and may only use a 4xxx code."""
    await room.alice.send_event("Msg", gid=room.team.gid, content="a" * (4 * 65536 + 1))
    await room.alice.expect_close(4009)
    assert not room.alice.inbox
    assert await db_state() == room.before
    await room.bob.assert_quiet()
    msg_id = await room.alice_tablet.msg(room.team.gid, "still here")
    assert (await room.bob.msg_push())["msgId"] == msg_id


async def test_a_binary_frame_over_the_limit_closes_with_4009(room, settings):
    settings.RIM_MAX_FRAME = 1000
    await room.bob.send_raw(data=b"x" * 1001)
    await room.bob.expect_close(4009)
    await room.alice.assert_quiet()
    await room.alice.msg(room.team.gid, "bob is gone")
    assert (await room.alice_tablet.msg_push())["content"] == "bob is gone"


# -- rate_limited ---------------------------------------------------------------------------


async def test_an_event_over_the_rate_limit_is_rate_limited_and_dropped(team, connect, settings):
    settings.RIM_RATE_LIMIT = 2
    settings.RIM_RATE_BURST = 3
    bob = await connect(user=team.bob, token=team.token(team.bob))
    before = await db_state()
    alice = await connect(user=team.alice, token=team.token(team.alice))  # token 1 of 3
    sent = [await alice.send_event("Msg", gid=team.gid, content=f"m{n}") for n in range(3)]
    for client_msg_id in sent[:2]:
        assert (await alice.ack(client_msg_id))["content"] == "Ok"
    assert_error_ack(await alice.ack(sent[2]), "rate_limited", sent[2])
    assert [b["content"] for b in await bob.msg_pushes(2)] == ["m0", "m1"]
    await bob.assert_quiet()
    assert await message_count(content="m2") == 0
    assert (await db_state())[0] == before[0] + 2
    await asyncio.sleep(0.55)
    await alice.assert_open()


async def test_unreadable_frames_count_against_the_rate_limit(team, connect, settings):
    settings.RIM_RATE_LIMIT = 0.001
    settings.RIM_RATE_BURST = 2
    alice = await connect()
    for _ in range(2):
        await alice.send_raw("not json")
        assert_error_ack(await alice.receive(), "bad_json", None)
    await alice.send_raw("still not json")
    assert_error_ack(await alice.receive(), "rate_limited", None)


async def test_a_full_burst_of_refusals_in_a_row_closes_the_connection(team, connect, settings):
    settings.RIM_RATE_LIMIT = 0.001
    settings.RIM_RATE_BURST = 2
    alice = await connect()
    for _ in range(2):
        assert (await alice.request("Heart"))["content"] == "Ok"
    for _ in range(2):
        assert (await alice.request("Heart"))["content"] == "rate_limited"
    assert (await alice.comm.receive_output(timeout=1)) == {"type": "websocket.close", "code": 4008}


# -- server_error ---------------------------------------------------------------------------


def failing_after(service):
    """`service`, run for real inside a transaction that then fails unexpectedly: the
    rows it wrote are rolled back, as when the database breaks before the commit."""

    def run_then_fail(**kwargs):
        with transaction.atomic():
            service(**kwargs)
            raise RuntimeError("kaboom: secret internals at /srv/db")

    return run_then_fail


async def test_an_unexpected_failure_in_send_is_server_error_rolled_back_and_hidden(
    room, monkeypatch, caplog
):
    monkeypatch.setattr(consumers.services, "send_message", failing_after(services.send_message))
    with caplog.at_level(logging.ERROR, logger="rim.ws"):
        client_msg_id = await room.alice.send_event("Msg", gid=room.team.gid, content="boom")
        ack = await room.refused(room.alice, client_msg_id, "server_error")
    assert "kaboom" not in str(ack)
    assert "secret" not in str(ack)
    assert "RuntimeError" not in str(ack)
    errors = [r for r in caplog.records if r.name == "rim.ws" and r.exc_info]
    assert errors
    assert errors[0].exc_info[0] is RuntimeError
    # Nothing of the failed attempt was kept: the retry stores it, once.
    monkeypatch.undo()
    retry = await room.alice.send_event(
        "Msg", gid=room.team.gid, content="boom", client_msg_id=client_msg_id
    )
    msg_id = (await room.alice.ack(retry))["serverMsgId"]
    assert (await room.bob.msg_push())["msgId"] == msg_id
    assert await message_count(client_msg_id=client_msg_id) == 1


async def test_an_unexpected_failure_in_read_is_server_error_and_pushes_nothing(room, monkeypatch):
    msg_id = await room.team_message()
    monkeypatch.setattr(consumers.services, "mark_read", failing_after(services.mark_read))
    client_msg_id = await room.bob.send_event("Read", gid=room.team.gid, msg_id=msg_id)
    await room.refused(room.bob, client_msg_id, "server_error")
    assert await watermarks(room.team.bob, room.team.gid) == (0, 0)


async def assert_login_fails_whole(bob, team) -> None:
    """Bob's Login gets one server_error ack, without the failure's details, and leaves
    the connection not half logged in: a Msg is refused like before any Login."""
    bob.uid = team.bob.pk
    login = await bob.send_event("Login", content=team.token(team.bob))
    frames = await bob.drain()
    assert len(frames) == 1, frames
    assert_error_ack(frames[0], "server_error", login)
    assert "kaboom" not in str(frames[0])
    sent = await bob.send_event("Msg", gid=team.gid, content="x")
    assert_error_ack(await bob.ack(sent), "not_logged_in", sent)
    assert await message_count(content="x") == 0


async def test_a_failing_offline_sync_fails_the_login_with_one_server_error(
    team, connect, monkeypatch
):
    await store_message(team.alice, team.gid, "backlog")

    def broken_sync_state(**kwargs):
        raise RuntimeError("kaboom: database went away")

    monkeypatch.setattr(consumers.services, "sync_state", broken_sync_state)
    bob = await connect()
    await assert_login_fails_whole(bob, team)
    # Once the database answers again, Login works and the backlog arrives.
    monkeypatch.undo()
    await bob.login(team.bob, team.token(team.bob))
    assert (await bob.msg_push())["content"] == "backlog"


async def test_a_login_whose_layer_join_fails_is_one_server_error_and_not_bound(
    team, connect, monkeypatch
):
    layer = get_channel_layer()
    real_group_add = layer.group_add

    async def redis_down(group, channel):
        if group.startswith("g."):
            raise ConnectionError("kaboom: the layer is unreachable")
        await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", redis_down)
    bob = await connect()
    logged_in = metrics.LOGGED_IN.value
    await assert_login_fails_whole(bob, team)
    # Never counted as logged in, nor seen online (nor, later, offline).
    assert metrics.LOGGED_IN.value == logged_in
    assert not await presence.tracker().online({team.bob.pk})
