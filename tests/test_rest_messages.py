"""Message routes (docs/protocol.md §5): message/chat/list, history, group/read."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chat.events import group_channel
from chat.models import Membership, Message
from chat.services import mark_read
from tests.rest_helpers import (
    CHAT_MESSAGE_KEYS,
    GROUP_KEYS,
    MESSAGE_KEYS,
    TIME_RE,
    USER_KEYS,
    direct_chat,
    events_published,
    fails,
    group_of,
    is_id,
    ok,
    send,
)


def chat_list(client, **body) -> list[dict]:
    return ok(client, "message/chat/list", {"page": 1, "size": 20, **body})


def history(client, gid: int, **body) -> list[dict]:
    return ok(client, "message/history", {"gid": gid, **body})


def unread_by_gid(entries: list[dict]) -> dict[int, int]:
    return {e["group"]["id"]: e["unread"] for e in entries}


# message/chat/list


def test_chat_list_has_one_entry_per_conversation_with_a_message_newest_first(
    client_for, alice, bob, carol
):
    team = group_of(alice, bob, carol)
    chat = direct_chat(alice, bob)
    quiet = group_of(alice, carol, name="quiet")
    send(bob, team, "t1")
    send(alice, chat, "c1")
    send(carol, team, "t2")
    entries = chat_list(client_for(alice))
    assert [(e["group"]["id"], e["msg"]["content"]) for e in entries] == [
        (team.pk, "t2"),
        (chat.pk, "c1"),
    ]
    assert quiet.pk not in [e["group"]["id"] for e in entries]


def test_chat_list_entry_has_the_chat_message_shape(client_for, alice, bob):
    team = group_of(alice, bob, name="team")
    message = send(bob, team, "hello")
    (entry,) = chat_list(client_for(alice))
    assert set(entry) == CHAT_MESSAGE_KEYS
    assert entry["group"] == {
        "id": team.pk,
        "name": "team",
        "avatar": "",
        "mode": 2,
        "creatorUid": alice.pk,
    }
    assert set(entry["msg"]) == MESSAGE_KEYS
    assert entry["msg"]["id"] == message.pk and entry["msg"]["uid"] == bob.pk
    assert set(entry["user"]) == USER_KEYS
    assert isinstance(entry["unread"], int) and not isinstance(entry["unread"], bool)


def test_chat_list_user_of_a_one_to_one_chat_is_the_other_party_even_when_i_sent_last(
    client_for, alice, bob
):
    chat = direct_chat(alice, bob)
    send(bob, chat, "hi alice")
    send(alice, chat, "hi bob")
    (entry,) = chat_list(client_for(alice))
    assert entry["user"]["id"] == bob.pk
    (entry,) = chat_list(client_for(bob))
    assert entry["user"]["id"] == alice.pk


def test_chat_list_user_of_a_group_is_the_last_sender(client_for, alice, bob, carol):
    team = group_of(alice, bob, carol)
    send(bob, team)
    send(carol, team)
    (entry,) = chat_list(client_for(alice))
    assert entry["user"]["id"] == carol.pk
    send(alice, team)
    (entry,) = chat_list(client_for(bob))
    assert entry["user"]["id"] == alice.pk


def test_chat_list_unread_counts_others_messages_above_my_read_watermark(
    client_for, alice, bob, carol
):
    team = group_of(alice, bob, carol)
    chat = direct_chat(alice, carol)
    for _ in range(3):
        send(bob, team)
    send(carol, team)
    send(carol, chat)
    assert unread_by_gid(chat_list(client_for(alice))) == {team.pk: 4, chat.pk: 1}
    assert unread_by_gid(chat_list(client_for(bob))) == {team.pk: 1}


def test_chat_list_my_own_messages_are_never_unread(client_for, alice, bob):
    team = group_of(alice, bob)
    send(alice, team)
    send(alice, team)
    assert unread_by_gid(chat_list(client_for(alice))) == {team.pk: 0}


def test_chat_list_unread_drops_after_a_read(client_for, alice, bob):
    team = group_of(alice, bob)
    first = send(bob, team)
    send(bob, team)
    send(bob, team)
    mark_read(user_id=alice.pk, gid=team.pk, msg_id=first.pk)
    assert unread_by_gid(chat_list(client_for(alice))) == {team.pk: 2}


def test_chat_list_counts_nothing_from_before_i_joined_as_unread(client_for, alice, bob):
    team = group_of(alice)
    send(alice, team)
    send(alice, team)
    ok(client_for(alice), "group/user/change", {"gid": team.pk, "uids": [bob.pk], "opType": 1})
    assert unread_by_gid(chat_list(client_for(bob))) == {team.pk: 0}
    send(alice, team)
    assert unread_by_gid(chat_list(client_for(bob))) == {team.pk: 1}


def test_chat_list_with_my_uid_is_ok_and_another_uid_is_403(client_for, alice, bob):
    send(bob, group_of(alice, bob))
    client = client_for(alice)
    assert len(chat_list(client, uid=alice.pk)) == 1
    fails(client, "message/chat/list", {"uid": bob.pk, "page": 1, "size": 20}, expect=403)


def test_chat_list_pages_newest_first(client_for, alice, bob):
    groups = [group_of(alice, bob, name=f"g{i}") for i in range(5)]
    for group in groups:
        send(bob, group)
    client = client_for(alice)
    pages = [
        [e["group"]["id"] for e in ok(client, "message/chat/list", {"page": page, "size": 2})]
        for page in (1, 2, 3, 4)
    ]
    newest_first = [g.pk for g in reversed(groups)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5], []]


def test_chat_list_without_conversations_is_empty(client_for, alice):
    assert chat_list(client_for(alice)) == []


# message/history


def test_history_page_1_is_the_newest_size_messages_in_ascending_order(client_for, alice, bob):
    team = group_of(alice, bob)
    sent = [send(bob if i % 2 else alice, team, f"m{i}") for i in range(7)]
    entries = history(client_for(alice), team.pk, page=1, size=3)
    assert [e["msg"]["id"] for e in entries] == [m.pk for m in sent[4:7]]
    assert [e["msg"]["content"] for e in entries] == ["m4", "m5", "m6"]


def test_history_page_2_is_the_size_messages_before_page_1(client_for, alice, bob):
    team = group_of(alice, bob)
    sent = [send(bob, team, f"m{i}") for i in range(7)]
    client = client_for(alice)
    assert [e["msg"]["id"] for e in history(client, team.pk, page=2, size=3)] == [
        m.pk for m in sent[1:4]
    ]
    assert [e["msg"]["id"] for e in history(client, team.pk, page=3, size=3)] == [sent[0].pk]
    assert history(client, team.pk, page=4, size=3) == []


def test_history_defaults_to_the_first_page(client_for, alice, bob):
    team = group_of(alice, bob)
    sent = [send(bob, team) for _ in range(3)]
    assert [e["msg"]["id"] for e in history(client_for(alice), team.pk)] == [m.pk for m in sent]


def test_history_holds_only_that_groups_messages(client_for, alice, bob):
    team, other = group_of(alice, bob), group_of(alice, bob, name="other")
    send(bob, other, "elsewhere")
    send(bob, team, "here")
    assert [e["msg"]["content"] for e in history(client_for(alice), team.pk)] == ["here"]


@pytest.mark.parametrize("uid", ["peer", "stranger", None, -3])
def test_history_ignores_the_uid_field(client_for, make_user, alice, bob, uid):
    stranger = make_user("stranger")
    chat = direct_chat(alice, bob)
    message = send(bob, chat, "hi")
    value = {"peer": bob.pk, "stranger": stranger.pk}.get(uid, uid)
    entries = history(client_for(alice), chat.pk, uid=value)
    assert [e["msg"]["id"] for e in entries] == [message.pk]


def test_history_by_non_member_is_403_and_reveals_nothing(client_for, alice, bob, carol):
    chat = direct_chat(alice, bob)
    send(bob, chat, "private words")
    response = client_for(carol).post(
        "/api/message/history", {"gid": chat.pk, "uid": alice.pk}, format="json"
    )
    assert response.status_code == 403
    assert b"private words" not in response.content
    assert response.json()["data"] is None


def test_history_of_a_nonexistent_group_answers_like_a_foreign_one(client_for, alice, bob, carol):
    chat = direct_chat(alice, bob)
    gid, carols = chat.pk, client_for(carol)
    foreign = carols.post("/api/message/history", {"gid": gid}, format="json")
    chat.delete()
    missing = carols.post("/api/message/history", {"gid": gid}, format="json")
    assert foreign.status_code == missing.status_code == 403
    assert foreign.content == missing.content


def test_history_message_info_has_exactly_the_protocol_fields(client_for, alice, bob):
    team = group_of(alice, bob)
    message = send(bob, team, "https://example.org/cat.png", kind="Image")
    (entry,) = history(client_for(alice), team.pk)
    assert set(entry) == CHAT_MESSAGE_KEYS
    info = entry["msg"]
    assert set(info) == MESSAGE_KEYS
    assert {k: info[k] for k in ("id", "kind", "content", "gid", "uid", "client_msg_id")} == {
        "id": message.pk,
        "kind": "Image",
        "content": "https://example.org/cat.png",
        "gid": team.pk,
        "uid": bob.pk,
        "client_msg_id": message.client_msg_id,
    }
    assert all(is_id(info[k]) for k in ("id", "gid", "uid"))
    assert TIME_RE.match(info["createTime"]) and TIME_RE.match(info["updateTime"])


def test_history_entry_user_is_the_sender_and_unread_is_null(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team)
    send(alice, team)
    entries = history(client_for(alice), team.pk)
    assert [e["user"]["id"] for e in entries] == [bob.pk, alice.pk]
    assert [e["unread"] for e in entries] == [None, None]
    assert all(set(e["group"]) == GROUP_KEYS and e["group"]["id"] == team.pk for e in entries)


def test_history_times_are_in_the_server_time_zone(client_for, settings, alice, bob):
    settings.TIME_ZONE = "Asia/Shanghai"
    team = group_of(alice, bob)
    message = send(bob, team)
    Message.objects.filter(pk=message.pk).update(
        created_at=datetime(2024, 3, 1, 23, 30, 5, tzinfo=UTC)
    )
    (entry,) = history(client_for(alice), team.pk)
    assert entry["msg"]["createTime"] == "2024-03-02 07:30:05"


def test_history_update_time_follows_an_edit(client_for, alice, bob):
    team = group_of(alice, bob)
    message = send(bob, team)
    later = timezone.now() + timedelta(days=400)
    Message.objects.filter(pk=message.pk).update(updated_at=later)
    (entry,) = history(client_for(alice), team.pk)
    assert entry["msg"]["updateTime"] == timezone.localtime(later).strftime("%Y-%m-%d %H:%M:%S")
    assert entry["msg"]["updateTime"] != entry["msg"]["createTime"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "gid"),
        ({"gid": "x"}, "gid"),
        ({"gid": 1, "size": 0}, "size"),
        ({"gid": 1, "page": 0}, "page"),
    ],
)
def test_history_with_a_missing_or_invalid_field_is_400_naming_it(client_for, alice, body, field):
    assert fails(client_for(alice), "message/history", body, expect=400).startswith(field)


# message/group/read


def test_group_read_moves_my_read_watermark_to_the_latest_message(client_for, alice, bob):
    team = group_of(alice, bob)
    for _ in range(4):
        last = send(bob, team)
    assert ok(client_for(alice), "message/group/read", {"gid": team.pk, "uid": alice.pk}) is True
    membership = Membership.objects.get(group=team, user=alice)
    assert membership.read_seq == last.seq == 4
    assert membership.delivered_seq == 4


def test_group_read_makes_unread_zero(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team)
    send(bob, team)
    client = client_for(alice)
    assert unread_by_gid(chat_list(client)) == {team.pk: 2}
    ok(client, "message/group/read", {"gid": team.pk})
    assert unread_by_gid(chat_list(client)) == {team.pk: 0}


def test_group_read_leaves_the_other_members_unread_alone(client_for, alice, bob, carol):
    team = group_of(alice, bob, carol)
    send(bob, team)
    ok(client_for(alice), "message/group/read", {"gid": team.pk})
    assert unread_by_gid(chat_list(client_for(carol))) == {team.pk: 1}


def test_group_read_tells_the_other_members_after_commit(client_for, settings, alice, bob):
    team = group_of(alice, bob)
    last = send(bob, team)
    client = client_for(alice)
    (event,) = events_published(
        settings,
        group_channel(team.pk),
        lambda: ok(client, "message/group/read", {"gid": team.pk}),
    )
    team.refresh_from_db()
    assert (event["type"], event["actor"], event["mv"]) == (
        "read.receipt",
        alice.pk,
        team.members_version,
    )
    assert json.loads(event["push"]) == {
        "event": "Read",
        "body": {
            "kind": "Text",
            "uid": alice.pk,
            "gid": team.pk,
            "msgId": last.pk,
            "content": "",
            "clientMsgId": None,
        },
    }


def test_group_read_when_already_read_publishes_nothing(client_for, settings, alice, bob):
    team = group_of(alice, bob)
    send(bob, team)
    client = client_for(alice)
    ok(client, "message/group/read", {"gid": team.pk})
    again = events_published(
        settings,
        group_channel(team.pk),
        lambda: ok(client, "message/group/read", {"gid": team.pk}),
    )
    assert again == []


def test_group_read_of_a_group_without_messages_is_true(client_for, alice, bob):
    team = group_of(alice, bob)
    assert ok(client_for(alice), "message/group/read", {"gid": team.pk}) is True
    assert Membership.objects.get(group=team, user=alice).read_seq == 0


def test_group_read_for_another_uid_is_403_and_moves_nothing(client_for, alice, bob):
    team = group_of(alice, bob)
    send(alice, team)
    fails(client_for(alice), "message/group/read", {"gid": team.pk, "uid": bob.pk}, expect=403)
    assert Membership.objects.get(group=team, user=bob).read_seq == 0


def test_group_read_by_a_non_member_is_403(client_for, alice, bob, carol):
    team = group_of(alice, bob)
    send(alice, team)
    fails(client_for(carol), "message/group/read", {"gid": team.pk}, expect=403)


@pytest.mark.parametrize(("body", "field"), [({}, "gid"), ({"gid": 1, "uid": "me"}, "uid")])
def test_group_read_with_a_missing_or_invalid_field_is_400_naming_it(
    client_for, alice, body, field
):
    assert fails(client_for(alice), "message/group/read", body, expect=400).startswith(field)
