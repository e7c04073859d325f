"""The v2 events over the WebSocket (PROTOCOL.md §6.1): Recall, Edit, React, Typing and
Msg's replyTo. Each gets one ack; its push reaches every other connection of the
members, the actor's other devices included, never the connection that sent it; every
error code of the contract is tested; a client that was away learns what changed at
its next Login; unread counts count messages only."""

import json

import pytest
from channels.db import database_sync_to_async

from chat import services
from chat.models import Change, Message, Reaction
from tests import ws_helpers
from tests.ws_helpers import (
    DroppingLayer,
    assert_all_quiet,
    assert_error_ack,
    ok_ack,
    store_message,
)

pytestmark = pytest.mark.django_db(transaction=True)

connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


@pytest.fixture
async def room(team, connect):
    """alice on her phone and her tablet, bob on one connection, all in `team.gid`."""

    class Room:
        pass

    room = Room()
    room.team = team
    room.gid = team.gid
    room.alice = await connect(user=team.alice, token=team.token(team.alice))
    room.tablet = await connect(user=team.alice, token=team.token(team.alice))
    room.bob = await connect(user=team.bob, token=team.token(team.bob))
    return room


async def sent_and_seen(room, content: str = "hello", sender=None) -> int:
    """A message from `sender` (alice's phone) that everyone else has received."""
    sender = sender or room.alice
    msg_id = await sender.msg(room.gid, content)
    for other in (room.alice, room.tablet, room.bob):
        if other is not sender:
            assert (await other.msg_push())["msgId"] == msg_id
    return msg_id


async def refused(client, event: str, code: str, **fields) -> None:
    client_msg_id = await client.send_event(event, **fields)
    assert_error_ack(await client.ack(client_msg_id), code, client_msg_id)


@database_sync_to_async
def stored(msg_id: int) -> Message:
    return Message.objects.get(pk=msg_id)


@database_sync_to_async
def changes_of(msg_id: int) -> list[tuple[str, int]]:
    return list(Change.objects.filter(message_id=msg_id).values_list("kind", "actor_id"))


# -- Recall ------------------------------------------------------------------------------


async def test_a_recall_is_pushed_to_every_other_connection_and_erases_the_content(room):
    msg_id = await sent_and_seen(room, "sent to the wrong chat")
    client_msg_id = await room.alice.send_event("Recall", gid=room.gid, msg_id=msg_id)
    assert await room.alice.ack(client_msg_id) == ok_ack(client_msg_id, msg_id)
    for other in (room.bob, room.tablet):
        push = await other.push()
        assert push == {
            "event": "Recall",
            "body": {
                "kind": "Text",
                "uid": room.team.alice.pk,
                "gid": room.gid,
                "msgId": msg_id,
                "content": "",
                "clientMsgId": client_msg_id,
                "seq": 2,
            },
        }
    await room.alice.assert_quiet()
    message = await stored(msg_id)
    assert (message.content, message.recalled) == ("", True)
    assert await changes_of(msg_id) == [("Recall", room.team.alice.pk)]


async def test_a_sender_past_the_recall_window_is_too_late_but_a_group_admin_may(room, settings):
    settings.RIM_RECALL_WINDOW = 0
    msg_id = await sent_and_seen(room, "from bob", sender=room.bob)
    await refused(room.bob, "Recall", "too_late", gid=room.gid, msg_id=msg_id)
    assert (await stored(msg_id)).content == "from bob"
    # alice created the group: its admin recalls at any time.
    ack = await room.alice.request("Recall", gid=room.gid, msg_id=msg_id)
    assert ack["content"] == "Ok"
    assert (await room.bob.push())["event"] == "Recall"


async def test_a_member_may_not_recall_someone_elses_message(room):
    msg_id = await sent_and_seen(room, "alice's")
    await refused(room.bob, "Recall", "forbidden", gid=room.gid, msg_id=msg_id)
    await assert_all_quiet(room.alice, room.tablet)
    assert not (await stored(msg_id)).recalled


async def test_recall_of_a_message_of_another_group_or_of_a_foreign_group(room):
    await refused(
        room.alice, "Recall", "unknown_message", gid=room.gid, msg_id=room.team.side_msg_id
    )
    await refused(
        room.alice, "Recall", "not_member", gid=room.team.side_gid, msg_id=room.team.side_msg_id
    )
    await refused(room.alice, "Recall", "invalid_body", gid=room.gid)  # no msgId


