"""Friend routes (docs/protocol.md §5): friend/add, friend/list, friend/status/modify."""

import pytest

from accounts.events import user_channel
from accounts.models import Friendship, User
from accounts.services import answer_friend
from chat.models import Group, Membership
from chat.services import pair_key
from infra.errors import NotFound
from tests.rest_helpers import (
    USER_KEYS,
    befriend,
    direct_chat,
    events_published,
    fails,
    is_id,
    ok,
    run_in_threads,
)

CONFIRM, REJECT = 1, 2


@pytest.fixture
def alice(make_user):
    return make_user("alice", email="alice@example.org")


@pytest.fixture
def bob(make_user):
    return make_user("bob", email="bob@example.org")


def ids(users: list[dict]) -> list[int]:
    return [user["id"] for user in users]


def direct_chats_of(a, b):
    return Group.objects.filter(pair_key=pair_key(a.pk, b.pk))


# friend/add


def test_friend_add_creates_a_request_with_status_apply(client_for, alice, bob):
    assert ok(client_for(alice), "friend/add", {"fid": bob.pk}) is True
    edge = Friendship.objects.get()
    assert (edge.from_user_id, edge.to_user_id, edge.status) == (alice.pk, bob.pk, 0)


def test_friend_add_does_not_make_friends_yet(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    assert ok(client_for(alice), "friend/list", status=1) == []
    assert ok(client_for(bob), "friend/list", status=1) == []
    assert not direct_chats_of(alice, bob).exists()


def test_friend_add_twice_keeps_one_request(client_for, alice, bob):
    client = client_for(alice)
    ok(client, "friend/add", {"fid": bob.pk})
    ok(client, "friend/add", {"fid": bob.pk})
    assert Friendship.objects.count() == 1


def test_friend_add_of_an_existing_friend_changes_nothing(client_for, alice, bob):
    befriend(alice, bob)
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    assert set(Friendship.objects.values_list("status", flat=True)) == {Friendship.FRIENDS}
    assert ok(client_for(bob), "friend/list", status=0) == []


def test_friend_add_of_an_unknown_user_is_404(client_for, alice):
    fails(client_for(alice), "friend/add", {"fid": alice.pk + 1000}, expect=404)
    assert not Friendship.objects.exists()


def test_friend_add_of_a_deactivated_user_is_404(client_for, alice, bob):
    User.objects.filter(pk=bob.pk).update(is_active=False)
    fails(client_for(alice), "friend/add", {"fid": bob.pk}, expect=404)


def test_friend_add_of_myself_is_400_naming_fid(client_for, alice):
    assert fails(client_for(alice), "friend/add", {"fid": alice.pk}, expect=400).startswith("fid")
    assert not Friendship.objects.exists()


@pytest.mark.parametrize("body", [{}, {"fid": "abc"}, {"fid": None}, {"fid": 0}, {"fid": True}])
def test_friend_add_without_a_valid_fid_is_400_naming_fid(client_for, alice, body):
    assert fails(client_for(alice), "friend/add", body, expect=400).startswith("fid")


# friend/list


def test_friend_list_status_0_shows_requests_waiting_for_my_answer(
    client_for, make_user, alice, bob
):
    carol = make_user("carol")
    ok(client_for(bob), "friend/add", {"fid": alice.pk})
    ok(client_for(carol), "friend/add", {"fid": alice.pk})
    pending = ok(client_for(alice), "friend/list", status=0)
    assert sorted(ids(pending)) == sorted([bob.pk, carol.pk])
    assert all(set(user) == USER_KEYS and is_id(user["id"]) for user in pending)


def test_friend_list_status_0_leaves_out_requests_i_sent(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    assert ok(client_for(alice), "friend/list", status=0) == []
    assert ids(ok(client_for(bob), "friend/list", status=0)) == [alice.pk]


def test_friend_list_status_1_shows_my_friends(client_for, make_user, alice, bob):
    carol, dave = make_user("carol"), make_user("dave")
    befriend(alice, bob)
    befriend(alice, carol)
    befriend(bob, dave)
    ok(client_for(dave), "friend/add", {"fid": alice.pk})
    friends = ok(client_for(alice), "friend/list", status=1)
    assert sorted(ids(friends)) == sorted([bob.pk, carol.pk])
    assert friends[ids(friends).index(bob.pk)] == {
        "id": bob.pk,
        "name": "Bob",
        "avatar": "",
        "email": "bob@example.org",
        "account": "bob",
    }


def test_friend_list_pages_through_friends(client_for, make_user, alice):
    friends = [make_user() for _ in range(5)]
    for friend in friends:
        befriend(alice, friend)
    client = client_for(alice)
    first = ok(client, "friend/list", status=1, page=1, size=2)
    second = ok(client, "friend/list", status=1, page=2, size=2)
    third = ok(client, "friend/list", status=1, page=3, size=2)
    assert (len(first), len(second), len(third)) == (2, 2, 1)
    assert sorted(ids(first + second + third)) == sorted(f.pk for f in friends)


@pytest.mark.parametrize("status", [None, 2, "x"])
def test_friend_list_without_a_valid_status_is_400_naming_status(client_for, alice, status):
    query = {} if status is None else {"status": status}
    assert fails(client_for(alice), "friend/list", expect=400, **query).startswith("status")


# friend/status/modify


def test_confirm_makes_both_users_friends(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    assert ok(client_for(bob), "friend/status/modify", {"fid": alice.pk, "status": 1}) is True
    assert ids(ok(client_for(alice), "friend/list", status=1)) == [bob.pk]
    assert ids(ok(client_for(bob), "friend/list", status=1)) == [alice.pk]
    assert ok(client_for(bob), "friend/list", status=0) == []


def test_confirm_opens_a_one_to_one_chat_with_both_as_members(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    ok(client_for(bob), "friend/status/modify", {"fid": alice.pk, "status": CONFIRM})
    chat = direct_chats_of(alice, bob).get()
    assert chat.mode == Group.ONE_TO_ONE
    assert set(Membership.objects.filter(group=chat).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
    }
    for user in (alice, bob):
        groups = ok(client_for(user), "group/get", uid=user.pk)
        assert [(g["id"], g["mode"]) for g in groups] == [(chat.pk, 1)]


def test_confirm_tells_both_users_connections_about_the_new_chat(client_for, settings, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    bobs = client_for(bob)
    events = events_published(
        settings,
        user_channel(alice.pk),
        lambda: ok(bobs, "friend/status/modify", {"fid": alice.pk, "status": CONFIRM}),
    )
    chat = direct_chats_of(alice, bob).get()
    assert events == [{"type": "member.joined", "gid": chat.pk, "seq": 0, "mv": 1}]


def test_confirming_twice_is_404_the_second_time_and_keeps_one_chat(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    bobs = client_for(bob)
    ok(bobs, "friend/status/modify", {"fid": alice.pk, "status": CONFIRM})
    fails(bobs, "friend/status/modify", {"fid": alice.pk, "status": CONFIRM}, expect=404)
    assert direct_chats_of(alice, bob).count() == 1
    assert Group.objects.count() == 1


def test_requests_in_both_directions_lead_to_one_chat(client_for, alice, bob):
    alices, bobs = client_for(alice), client_for(bob)
    ok(alices, "friend/add", {"fid": bob.pk})
    ok(bobs, "friend/add", {"fid": alice.pk})
    ok(bobs, "friend/status/modify", {"fid": alice.pk, "status": CONFIRM})
    # Confirming settled Bob's request to Alice too: nothing is left to answer.
    fails(alices, "friend/status/modify", {"fid": bob.pk, "status": CONFIRM}, expect=404)
    assert Group.objects.count() == 1
    assert ids(ok(alices, "friend/list", status=1)) == [bob.pk]
    assert ok(alices, "friend/list", status=0) == []


def test_confirm_reuses_a_one_to_one_chat_that_already_exists(client_for, alice, bob):
    chat = direct_chat(alice, bob)
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    ok(client_for(bob), "friend/status/modify", {"fid": alice.pk, "status": CONFIRM})
    assert list(Group.objects.values_list("pk", flat=True)) == [chat.pk]


def test_reject_deletes_the_request(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    bobs = client_for(bob)
    assert ok(bobs, "friend/status/modify", {"fid": alice.pk, "status": REJECT}) is True
    assert not Friendship.objects.exists()
    assert ok(bobs, "friend/list", status=0) == []
    assert ok(bobs, "friend/list", status=1) == []
    assert not Group.objects.exists()


def test_after_a_reject_the_request_can_be_sent_again(client_for, alice, bob):
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    ok(client_for(bob), "friend/status/modify", {"fid": alice.pk, "status": REJECT})
    ok(client_for(alice), "friend/add", {"fid": bob.pk})
    assert ids(ok(client_for(bob), "friend/list", status=0)) == [alice.pk]


def test_answering_a_nonexistent_request_is_404(client_for, alice, bob):
    for status in (CONFIRM, REJECT):
        fails(
            client_for(bob), "friend/status/modify", {"fid": alice.pk, "status": status}, expect=404
        )
    assert not Friendship.objects.exists()
    assert not Group.objects.exists()


def test_answering_my_own_request_is_404(client_for, alice, bob):
    alices = client_for(alice)
    ok(alices, "friend/add", {"fid": bob.pk})
    fails(alices, "friend/status/modify", {"fid": bob.pk, "status": CONFIRM}, expect=404)
    assert Friendship.objects.get().status == Friendship.APPLY
    assert not Group.objects.exists()


def test_answering_a_request_of_an_unknown_user_is_404(client_for, alice):
    body = {"fid": alice.pk + 1000, "status": CONFIRM}
    fails(client_for(alice), "friend/status/modify", body, expect=404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": 1}, "fid"),
        ({"fid": 5}, "status"),
        ({"fid": 5, "status": 0}, "status"),
        ({"fid": 5, "status": 3}, "status"),
        ({"fid": "x", "status": 1}, "fid"),
    ],
)
def test_answer_with_a_missing_or_invalid_field_is_400_naming_it(client_for, alice, body, field):
    assert fails(client_for(alice), "friend/status/modify", body, expect=400).startswith(field)


@pytest.mark.django_db(transaction=True)
def test_users_confirming_each_others_requests_at_once_become_friends_with_one_chat(make_user):
    # Several pairs: the race (both edges locked in opposite orders) does not bite every time.
    for _ in range(5):
        pair = (make_user(), make_user())
        Friendship.objects.create(from_user=pair[0], to_user=pair[1])
        Friendship.objects.create(from_user=pair[1], to_user=pair[0])

        def confirm(index: int, pair=pair) -> str:
            try:
                answer_friend(user=pair[index], fid=pair[1 - index].pk, accept=True)
            except NotFound:
                return "already settled"
            return "confirmed"

        assert sorted(run_in_threads(2, confirm)) == ["already settled", "confirmed"]
        edges = Friendship.objects.filter(from_user__in=pair)
        assert sorted(edges.values_list("status", flat=True)) == [1, 1]
        assert direct_chats_of(*pair).count() == 1
