"""Delivery guarantees of PROTOCOL.md §3 over real consumers: offline sync, multi-device,
live membership, idempotent send, order without gaps or duplicates (also when the
channel layer loses an event), and the connection lifecycle (deactivation, idle)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import User
from chat import consumers, services
from chat.entries import local_time
from chat.models import Group
from tests import ws_helpers
from tests.ws_helpers import (
    DroppingLayer,
    assert_all_quiet,
    assert_error_ack,
    issue_token,
    message_count,
    new_client_msg_id,
    ok_ack,
    store_message,
    watermarks,
)

pytestmark = pytest.mark.django_db(transaction=True)


# The shared fixtures, under the names tests ask for (see tests/ws_helpers.py).
connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


async def rest(user: User, route: str, data: dict):
    """POST a REST route as `user`; returns the envelope's data, which must be ok."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {await issue_token(user)}")
    response = await sync_to_async(api.post)(f"/api/{route}", data, format="json")
    body = response.json()
    assert body["ok"], body
    return body["data"]


def seqs(bodies: list[dict]) -> list[int]:
    return [body["seq"] for body in bodies]


# -- offline sync -------------------------------------------------------------------------


async def test_login_pushes_undelivered_messages_oldest_first_right_after_the_ack(team, connect):
    stored = [await store_message(team.alice, team.gid, f"while away {n}") for n in range(3)]
    bob = await connect()
    bob.uid = team.bob.pk
    client_msg_id = await bob.send_event("Login", content=team.token(team.bob))
    # The ack comes first, then the backlog as ordinary Msg pushes.
    assert await bob.receive() == ok_ack(client_msg_id)
    bodies = await bob.msg_pushes(3)
    assert [b["msgId"] for b in bodies] == [m.pk for m in stored]
    assert seqs(bodies) == [1, 2, 3]
    assert bodies[0] == {
        "kind": "Text",
        "uid": team.alice.pk,
        "gid": team.gid,
        "content": "while away 0",
        "clientMsgId": stored[0].client_msg_id,
        "msgId": stored[0].pk,
        "seq": 1,
        "createTime": local_time(stored[0].created_at),
    }
    await bob.assert_quiet()


async def test_sync_sends_the_newest_messages_up_to_the_limit_per_group(team, connect, settings):
    settings.RIM_SYNC_LIMIT = 3
    other = await sync_to_async(services.create_group)(
        creator=team.alice, name="second", avatar="", mode=Group.GROUP, members={team.bob.pk: 1}
    )
    for n in range(5):
        await store_message(team.alice, team.gid, f"team {n}")
    for n in range(4):
        await store_message(team.alice, other.pk, f"second {n}")
    bob = await connect(user=team.bob, token=team.token(team.bob))
    bodies = await bob.msg_pushes(6)
    by_group = {gid: [b["seq"] for b in bodies if b["gid"] == gid] for gid in (team.gid, other.pk)}
    assert by_group == {team.gid: [3, 4, 5], other.pk: [2, 3, 4]}
    await bob.assert_quiet()
    # Live delivery carries on from the newest seq: the skipped ones stay in history.
    alice = await connect(user=team.alice, token=team.token(team.alice))
    await alice.msg(team.gid, "live")
    assert seqs([await bob.msg_push()]) == [6]
    await bob.assert_quiet()


async def test_acked_messages_are_not_synced_again(team, connect):
    stored = [await store_message(team.alice, team.gid, f"m{n}") for n in range(3)]
    first = await connect(user=team.bob, token=team.token(team.bob))
    assert seqs(await first.msg_pushes(3)) == [1, 2, 3]
    await first.request("Ack", gid=team.gid, msg_id=stored[1].pk)
    await first.close()

    second = await connect(user=team.bob, token=team.token(team.bob))
    assert [b["msgId"] for b in await second.msg_pushes(1)] == [stored[2].pk]
    await second.assert_quiet()
    await second.request("Ack", gid=team.gid, msg_id=stored[2].pk)
    await second.close()

    third = await connect(user=team.bob, token=team.token(team.bob))
    await third.assert_quiet()