async def test_recalling_twice_or_retrying_changes_nothing_more(room):
    msg_id = await sent_and_seen(room)
    client_msg_id = await room.alice.send_event("Recall", gid=room.gid, msg_id=msg_id)
    await room.alice.ack(client_msg_id)
    assert (await room.bob.push())["event"] == "Recall"
    retry = await room.alice.send_event(
        "Recall", gid=room.gid, msg_id=msg_id, client_msg_id=client_msg_id
    )
    assert await room.alice.ack(retry) == ok_ack(retry, msg_id)
    assert (await room.alice.request("Recall", gid=room.gid, msg_id=msg_id))["content"] == "Ok"
    await room.tablet.push()
    await room.bob.assert_quiet()
    assert len(await changes_of(msg_id)) == 1


async def test_a_recall_takes_the_reactions_with_it(room, client_for):
    msg_id = await sent_and_seen(room)
    await room.bob.request("React", gid=room.gid, msg_id=msg_id, content="👍")
    await room.alice.request("Recall", gid=room.gid, msg_id=msg_id)
    assert not await database_sync_to_async(Reaction.objects.filter(message_id=msg_id).exists)()
    await refused(room.bob, "React", "recalled", gid=room.gid, msg_id=msg_id, content="👍")


# -- Edit --------------------------------------------------------------------------------


async def test_an_edit_is_pushed_with_the_new_text_and_its_time(room):
    msg_id = await sent_and_seen(room, "teh typo")
    client_msg_id = await room.alice.send_event(
        "Edit", gid=room.gid, msg_id=msg_id, content="the typo"
    )
    assert await room.alice.ack(client_msg_id) == ok_ack(client_msg_id, msg_id)
    message = await stored(msg_id)
    assert (message.content, message.edited_at is not None) == ("the typo", True)
    for other in (room.bob, room.tablet):
        push = await other.push()
        body = push["body"]
        assert push["event"] == "Edit"
        assert (body["uid"], body["msgId"], body["content"], body["seq"]) == (
            room.team.alice.pk,
            msg_id,
            "the typo",
            2,
        )
        assert body["clientMsgId"] == client_msg_id
        assert isinstance(body["editTime"], str) and len(body["editTime"]) == 19
    await room.alice.assert_quiet()


async def test_only_the_sender_edits_text_within_the_window_and_never_a_recalled_one(
    room, settings
):
    mine = await sent_and_seen(room, "alice's")
    await refused(room.bob, "Edit", "forbidden", gid=room.gid, msg_id=mine, content="mine now")
    image = await room.bob.msg(room.gid, "https://example.org/a.png", kind="Image")
    await refused(room.bob, "Edit", "forbidden", gid=room.gid, msg_id=image, content="text")
    settings.RIM_EDIT_WINDOW = 0
    await refused(room.alice, "Edit", "too_late", gid=room.gid, msg_id=mine, content="late")
    settings.RIM_EDIT_WINDOW = 900
    await room.alice.request("Recall", gid=room.gid, msg_id=mine)
    await refused(room.alice, "Edit", "recalled", gid=room.gid, msg_id=mine, content="again")
    assert (await stored(mine)).content == ""


async def test_an_edit_is_checked_like_a_message(room, settings):
    msg_id = await sent_and_seen(room)
    await refused(room.alice, "Edit", "invalid_body", gid=room.gid, msg_id=msg_id, content="")
    too_big = "x" * (settings.RIM_MAX_CONTENT + 1)
    await refused(
        room.alice, "Edit", "content_too_large", gid=room.gid, msg_id=msg_id, content=too_big
    )
    assert (await stored(msg_id)).content == "hello"


# -- React -------------------------------------------------------------------------------


async def test_a_reaction_toggles_and_is_pushed_with_its_state(room, client_for):
    msg_id = await sent_and_seen(room)
    on = await room.bob.send_event("React", gid=room.gid, msg_id=msg_id, content="👍🏽")
    assert await room.bob.ack(on) == ok_ack(on, msg_id)
    for other in (room.alice, room.tablet):
        push = await other.push()
        assert push["event"] == "React"
        assert (push["body"]["content"], push["body"]["on"], push["body"]["uid"]) == (
            "👍🏽",
            True,
            room.team.bob.pk,
        )
    history = services.history
    page = await database_sync_to_async(history)(
        user=room.team.alice, gid=room.gid, offset=0, limit=10
    )
    assert page[-1].reactions == [{"emoji": "👍🏽", "count": 1, "mine": False}]
    off = await room.bob.request("React", gid=room.gid, msg_id=msg_id, content="👍🏽")
    assert off["content"] == "Ok"
    assert (await room.alice.push())["body"]["on"] is False


