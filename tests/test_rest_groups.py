"""Group routes (docs/protocol.md §5): group/create, update, get, user/get, user/change."""

import pytest

from accounts.events import user_channel
from chat.models import Group, Membership
from tests.rest_helpers import (
    GROUP_KEYS,
    USER_KEYS,
    direct_chat,
    events_published,
    fails,
    group_of,
    is_id,
    ok,
    send,
)

ADD, REMOVE = 1, 2


def create_body(creator_uid=None, users=(), *, name="team", mode=2, avatar="t.png") -> dict:
    group = {"name": name, "avatar": avatar, "mode": mode}
    if creator_uid is not None:
        group["creatorUid"] = creator_uid
    return {"group": group, "users": list(users)}


def roles(gid: int) -> dict[int, int]:
    return dict(Membership.objects.filter(group_id=gid).values_list("user_id", "role"))


# group/create


def test_group_create_returns_the_new_id_and_stores_the_group(client_for, alice, bob):
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk}]))
    assert is_id(gid)
    group = Group.objects.get(pk=gid)
    assert (group.name, group.avatar, group.mode, group.creator_id) == (
        "team",
        "t.png",
        2,
        alice.pk,
    )


def test_group_create_makes_the_creator_an_admin_and_the_others_members(
    client_for, alice, bob, carol
):
    users = [{"uid": bob.pk, "role": 1}, {"uid": carol.pk, "role": 1}]
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, users))
    assert roles(gid) == {alice.pk: 2, bob.pk: 1, carol.pk: 1}


def test_group_create_keeps_the_creator_admin_even_if_listed_as_member(client_for, alice, bob):
    users = [{"uid": alice.pk, "role": 1}, {"uid": bob.pk, "role": 1}]
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, users))
    assert roles(gid) == {alice.pk: 2, bob.pk: 1}


def test_group_create_without_users_holds_only_the_creator(client_for, alice):
    gid = ok(client_for(alice), "group/create", create_body(alice.pk))
    assert roles(gid) == {alice.pk: 2}


def test_group_create_without_creator_uid_uses_the_token_user(client_for, alice, bob):
    gid = ok(client_for(alice), "group/create", create_body(None, [{"uid": bob.pk}]))
    assert Group.objects.get(pk=gid).creator_id == alice.pk
    assert roles(gid)[alice.pk] == 2


def test_group_create_may_name_other_admins(client_for, alice, bob):
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk, "role": 2}]))
    assert roles(gid) == {alice.pk: 2, bob.pk: 2}


def test_group_create_with_creator_uid_of_another_user_is_403_and_creates_nothing(
    client_for, alice, bob
):
    fails(client_for(alice), "group/create", create_body(bob.pk, [{"uid": alice.pk}]), expect=403)
    assert not Group.objects.exists()


def test_group_create_with_an_unknown_member_is_404_and_creates_nothing(client_for, alice, bob):
    users = [{"uid": bob.pk}, {"uid": bob.pk + 1000}]
    fails(client_for(alice), "group/create", create_body(alice.pk, users), expect=404)
    assert not Group.objects.exists()
    assert not Membership.objects.exists()


def test_group_create_mode_1_with_one_other_user_is_their_one_to_one_chat(client_for, alice, bob):
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk}], mode=1))
    group = Group.objects.get(pk=gid)
    assert group.mode == Group.ONE_TO_ONE
    assert set(roles(gid)) == {alice.pk, bob.pk}


def test_group_create_mode_1_is_unique_per_pair(client_for, alice, bob):
    first = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk}], mode=1))
    again = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk}], mode=1))
    reverse = ok(client_for(bob), "group/create", create_body(bob.pk, [{"uid": alice.pk}], mode=1))
    assert first == again == reverse
    assert Group.objects.filter(mode=Group.ONE_TO_ONE).count() == 1


def test_group_create_mode_1_with_another_pair_is_another_chat(client_for, alice, bob, carol):
    with_bob = ok(client_for(alice), "group/create", create_body(None, [{"uid": bob.pk}], mode=1))
    with_carol = ok(
        client_for(alice), "group/create", create_body(None, [{"uid": carol.pk}], mode=1)
    )
    assert with_bob != with_carol