async def test_read_messages_are_not_synced_again(team, connect):
    stored = [await store_message(team.alice, team.gid, f"m{n}") for n in range(2)]
    first = await connect(user=team.bob, token=team.token(team.bob))
    await first.msg_pushes(2)
    await first.request("Read", gid=team.gid, msg_id=stored[1].pk)
    second = await connect(user=team.bob, token=team.token(team.bob))
    await second.assert_quiet()


async def test_unacked_messages_are_synced_again_at_the_next_login(team, connect):
    await store_message(team.alice, team.gid, "once")
    first = await connect(user=team.bob, token=team.token(team.bob))
    assert (await first.msg_push())["content"] == "once"
    await first.close()
    second = await connect(user=team.bob, token=team.token(team.bob))
    assert (await second.msg_push())["content"] == "once"


async def test_own_messages_are_not_synced_to_the_sender(team, connect):
    await store_message(team.alice, team.gid, "mine")
    alice = await connect(user=team.alice, token=team.token(team.alice))
    await alice.assert_quiet()


async def test_sync_covers_only_the_users_groups(team, connect):
    await store_message(team.carol, team.side_gid, "side talk")
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await bob.assert_quiet()
    dave = await connect(user=team.dave, token=team.token(team.dave))
    # dave has carol's fixture message and this one.
    assert [b["content"] for b in await dave.msg_pushes(2)] == ["elsewhere", "side talk"]


# -- multi-device --------------------------------------------------------------------------


