"""The six events of PROTOCOL.md §2 over a real consumer: what each answers, stores and
pushes. The seed's examples are golden: field names, casing and shapes are exact."""

import logging
import re

import pytest
from asgiref.sync import sync_to_async

from chat.entries import local_time
from chat.models import Message
from tests import ws_helpers
from tests.ws_helpers import (
    assert_error_ack,
    db_state,
    get_message,
    message_count,
    ok_ack,
    watermarks,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


# The shared fixtures, under the names tests ask for (see tests/ws_helpers.py).
connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


# -- Login ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/"])
async def test_login_ack_is_exactly_the_seed_example(team, connect, path):
    client = await connect(path)
    await client.send_frame(
        {
            "event": "Login",
            "body": {
                "kind": "Text",
                "uid": team.alice.pk,
                "gid": 3,
                "content": team.token(team.alice),
                "clientMsgId": "badc6d33aebfd40ab3cda",
                "msgId": None,
            },
        }
    )
    assert await client.receive() == {
        "clientMsgId": "badc6d33aebfd40ab3cda",
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }
    await client.assert_quiet()


async def test_tokens_are_never_logged(team, connect, caplog):
    valid = team.token(team.alice)
    wrong = team.token(team.bob)
    with caplog.at_level(logging.DEBUG):
        client = await connect(user=team.alice, token=valid)
        refused = await client.send_event("Login", uid=team.bob.pk, content=wrong)
        await client.ack(refused)
        other = await connect()
        refused = await other.send_event("Login", uid=team.alice.pk, content=wrong)
        assert (await other.ack(refused))["content"] == "auth_failed"
        await client.close()
    assert any(r.name == "rim.ws" for r in caplog.records)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for token in (valid, wrong):
        assert token not in logged
        assert token.replace("-", "") not in logged


async def test_login_binds_the_connection_so_its_messages_are_sent(team, connect):
    bob = await connect(user=team.bob, token=team.token(team.bob))
    alice = await connect()
    refused = await alice.send_event("Msg", uid=team.alice.pk, gid=team.gid, content="early")
    assert_error_ack(await alice.ack(refused), "not_logged_in", refused)
    await alice.login(team.alice, team.token(team.alice))
    msg_id = await alice.msg(team.gid, "now")
    assert (await bob.msg_push())["msgId"] == msg_id


async def test_login_again_as_the_same_user_is_a_fresh_login(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await bob.login(team.bob, team.token(team.bob))
    await alice.msg(team.gid, "once")
    # Joined the layer groups once more, still one push per message.
    assert (await bob.msg_push())["content"] == "once"
    await bob.assert_quiet()


# -- Msg ----------------------------------------------------------------------------------


async def test_msg_ack_carries_the_stored_message_id(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    await alice.send_frame(
        {
            "event": "Msg",
            "body": {
                "kind": "Text",
                "uid": team.alice.pk,
                "gid": team.gid,
                "content": "Hello World",
                "clientMsgId": "badc6d33aebfd40ab3cda",
                "msgId": None,
            },
        }
    )
    ack = await alice.receive()
    assert set(ack) == {"clientMsgId", "serverMsgId", "kind", "content"}
    assert type(ack["serverMsgId"]) is int
    assert ack == ok_ack("badc6d33aebfd40ab3cda", ack["serverMsgId"])
    stored = await get_message(ack["serverMsgId"])
    assert (stored.group_id, stored.sender_id, stored.content, stored.client_msg_id) == (
        team.gid,
        team.alice.pk,
        "Hello World",
        "badc6d33aebfd40ab3cda",
    )


async def test_msg_is_committed_before_its_ack(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    msg_id = await alice.msg(team.gid, "durable")
    # Read from another connection than the consumer's: the row is committed.
    assert await message_count(pk=msg_id, content="durable") == 1


async def test_msg_push_is_exactly_the_seed_shape_with_seq_and_create_time(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    client_msg_id = await alice.send_event("Msg", gid=team.gid, content="Hello World")
    msg_id = (await alice.ack(client_msg_id))["serverMsgId"]
    push = await bob.push()
    stored = await get_message(msg_id)
    assert push == {
        "event": "Msg",
        "body": {
            "kind": "Text",
            "uid": team.alice.pk,
            "gid": team.gid,
            "content": "Hello World",
            "clientMsgId": client_msg_id,
            "msgId": msg_id,
            "seq": stored.seq,
            "createTime": local_time(stored.created_at),
        },
    }
    assert TIME.fullmatch(push["body"]["createTime"])
    assert stored.seq == 1


@pytest.mark.parametrize(
    ("kind", "content"),
    [("Text", "plain"), ("RichText", "<b>rich</b>"), ("Image", "https://example.com/a.png")],
)
async def test_every_kind_is_stored_and_pushed_as_sent(team, connect, kind, content):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(team.gid, content, kind=kind)
    body = await bob.msg_push()
    assert (body["kind"], body["content"], body["msgId"]) == (kind, content, msg_id)
    stored = await get_message(msg_id)
    assert (stored.kind, stored.content) == (kind, content)


async def test_non_ascii_content_is_stored_and_pushed_intact(team, connect):
    content = "héllo wörld \U0001f600 中文 \u2028"
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(team.gid, content)
    assert (await bob.msg_push())["content"] == content
    assert (await get_message(msg_id)).content == content


async def test_sender_connection_gets_no_push_but_its_other_device_does(team, connect):
    sender = await connect(user=team.alice, token=team.token(team.alice))
    other_device = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await sender.msg(team.gid, "from my phone")
    assert (await other_device.msg_push())["msgId"] == msg_id
    assert (await bob.msg_push())["msgId"] == msg_id
    await sender.assert_quiet()
    await other_device.assert_quiet()


async def test_msg_reaches_members_only(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    carol = await connect(user=team.carol, token=team.token(team.carol))
    await alice.msg(team.gid, "members only")
    assert (await bob.msg_push())["content"] == "members only"
    await carol.assert_quiet()


async def test_seqs_count_up_from_one_per_group(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    ids = [await alice.msg(team.gid, f"m{n}") for n in range(3)]
    bodies = await bob.msg_pushes(3)
    assert [b["seq"] for b in bodies] == [1, 2, 3]
    assert [b["msgId"] for b in bodies] == ids
    assert ids == sorted(ids)


async def test_sending_raises_the_senders_own_watermarks(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    await alice.msg(team.gid, "mine")
    assert await watermarks(team.alice, team.gid) == (1, 1)
    assert await watermarks(team.bob, team.gid) == (0, 0)


# -- Ack ----------------------------------------------------------------------------------


async def test_ack_raises_the_delivered_watermark_and_is_acked_with_four_fields(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    first = await alice.msg(team.gid, "one")
    second = await alice.msg(team.gid, "two")
    await bob.msg_pushes(2)
    client_msg_id = await bob.send_event("Ack", gid=team.gid, msg_id=second)
    assert await bob.receive() == {
        "clientMsgId": client_msg_id,
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }
    assert await watermarks(team.bob, team.gid) == (2, 0)
    assert first < second
    # Nobody is told about a delivery.
    await alice.assert_quiet()


async def test_ack_of_an_older_message_is_ok_and_lowers_nothing(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    first = await alice.msg(team.gid, "one")
    second = await alice.msg(team.gid, "two")
    assert (await bob.request("Ack", gid=team.gid, msg_id=second))["content"] == "Ok"
    ack = await bob.request("Ack", gid=team.gid, msg_id=first)
    assert ack == ok_ack(ack["clientMsgId"])
    assert await watermarks(team.bob, team.gid) == (2, 0)


# -- Read ---------------------------------------------------------------------------------


async def test_read_ack_carries_the_msg_id_and_raises_both_watermarks(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await alice.msg(team.gid, "one")
    second = await alice.msg(team.gid, "two")
    client_msg_id = await bob.send_event("Read", gid=team.gid, msg_id=second)
    ack = await bob.ack(client_msg_id)
    assert ack == ok_ack(client_msg_id, second)
    assert await watermarks(team.bob, team.gid) == (2, 2)


async def test_read_is_pushed_to_the_other_members_in_the_contract_shape(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    alice_tablet = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    bob_tablet = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(team.gid, "read me")
    await alice_tablet.msg_push()
    await bob.msg_push()
    await bob_tablet.msg_push()

    client_msg_id = await bob.send_event("Read", gid=team.gid, msg_id=msg_id)
    assert (await bob.ack(client_msg_id))["content"] == "Ok"
    expected = {
        "event": "Read",
        "body": {
            "kind": "Text",
            "uid": team.bob.pk,
            "gid": team.gid,
            "msgId": msg_id,
            "content": "",
            "clientMsgId": client_msg_id,
        },
    }
    assert await alice.push() == expected
    assert await alice_tablet.push() == expected
    # The reader's own devices are not told.
    await bob.assert_quiet()
    await bob_tablet.assert_quiet()


async def test_read_of_an_older_message_is_ok_changes_nothing_and_pushes_nothing(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    first = await alice.msg(team.gid, "one")
    second = await alice.msg(team.gid, "two")
    await bob.request("Read", gid=team.gid, msg_id=second)
    assert (await alice.push())["event"] == "Read"
    ack = await bob.request("Read", gid=team.gid, msg_id=first)
    assert ack == ok_ack(ack["clientMsgId"], first)
    assert await watermarks(team.bob, team.gid) == (2, 2)
    await alice.assert_quiet()


async def test_read_after_ack_keeps_delivered_and_raises_read(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    first = await alice.msg(team.gid, "one")
    second = await alice.msg(team.gid, "two")
    await bob.request("Ack", gid=team.gid, msg_id=second)
    await bob.request("Read", gid=team.gid, msg_id=first)
    assert await watermarks(team.bob, team.gid) == (2, 1)


# -- Heart --------------------------------------------------------------------------------


async def test_heart_before_login_is_acked_with_four_fields(connect):
    client = await connect()
    await client.send_frame({"event": "Heart", "body": {"clientMsgId": "h-1"}})
    assert await client.receive() == {
        "clientMsgId": "h-1",
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }


async def test_heart_after_login_is_acked_and_changes_nothing(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    before = await db_state()
    client_msg_id = await alice.send_event("Heart")
    assert await alice.receive() == ok_ack(client_msg_id)
    assert await db_state() == before


# -- Logout -------------------------------------------------------------------------------


async def test_logout_ack_is_exactly_four_fields_and_unbinds(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    client_msg_id = await alice.send_event("Logout")
    assert await alice.receive() == {
        "clientMsgId": client_msg_id,
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }
    # Unbound: no more pushes, and events that need a login are refused.
    await bob.msg(team.gid, "after logout")
    await alice.assert_quiet()
    refused = await alice.send_event("Msg", gid=team.gid, content="x")
    assert_error_ack(await alice.ack(refused), "not_logged_in", refused)
    assert await message_count(content="x") == 0


async def test_after_logout_the_connection_may_log_in_again(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await alice.request("Logout")
    await alice.login(team.alice, team.token(team.alice))
    await bob.msg(team.gid, "welcome back")
    assert (await alice.msg_push())["content"] == "welcome back"
    await alice.assert_quiet()


async def test_logout_keeps_the_users_other_connections(team, connect):
    phone = await connect(user=team.alice, token=team.token(team.alice))
    laptop = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await phone.request("Logout")
    await bob.msg(team.gid, "still here?")
    assert (await laptop.msg_push())["content"] == "still here?"
    await phone.assert_quiet()


async def test_logout_then_login_as_another_user_is_allowed(team, connect):
    shared = await connect(user=team.alice, token=team.token(team.alice))
    await shared.request("Logout")
    await shared.login(team.bob, team.token(team.bob))
    msg_id = await shared.msg(team.gid, "as bob")
    assert (await get_message(msg_id)).sender_id == team.bob.pk


async def test_a_stored_message_is_visible_to_rest_history(team, connect, client_for):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    msg_id = await alice.msg(team.gid, "history")
    api = await sync_to_async(client_for)(team.bob)
    response = await sync_to_async(api.post)(
        "/api/message/history",
        {"gid": team.gid, "uid": team.alice.pk, "page": 1, "size": 10},
        format="json",
    )
    assert [entry["msg"]["id"] for entry in response.json()["data"]] == [msg_id]
    assert await sync_to_async(Message.objects.filter(pk=msg_id).exists)()