@pytest.mark.parametrize("others", [0, 2])
def test_group_create_mode_1_needs_exactly_one_other_user(client_for, alice, bob, carol, others):
    users = [{"uid": u.pk} for u in (bob, carol)[:others]]
    assert fails(
        client_for(alice), "group/create", create_body(alice.pk, users, mode=1), expect=400
    ).startswith("users")
    assert not Group.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"users": []}, "group"),
        ({"group": {"name": "g", "mode": 3}}, "group.mode"),
        ({"group": {"name": "g", "creatorUid": "me"}}, "group.creatorUid"),
        ({"group": {"name": "g"}, "users": [{"role": 1}]}, "users"),
        ({"group": {"name": "g"}, "users": [{"uid": 5, "role": 7}]}, "users"),
        ({"group": {"name": "g"}, "users": "everyone"}, "users"),
    ],
)
def test_group_create_with_a_missing_or_invalid_field_is_400_naming_it(
    client_for, alice, body, field
):
    assert fails(client_for(alice), "group/create", body, expect=400).startswith(field)
    assert not Group.objects.exists()


# group/update


def test_group_update_by_the_admin_changes_name_and_avatar(client_for, alice, bob):
    group = group_of(alice, bob)
    body = {"id": group.pk, "name": "renamed", "avatar": "new.png"}
    assert ok(client_for(alice), "group/update", body) is True
    group.refresh_from_db()
    assert (group.name, group.avatar) == ("renamed", "new.png")


def test_group_update_by_a_plain_member_is_403_and_changes_nothing(client_for, alice, bob):
    group = group_of(alice, bob, name="before")
    fails(client_for(bob), "group/update", {"id": group.pk, "name": "x", "avatar": ""}, expect=403)
    group.refresh_from_db()
    assert group.name == "before"


def test_group_update_by_a_second_admin_is_allowed(client_for, alice, bob):
    gid = ok(client_for(alice), "group/create", create_body(alice.pk, [{"uid": bob.pk, "role": 2}]))
    ok(client_for(bob), "group/update", {"id": gid, "name": "by bob", "avatar": ""})
    assert Group.objects.get(pk=gid).name == "by bob"


def test_group_update_by_a_non_member_is_403(client_for, alice, bob, carol):
    group = group_of(alice, bob, name="before")
    fails(client_for(carol), "group/update", {"id": group.pk, "name": "x"}, expect=403)
    assert Group.objects.get(pk=group.pk).name == "before"


def test_group_update_of_a_nonexistent_group_is_403(client_for, alice):
    fails(client_for(alice), "group/update", {"id": 999_999, "name": "x"}, expect=403)


@pytest.mark.parametrize(("body", "field"), [({"name": "x"}, "id"), ({"id": 1}, "name")])
def test_group_update_with_a_missing_field_is_400_naming_it(client_for, alice, body, field):
    assert fails(client_for(alice), "group/update", body, expect=400).startswith(field)


# group/get


def test_group_get_lists_the_groups_i_am_in(client_for, alice, bob, carol):
    mine = group_of(alice, bob, name="mine")
    theirs = group_of(bob, carol, name="theirs")
    chat = direct_chat(carol, alice)
    groups = ok(client_for(alice), "group/get", uid=alice.pk)
    assert sorted(g["id"] for g in groups) == sorted([mine.pk, chat.pk])
    assert theirs.pk not in [g["id"] for g in groups]
    by_id = {g["id"]: g for g in groups}
    assert by_id[mine.pk] == {
        "id": mine.pk,
        "name": "mine",
        "avatar": "",
        "mode": 2,
        "creatorUid": alice.pk,
    }
    assert by_id[chat.pk]["mode"] == 1 and by_id[chat.pk]["creatorUid"] == carol.pk
    assert all(set(g) == GROUP_KEYS for g in groups)


def test_group_get_without_uid_uses_the_token_user(client_for, alice, bob):
    group = group_of(alice, bob)
    assert [g["id"] for g in ok(client_for(bob), "group/get")] == [group.pk]


def test_group_get_for_another_uid_is_403(client_for, alice, bob):
    group_of(bob)
    fails(client_for(alice), "group/get", uid=bob.pk, expect=403)