async def test_a_retried_react_does_not_toggle_back(room):
    msg_id = await sent_and_seen(room)
    client_msg_id = await room.bob.send_event("React", gid=room.gid, msg_id=msg_id, content="🎉")
    await room.bob.ack(client_msg_id)
    retry = await room.bob.send_event(
        "React", gid=room.gid, msg_id=msg_id, content="🎉", client_msg_id=client_msg_id
    )
    assert (await room.bob.ack(retry))["content"] == "Ok"
    assert (await room.alice.push())["body"]["on"] is True
    await room.alice.assert_quiet()
    assert await database_sync_to_async(Reaction.objects.filter(message_id=msg_id).count)() == 1


@pytest.mark.parametrize("content", ["", "ok", ":)", "👍 👍", "🎉" * 17, "a\nb"])
async def test_a_reaction_must_be_one_emoji(room, content):
    msg_id = await sent_and_seen(room)
    await refused(room.bob, "React", "invalid_body", gid=room.gid, msg_id=msg_id, content=content)


async def test_a_message_has_at_most_twenty_different_emoji(room):
    msg_id = await sent_and_seen(room)
    emoji = [chr(0x1F600 + n) for n in range(21)]

    @database_sync_to_async
    def twenty_reactions() -> None:
        Reaction.objects.bulk_create(
            Reaction(message_id=msg_id, user=room.team.alice, emoji=e) for e in emoji[:20]
        )

    await twenty_reactions()
    await refused(room.bob, "React", "forbidden", gid=room.gid, msg_id=msg_id, content=emoji[20])
    # One already used is fine.
    assert (await room.bob.request("React", gid=room.gid, msg_id=msg_id, content=emoji[0]))[
        "content"
    ] == "Ok"


# -- Typing ------------------------------------------------------------------------------


async def test_typing_reaches_the_other_members_once_per_two_seconds(room):
    client_msg_id = await room.bob.send_event("Typing", gid=room.gid)
    assert await room.bob.ack(client_msg_id) == ok_ack(client_msg_id)
    for other in (room.alice, room.tablet):
        assert await other.push() == {
            "event": "Typing",
            "body": {
                "kind": "Text",
                "uid": room.team.bob.pk,
                "gid": room.gid,
                "clientMsgId": client_msg_id,
            },
        }
    again = await room.bob.request("Typing", gid=room.gid)
    assert again["content"] == "Ok"
    await assert_all_quiet(room.alice, room.tablet, room.bob)


async def test_typing_is_not_pushed_to_the_typists_own_devices(room):
    await room.alice.request("Typing", gid=room.gid)
    assert (await room.bob.push())["event"] == "Typing"
    await assert_all_quiet(room.tablet, room.alice)


async def test_typing_in_a_foreign_group_is_refused(room):
    await refused(room.alice, "Typing", "not_member", gid=room.team.side_gid)
    await refused(room.alice, "Typing", "invalid_body")  # no gid


# -- replyTo -----------------------------------------------------------------------------


async def test_a_reply_carries_reply_to_in_its_push_and_in_history(room):
    original = await sent_and_seen(room, "question?")
    client_msg_id = await room.bob.send_event(
        "Msg", gid=room.gid, content="answer", replyTo=original
    )
    reply = (await room.bob.ack(client_msg_id))["serverMsgId"]
    body = await room.alice.msg_push()
    assert (body["msgId"], body["replyTo"]) == (reply, original)
    assert (await stored(reply)).reply_to_id == original


async def test_a_reply_to_a_message_of_another_group_is_refused_and_stores_nothing(room):
    before = await ws_helpers.db_state()
    await refused(
        room.bob,
        "Msg",
        "unknown_message",
        gid=room.gid,
        content="hm",
        replyTo=room.team.side_msg_id,
    )
    await refused(room.bob, "Msg", "invalid_body", gid=room.gid, content="hm", replyTo="1")
    assert await ws_helpers.db_state() == before


# -- a client that was away ----------------------------------------------------------------