async def test_every_device_of_a_user_gets_every_push_once(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    phone = await connect(user=team.bob, token=team.token(team.bob))
    laptop = await connect("/", user=team.bob, token=await issue_token(team.bob))
    ids = [await alice.msg(team.gid, f"m{n}") for n in range(3)]
    for device in (phone, laptop):
        assert [b["msgId"] for b in await device.msg_pushes(3)] == ids
    await assert_all_quiet(phone, laptop, alice)


async def test_each_device_gets_the_backlog_at_its_own_login(team, connect):
    await store_message(team.alice, team.gid, "backlog")
    phone = await connect(user=team.bob, token=team.token(team.bob))
    laptop = await connect(user=team.bob, token=team.token(team.bob))
    for device in (phone, laptop):
        assert (await device.msg_push())["content"] == "backlog"


# -- live membership ----------------------------------------------------------------------


async def test_a_member_added_over_rest_receives_the_groups_next_messages(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    await alice.msg(team.gid, "before carol")
    carol = await connect(user=team.carol, token=team.token(team.carol))
    carol_tablet = await connect(user=team.carol, token=team.token(team.carol))
    await carol.assert_quiet()
    assert (
        await rest(
            team.alice, "group/user/change", {"gid": team.gid, "uids": [team.carol.pk], "opType": 1}
        )
        is True
    )
    msg_id = await alice.msg(team.gid, "welcome carol")
    for device in (carol, carol_tablet):
        body = await device.msg_push()
        assert (body["msgId"], body["seq"], body["content"]) == (msg_id, 2, "welcome carol")
    await assert_all_quiet(carol, carol_tablet)
    # And carol may now send there; alice hears it.
    sent = await carol.msg(team.gid, "thanks")
    assert (await alice.msg_push())["msgId"] == sent
    assert (await carol_tablet.msg_push())["msgId"] == sent


async def test_a_member_added_by_the_service_receives_the_groups_next_messages(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    dave = await connect(user=team.dave, token=team.token(team.dave))
    assert (await dave.msg_push())["content"] == "elsewhere"  # the sync of his own group
    await sync_to_async(services.change_members)(
        user=team.alice, gid=team.gid, uids=[team.dave.pk], op=services.ADD
    )
    msg_id = await alice.msg(team.gid, "hi dave")
    assert (await dave.msg_push())["msgId"] == msg_id
    await dave.assert_quiet()


async def test_a_removed_member_receives_nothing_more_at_once(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await alice.msg(team.gid, "before")
    assert (await bob.msg_push())["content"] == "before"
    assert (
        await rest(
            team.alice, "group/user/change", {"gid": team.gid, "uids": [team.bob.pk], "opType": 2}
        )
        is True
    )
    await alice.msg(team.gid, "after")
    await bob.assert_quiet()
    refused = await bob.send_event("Msg", gid=team.gid, content="can I?")
    assert_error_ack(await bob.ack(refused), "not_member", refused)
    assert await message_count(content="can I?") == 0


async def test_a_member_who_leaves_receives_nothing_more(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await rest(team.bob, "group/user/change", {"gid": team.gid, "uids": [team.bob.pk], "opType": 2})
    await alice.msg(team.gid, "bob left")
    await bob.assert_quiet()


async def test_a_member_removed_then_added_again_follows_the_group_again(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await rest(
        team.alice, "group/user/change", {"gid": team.gid, "uids": [team.bob.pk], "opType": 2}
    )
    await alice.msg(team.gid, "missed")
    await rest(
        team.alice, "group/user/change", {"gid": team.gid, "uids": [team.bob.pk], "opType": 1}
    )
    msg_id = await alice.msg(team.gid, "back")
    body = await bob.msg_push()
    assert (body["msgId"], body["seq"]) == (msg_id, 2)
    await bob.assert_quiet()


async def test_a_new_group_reaches_its_creators_and_members_open_connections(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    alice_tablet = await connect(user=team.alice, token=team.token(team.alice))
    carol = await connect(user=team.carol, token=team.token(team.carol))
    gid = await rest(
        team.alice,
        "group/create",
        {
            "group": {"name": "new", "avatar": "", "mode": 2, "creatorUid": team.alice.pk},
            "users": [{"uid": team.carol.pk, "role": 1}],
        },
    )
    sent = await carol.msg(gid, "first in the new group")
    for device in (alice, alice_tablet):
        body = await device.msg_push()
        assert (body["msgId"], body["gid"], body["seq"]) == (sent, gid, 1)
    reply = await alice.msg(gid, "reply")
    assert (await carol.msg_push())["msgId"] == reply
    assert (await alice_tablet.msg_push())["msgId"] == reply


async def test_an_accepted_friend_request_opens_a_live_one_to_one_chat(team, connect):
    carol = await connect(user=team.carol, token=team.token(team.carol))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await rest(team.carol, "friend/add", {"fid": team.bob.pk})
    await rest(team.bob, "friend/status/modify", {"fid": team.carol.pk, "status": 1})
    gid = await sync_to_async(
        lambda: Group.objects.get(pair_key=services.pair_key(team.bob.pk, team.carol.pk)).pk
    )()
    sent = await bob.msg(gid, "hello friend")
    assert (await carol.msg_push())["msgId"] == sent


# -- idempotent send ----------------------------------------------------------------------


async def test_a_retried_msg_is_acked_with_the_same_id_and_stored_and_pushed_once(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    alice_tablet = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    client_msg_id = new_client_msg_id()
    first = await alice.msg(team.gid, "once", client_msg_id=client_msg_id)
    second = await alice.msg(team.gid, "once", client_msg_id=client_msg_id)
    assert first == second
    assert await message_count(client_msg_id=client_msg_id) == 1
    for receiver in (bob, alice_tablet):
        assert (await receiver.msg_push())["msgId"] == first
    await assert_all_quiet(alice, alice_tablet, bob)


async def test_a_retry_from_another_connection_returns_the_first_message(team, connect):
    phone = await connect(user=team.alice, token=team.token(team.alice))
    laptop = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    client_msg_id = new_client_msg_id()
    first = await phone.msg(team.gid, "same", client_msg_id=client_msg_id)
    assert (await laptop.msg_push())["msgId"] == first
    # Even with other content: the clientMsgId names the message.
    assert await laptop.msg(team.gid, "changed", client_msg_id=client_msg_id) == first
    assert (await bob.msg_push())["content"] == "same"
    await assert_all_quiet(phone, laptop, bob)
    assert await message_count(client_msg_id=client_msg_id) == 1


async def test_concurrent_sends_of_one_client_msg_id_store_and_push_one_message(team, connect):
    phone = await connect(user=team.alice, token=team.token(team.alice))
    laptop = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    rounds = 5
    for n in range(rounds):
        client_msg_id = new_client_msg_id()
        await asyncio.gather(
            phone.send_event("Msg", gid=team.gid, content=f"race {n}", client_msg_id=client_msg_id),
            laptop.send_event(
                "Msg", gid=team.gid, content=f"race {n}", client_msg_id=client_msg_id
            ),
        )
        acks = [await phone.ack(client_msg_id), await laptop.ack(client_msg_id)]
        msg_id = acks[0]["serverMsgId"]
        assert acks == [ok_ack(client_msg_id, msg_id)] * 2
        assert await message_count(client_msg_id=client_msg_id) == 1
        body = await bob.msg_push()
        assert (body["msgId"], body["seq"]) == (msg_id, n + 1)
    await bob.assert_quiet()
    # The connection whose send stored it gets no push; the other device gets one.
    pushed = [*await phone.drain(), *await laptop.drain()]
    assert all(frame["event"] == "Msg" for frame in pushed), pushed
    assert sorted(frame["body"]["seq"] for frame in pushed) == list(range(1, rounds + 1))


# -- order without gaps or duplicates -------------------------------------------------------


@pytest.fixture
def crowd(make_user, token_for):
    """Five senders and an observer, all in one group."""
    users = [make_user() for _ in range(6)]
    group = services.create_group(
        creator=users[0],
        name="crowd",
        avatar="",
        mode=Group.GROUP,
        members={user.pk: 1 for user in users[1:]},
    )
    return group.pk, [(user, token_for(user)) for user in users]


async def test_concurrent_senders_are_seen_in_contiguous_seq_order_by_everyone(crowd, connect):
    gid, members = crowd
    per_sender = 20
    senders = [await connect(user=user, token=token) for user, token in members[:5]]
    observer_user, observer_token = members[5]
    observers = [
        await connect(user=observer_user, token=observer_token),
        await connect("/", user=observer_user, token=observer_token),
    ]
    sent: dict[int, list[str]] = {}

    async def send_all(index: int, sender) -> None:
        sent[index] = []
        for n in range(per_sender):
            sent[index].append(await sender.send_event("Msg", gid=gid, content=f"{index}:{n}"))

    await asyncio.gather(*(send_all(i, s) for i, s in enumerate(senders)))
    own_ids: dict[int, set[int]] = {}
    for index, sender in enumerate(senders):
        acks = [await sender.ack(c, timeout=30) for c in sent[index]]
        assert all(a["content"] == "Ok" for a in acks), acks
        own_ids[index] = {a["serverMsgId"] for a in acks}
    total = per_sender * len(senders)
    all_ids = set().union(*own_ids.values())
    assert len(all_ids) == total

    for observer in observers:
        bodies = await observer.msg_pushes(total, timeout=10)
        assert seqs(bodies) == list(range(1, total + 1))
        assert {b["msgId"] for b in bodies} == all_ids
        assert [b["msgId"] for b in bodies] == sorted(all_ids)
        # Each sender's messages in the order it sent them.
        for index in range(len(senders)):
            mine = [b["content"] for b in bodies if b["uid"] == members[index][0].pk]
            assert mine == [f"{index}:{n}" for n in range(per_sender)]
    for index, sender in enumerate(senders):
        bodies = await sender.msg_pushes(total - per_sender, timeout=10)
        pushed_seqs = seqs(bodies)
        assert pushed_seqs == sorted(set(pushed_seqs))
        pushed_ids = {b["msgId"] for b in bodies}
        assert not pushed_ids & own_ids[index]
        assert pushed_ids | own_ids[index] == all_ids
    await assert_all_quiet(*observers, *senders)


async def test_a_removed_member_whose_leave_and_next_entry_were_lost_gets_nothing(
    team, connect, monkeypatch
):
    """Its member.left lost, and the first message after its removal lost too: the next
    one carries a new members version, so the connection asks the database before it
    pushes (or repairs the hole), and stops following the group."""
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch, event_type="member.left")
    await rest(
        team.alice, "group/user/change", {"gid": team.gid, "uids": [team.bob.pk], "opType": 2}
    )
    DroppingLayer(monkeypatch, event_type="chat.entry")
    await alice.msg(team.gid, "lost, and not for bob")
    await alice.msg(team.gid, "not for bob either")
    await bob.assert_quiet()
    refused = await bob.request("Msg", gid=team.gid, content="still in?")
    assert refused["content"] == "not_member"


async def test_a_dropped_fan_out_is_repaired_in_order_at_the_next_event(team, connect, monkeypatch):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    alice_tablet = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    layer = DroppingLayer(monkeypatch)
    lost = await alice.msg(team.gid, "lost in the layer")
    assert layer.dropped == [lost]
    await assert_all_quiet(bob, alice_tablet)

    nxt = await alice.msg(team.gid, "next")
    for receiver in (bob, alice_tablet):
        bodies = await receiver.msg_pushes(2)
        assert [(b["msgId"], b["seq"]) for b in bodies] == [(lost, 1), (nxt, 2)]
        assert bodies[0]["content"] == "lost in the layer"
    # No duplicate afterwards, and the sender never gets its own messages.
    third = await alice.msg(team.gid, "third")
    assert [b["msgId"] for b in await bob.msg_pushes(1)] == [third]
    assert [b["msgId"] for b in await alice_tablet.msg_pushes(1)] == [third]
    await assert_all_quiet(alice, alice_tablet, bob)


async def test_repair_never_pushes_a_message_back_to_the_connection_that_sent_it(
    team, connect, monkeypatch
):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch)
    lost = await alice.msg(team.gid, "mine, lost")
    reply = await bob.msg(team.gid, "reply")
    assert [b["msgId"] for b in await alice.msg_pushes(1)] == [reply]
    assert [b["msgId"] for b in await bob.msg_pushes(1)] == [lost]
    await assert_all_quiet(alice, bob)


async def test_a_long_gap_is_repaired_in_bounded_reads(team, connect, monkeypatch, settings):
    settings.RIM_SYNC_LIMIT = 2
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch, count=5)
    ids = [await alice.msg(team.gid, f"lost {n}") for n in range(5)]
    await bob.assert_quiet()
    ids.append(await alice.msg(team.gid, "arrives"))
    bodies = await bob.msg_pushes(6)
    assert [b["msgId"] for b in bodies] == ids
    assert seqs(bodies) == [1, 2, 3, 4, 5, 6]
    await bob.assert_quiet()


async def test_a_dropped_last_message_is_delivered_by_the_next_login(team, connect, monkeypatch):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch)
    lost = await alice.msg(team.gid, "lost for now")
    await bob.assert_quiet()
    await bob.close()
    again = await connect(user=team.bob, token=team.token(team.bob))
    assert (await again.msg_push())["msgId"] == lost


async def test_a_member_added_while_logging_in_receives_the_group_live(team, connect, monkeypatch):
    """Login looks up the groups to join, then reads the sync state: a membership added
    in between is in the state, and its join event must still join the layer group."""
    real_sync_state = services.sync_state

    def add_carol_first(**kwargs):
        services.change_members(
            user=team.alice, gid=team.gid, uids=[team.carol.pk], op=services.ADD
        )
        return real_sync_state(**kwargs)

    monkeypatch.setattr(consumers.services, "sync_state", add_carol_first)
    carol = await connect(user=team.carol, token=team.token(team.carol))
    monkeypatch.undo()
    await carol.request("Heart")  # the join event is handled by now
    alice = await connect(user=team.alice, token=team.token(team.alice))
    msg_id = await alice.msg(team.gid, "welcome, carol")
    assert (await carol.msg_push())["msgId"] == msg_id


async def test_a_dropped_last_message_is_delivered_at_the_next_heart(
    team, connect, monkeypatch, settings
):
    settings.RIM_TAIL_CHECK_INTERVAL = 0.0
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch)
    lost = await alice.msg(team.gid, "the group falls silent after this")
    await bob.assert_quiet()
    await bob.request("Heart")
    body = await bob.msg_push()
    assert (body["msgId"], body["seq"]) == (lost, 1)
    # Once pushed, it is neither repeated by the next Heart nor sent back to its sender.
    await bob.request("Heart")
    await alice.request("Heart")
    await assert_all_quiet(alice, bob)


async def test_a_heart_checks_the_tail_at_most_once_per_interval(
    team, connect, monkeypatch, settings
):
    settings.RIM_TAIL_CHECK_INTERVAL = 3600.0
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    DroppingLayer(monkeypatch)
    await alice.msg(team.gid, "lost until a later event or Login")
    await bob.request("Heart")
    await bob.assert_quiet()


async def test_a_dropped_read_receipt_loses_no_data(team, connect, monkeypatch):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(team.gid, "read me")
    await bob.msg_push()
    DroppingLayer(monkeypatch, event_type="read.receipt")
    ack = await bob.request("Read", gid=team.gid, msg_id=msg_id)
    assert ack == ok_ack(ack["clientMsgId"], msg_id)
    assert await watermarks(team.bob, team.gid) == (1, 1)
    await alice.assert_quiet()


# -- lifecycle: deactivation, idle timeout ------------------------------------------------------


async def test_deactivating_a_user_closes_all_their_connections(team, connect):
    phone = await connect(user=team.alice, token=team.token(team.alice))
    laptop = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await sync_to_async(accounts.deactivate_user)(user=team.alice)
    await phone.expect_close(4001)
    await laptop.expect_close(4001)
    # Others carry on; the deactivated user cannot log in again.
    await bob.assert_open()
    client = await connect()
    client_msg_id = await client.send_event(
        "Login", uid=team.alice.pk, content=team.token(team.alice)
    )
    assert_error_ack(await client.ack(client_msg_id), "auth_failed", client_msg_id)


async def test_deactivating_a_user_by_saving_it_as_admin_does_closes_their_connections(
    team, connect
):
    alice = await connect(user=team.alice, token=team.token(team.alice))

    def deactivate_in_admin():
        admin = Client()
        admin.force_login(User.objects.create_superuser(account="root", password="root-pw"))
        form = {
            "account": team.alice.account,
            "name": team.alice.name,
            # is_active left out: the checkbox is unticked.
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        }
        response = admin.post(reverse("admin:accounts_user_change", args=[team.alice.pk]), form)
        assert response.status_code == 302

    await sync_to_async(deactivate_in_admin)()
    await alice.expect_close(4001)


async def test_a_silent_connection_is_closed_after_the_idle_timeout(connect, settings):
    settings.RIM_IDLE_TIMEOUT = 0.3
    client = await connect()
    started = asyncio.get_running_loop().time()
    await client.expect_close(4000, timeout=2)
    assert asyncio.get_running_loop().time() - started >= 0.25


async def test_hearts_keep_a_connection_alive_past_the_idle_timeout(team, connect, settings):
    settings.RIM_IDLE_TIMEOUT = 0.3
    client = await connect(user=team.bob, token=team.token(team.bob))
    for _ in range(6):
        await asyncio.sleep(0.1)
        await client.assert_open()
    # 0.6 s and open; then silence closes it.
    await client.expect_close(4000, timeout=2)


async def test_pushes_alone_do_not_keep_a_connection_alive(team, connect, settings):
    settings.RIM_IDLE_TIMEOUT = 0.5
    bob = await connect(user=team.bob, token=team.token(team.bob))
    alice = await connect(user=team.alice, token=team.token(team.alice))

    async def chatter():
        for n in range(1000):
            await alice.msg(team.gid, f"m{n}")
            await asyncio.sleep(0.05)

    talking = asyncio.ensure_future(chatter())
    try:
        # Pushes keep arriving, but bob itself says nothing: closed all the same.
        await bob.expect_close(4000, timeout=3)
    finally:
        talking.cancel()
    assert bob.inbox
    assert all(frame["event"] == "Msg" for frame in bob.inbox)


# -- failures inside the connection's own work ---------------------------------------


async def test_a_tail_check_that_fails_leaves_its_heart_with_one_ack(
    team, connect, monkeypatch, settings, caplog
):
    settings.RIM_TAIL_CHECK_INTERVAL = 0.0
    bob = await connect(user=team.bob, token=team.token(team.bob))

    def database_down(**kwargs):
        raise OSError("database unreachable")

    monkeypatch.setattr(services, "tail_state", database_down)
    ack = await bob.request("Heart")
    assert ack["content"] == "Ok"
    await bob.assert_quiet()  # no second ack
    assert "event=tail_check_failed" in caplog.text
    monkeypatch.undo()
    assert (await bob.request("Heart"))["content"] == "Ok"


async def test_a_layer_event_that_fails_is_logged_and_the_connection_goes_on(
    team, connect, monkeypatch, caplog
):
    """A push whose handling fails (here its gap repair's database read) is lost like a
    dropped event, not fatal: the next one repairs it, and the connection lives."""
    failing, failures = [], []
    real_read_entries = consumers.ChatConsumer.read_entries

    async def read_entries(self, gid, after, upto):
        if failing and self.uid == team.bob.pk:
            failing.clear()
            failures.append(gid)
            raise OSError("database unreachable")
        return await real_read_entries(self, gid, after, upto)

    monkeypatch.setattr(consumers.ChatConsumer, "read_entries", read_entries)
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    first = await alice.msg(team.gid, "handled")
    assert (await bob.msg_push())["msgId"] == first
    with monkeypatch.context() as patch:
        DroppingLayer(patch)
        lost = await alice.msg(team.gid, "dropped by the layer")
    failing.append(True)
    third = await alice.msg(team.gid, "its repair fails")
    await bob.assert_quiet()
    assert failures == [team.gid] and "event=layer_event_failed" in caplog.text
    fourth = await alice.msg(team.gid, "its repair works")
    assert [body["msgId"] for body in await bob.msg_pushes(3)] == [lost, third, fourth]


async def test_a_group_joined_between_the_logins_two_reads_is_followed_live(
    team, connect, monkeypatch
):
    """Login reads the user's groups (to listen to them), then its sync state: a group
    the second read knows and the first did not is listened to as well."""
    real_open_session = consumers.open_session

    def groups_read_before_the_join(*, key):
        session, gids = real_open_session(key=key)
        return session, [gid for gid in gids if gid != team.gid]

    monkeypatch.setattr(consumers, "open_session", groups_read_before_the_join)
    bob = await connect(user=team.bob, token=team.token(team.bob))
    monkeypatch.undo()
    alice = await connect(user=team.alice, token=team.token(team.alice))
    msg_id = await alice.msg(team.gid, "heard at once")
    assert (await bob.msg_push())["msgId"] == msg_id