def test_group_get_with_no_groups_is_an_empty_list(client_for, alice):
    assert ok(client_for(alice), "group/get", uid=alice.pk) == []


# group/user/get


def test_group_user_get_lists_members_with_their_roles(client_for, make_user, alice, bob):
    carol = make_user("carol", email="c@example.org")
    group = group_of(alice, bob, carol)
    members = ok(client_for(bob), "group/user/get", gid=group.pk)
    assert {m["user"]["id"]: m["role"] for m in members} == {alice.pk: 2, bob.pk: 1, carol.pk: 1}
    assert all(set(m) == {"role", "user"} and set(m["user"]) == USER_KEYS for m in members)
    assert {
        "id": carol.pk,
        "name": "Carol",
        "avatar": "",
        "email": "c@example.org",
        "account": "carol",
    } in [m["user"] for m in members]


def test_group_user_get_non_member_and_nonexistent_group_answer_identically_403(
    client_for, alice, bob, carol
):
    group = group_of(alice, bob)
    gid, carols = group.pk, client_for(carol)
    for_existing = carols.get("/api/group/user/get", {"gid": gid})
    group.delete()
    for_missing = carols.get("/api/group/user/get", {"gid": gid})
    assert for_existing.status_code == for_missing.status_code == 403
    assert for_existing.content == for_missing.content
    assert b"alice" not in for_existing.content and b"bob" not in for_existing.content


def test_group_user_get_pages_through_members(client_for, make_user, alice):
    others = [make_user() for _ in range(4)]
    group = group_of(alice, *others)
    client = client_for(alice)
    first = ok(client, "group/user/get", gid=group.pk, page=1, size=3)
    second = ok(client, "group/user/get", gid=group.pk, page=2, size=3)
    assert (len(first), len(second)) == (3, 2)
    assert {m["user"]["id"] for m in first + second} == {alice.pk, *(u.pk for u in others)}


def test_group_user_get_without_gid_is_400_naming_gid(client_for, alice):
    assert fails(client_for(alice), "group/user/get", expect=400).startswith("gid")


# group/user/change


def test_admin_adds_members_as_plain_members(client_for, alice, bob, carol):
    group = group_of(alice)
    body = {"gid": group.pk, "uids": [bob.pk, carol.pk], "opType": ADD}
    assert ok(client_for(alice), "group/user/change", body) is True
    assert roles(group.pk) == {alice.pk: 2, bob.pk: 1, carol.pk: 1}


def test_added_member_gains_access(client_for, alice, bob):
    group = group_of(alice)
    send(alice, group, "before bob")
    bobs = client_for(bob)
    fails(bobs, "message/history", {"gid": group.pk}, expect=403)
    ok(client_for(alice), "group/user/change", {"gid": group.pk, "uids": [bob.pk], "opType": ADD})
    assert [e["msg"]["content"] for e in ok(bobs, "message/history", {"gid": group.pk})] == [
        "before bob"
    ]


def test_adding_a_member_tells_its_open_connections(client_for, settings, alice, bob):
    group = group_of(alice)
    send(alice, group)
    send(alice, group)
    client = client_for(alice)
    body = {"gid": group.pk, "uids": [bob.pk], "opType": ADD}
    events = events_published(
        settings, user_channel(bob.pk), lambda: ok(client, "group/user/change", body)
    )
    assert events == [{"type": "member.joined", "gid": group.pk, "seq": 2, "mv": 2}]


def test_removing_a_member_tells_its_open_connections(client_for, settings, alice, bob):
    group = group_of(alice, bob)
    client = client_for(alice)
    body = {"gid": group.pk, "uids": [bob.pk], "opType": REMOVE}
    events = events_published(
        settings, user_channel(bob.pk), lambda: ok(client, "group/user/change", body)
    )
    assert events == [{"type": "member.left", "gid": group.pk}]


def test_adding_an_existing_member_changes_nothing(client_for, alice, bob):
    group = group_of(alice, bob)
    body = {"gid": group.pk, "uids": [alice.pk, bob.pk], "opType": ADD}
    ok(client_for(alice), "group/user/change", body)
    assert roles(group.pk) == {alice.pk: 2, bob.pk: 1}