async def test_a_client_that_was_away_learns_recalls_edits_and_reactions_at_login(team, connect):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    edited = await alice.msg(team.gid, "first draft")
    recalled = await alice.msg(team.gid, "oops")
    for msg_id in (edited, recalled):
        assert (await bob.msg_push())["msgId"] == msg_id
        assert (await bob.request("Ack", gid=team.gid, msg_id=msg_id))["content"] == "Ok"
    await bob.close()

    await alice.request("Edit", gid=team.gid, msg_id=edited, content="final")
    await alice.request("Recall", gid=team.gid, msg_id=recalled)
    await alice.request("React", gid=team.gid, msg_id=edited, content="✅")
    sent_and_gone = await alice.msg(team.gid, "never seen")
    await alice.request("Recall", gid=team.gid, msg_id=sent_and_gone)

    back = await connect(user=team.bob, token=team.token(team.bob))
    pushes = [await back.push() for _ in range(5)]
    seen = [(p["event"], p["body"]["msgId"], p["body"]["content"]) for p in pushes]
    assert seen == [
        ("Edit", edited, "final"),
        ("Recall", recalled, ""),
        ("React", edited, "✅"),
        ("Msg", sent_and_gone, ""),
        ("Recall", sent_and_gone, ""),
    ]
    assert pushes[3]["body"]["recalled"] is True
    assert [p["body"]["seq"] for p in pushes] == [3, 4, 5, 6, 7]
    await back.assert_quiet()


async def test_a_lost_change_is_repaired_before_the_next_entry(team, connect, monkeypatch):
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(team.gid, "to be edited")
    await bob.msg_push()
    DroppingLayer(monkeypatch)
    await alice.request("Edit", gid=team.gid, msg_id=msg_id, content="edited")
    await bob.assert_quiet()
    later = await alice.msg(team.gid, "later")
    edit = await bob.push()
    assert (edit["event"], edit["body"]["content"], edit["body"]["seq"]) == ("Edit", "edited", 2)
    assert (await bob.msg_push())["msgId"] == later


# -- unread counts messages only -----------------------------------------------------------


async def test_unread_counts_messages_never_edits_reactions_or_recalls(room, client_for):
    first = await sent_and_seen(room, "one")
    await sent_and_seen(room, "two")
    await room.alice.request("Edit", gid=room.gid, msg_id=first, content="one!")
    await room.alice.request("React", gid=room.gid, msg_id=first, content="🔥")
    await room.alice.request("Recall", gid=room.gid, msg_id=first)

    @database_sync_to_async
    def bobs_chat_list():
        return services.chat_list(user=room.team.bob, offset=0, limit=10)

    (entry,) = await bobs_chat_list()
    assert entry.unread == 2
    # The last message is shown as it is now.
    last = await room.alice.msg(room.gid, "three")
    await room.alice.request("Recall", gid=room.gid, msg_id=last)
    (entry,) = await bobs_chat_list()
    assert (entry.unread, entry.message.pk, entry.message.content, entry.message.recalled) == (
        3,
        last,
        "",
        True,
    )
    await room.bob.request("Read", gid=room.gid, msg_id=last)
    (entry,) = await bobs_chat_list()
    assert entry.unread == 0


async def test_a_change_by_a_reader_does_not_mark_anything_read(team, connect):
    await store_message(team.alice, team.gid, "unread for bob")
    msg = await store_message(team.alice, team.gid, "to react to")
    bob = await connect(user=team.bob, token=team.token(team.bob))
    await bob.msg_pushes(2)
    await bob.request("React", gid=team.gid, msg_id=msg.pk, content="👀")

    @database_sync_to_async
    def unread() -> int:
        return services.chat_list(user=team.bob, offset=0, limit=10)[0].unread

    assert await unread() == 2


async def test_pushes_of_v1_messages_keep_exactly_their_v1_fields(room):
    msg_id = await room.alice.msg(room.gid, "plain")
    body = await room.bob.msg_push()
    assert set(body) == {
        *("kind", "uid", "gid", "content", "clientMsgId", "msgId", "seq", "createTime"),
    }
    assert body["msgId"] == msg_id
    assert json.dumps(body)  # plain JSON all the way


async def test_in_a_one_to_one_chat_neither_may_recall_the_others_message(team, connect):
    """Both members of a one-to-one chat are its admins; that gives neither the
    power to erase the other's words."""

    @database_sync_to_async
    def direct_chat() -> int:
        return services.open_direct_chat(user=team.alice, other_id=team.bob.pk).pk

    gid = await direct_chat()
    alice = await connect(user=team.alice, token=team.token(team.alice))
    bob = await connect(user=team.bob, token=team.token(team.bob))
    msg_id = await alice.msg(gid, "mine to keep")
    # Bob may also hear Alice come online (a Presence push), before or after.
    pushes = await bob.drain()
    assert [push["body"]["msgId"] for push in pushes if push["event"] == "Msg"] == [msg_id]
    await refused(bob, "Recall", "forbidden", gid=gid, msg_id=msg_id)
    assert (await alice.request("Recall", gid=gid, msg_id=msg_id))["content"] == "Ok"