def test_adding_an_unknown_user_is_404_and_adds_no_one(client_for, alice, bob):
    group = group_of(alice)
    body = {"gid": group.pk, "uids": [bob.pk, bob.pk + 1000], "opType": ADD}
    fails(client_for(alice), "group/user/change", body, expect=404)
    assert roles(group.pk) == {alice.pk: 2}


def test_admin_removes_a_member(client_for, alice, bob, carol):
    group = group_of(alice, bob, carol)
    body = {"gid": group.pk, "uids": [bob.pk], "opType": REMOVE}
    assert ok(client_for(alice), "group/user/change", body) is True
    assert roles(group.pk) == {alice.pk: 2, carol.pk: 1}


def test_removed_member_loses_access(client_for, alice, bob):
    group = group_of(alice, bob)
    send(alice, group)
    bobs = client_for(bob)
    ok(client_for(alice), "group/user/change", {"gid": group.pk, "uids": [bob.pk], "opType": 2})
    fails(bobs, "message/history", {"gid": group.pk}, expect=403)
    fails(bobs, "group/user/get", gid=group.pk, expect=403)
    fails(bobs, "message/group/read", {"gid": group.pk}, expect=403)
    assert ok(bobs, "group/get") == []
    assert ok(bobs, "message/chat/list", {"page": 1, "size": 10}) == []


@pytest.mark.parametrize("op", [ADD, REMOVE])
def test_group_user_change_by_a_plain_member_is_403(client_for, make_user, alice, bob, op):
    carol = make_user("carol")
    group = group_of(alice, bob, *([carol] if op == REMOVE else []))
    before = roles(group.pk)
    body = {"gid": group.pk, "uids": [carol.pk], "opType": op}
    fails(client_for(bob), "group/user/change", body, expect=403)
    assert roles(group.pk) == before


def test_a_plain_member_may_remove_itself(client_for, alice, bob):
    group = group_of(alice, bob)
    body = {"gid": group.pk, "uids": [bob.pk], "opType": REMOVE}
    assert ok(client_for(bob), "group/user/change", body) is True
    assert roles(group.pk) == {alice.pk: 2}


def test_a_member_removing_itself_and_another_is_403(client_for, alice, bob, carol):
    group = group_of(alice, bob, carol)
    body = {"gid": group.pk, "uids": [bob.pk, carol.pk], "opType": REMOVE}
    fails(client_for(bob), "group/user/change", body, expect=403)
    assert set(roles(group.pk)) == {alice.pk, bob.pk, carol.pk}


def test_group_user_change_by_a_non_member_is_403(client_for, alice, bob, carol):
    group = group_of(alice, bob)
    for op in (ADD, REMOVE):
        body = {"gid": group.pk, "uids": [carol.pk], "opType": op}
        fails(client_for(carol), "group/user/change", body, expect=403)
    assert set(roles(group.pk)) == {alice.pk, bob.pk}


@pytest.mark.parametrize("op", [ADD, REMOVE])
def test_group_user_change_on_a_one_to_one_chat_is_403(client_for, alice, bob, carol, op):
    chat = direct_chat(alice, bob)
    uids = [carol.pk] if op == ADD else [bob.pk]
    fails(
        client_for(alice),
        "group/user/change",
        {"gid": chat.pk, "uids": uids, "opType": op},
        expect=403,
    )
    assert set(roles(chat.pk)) == {alice.pk, bob.pk}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"uids": [1], "opType": 1}, "gid"),
        ({"gid": 1, "opType": 1}, "uids"),
        ({"gid": 1, "uids": [], "opType": 1}, "uids"),
        ({"gid": 1, "uids": ["x"], "opType": 1}, "uids"),
        ({"gid": 1, "uids": [1]}, "opType"),
        ({"gid": 1, "uids": [1], "opType": 3}, "opType"),
    ],
)
def test_group_user_change_with_a_missing_or_invalid_field_is_400_naming_it(
    client_for, alice, body, field
):
    assert fails(client_for(alice), "group/user/change", body, expect=400).startswith(field)
