"""Query counts (DESIGN.md): a message costs the same statements whatever the group
size, and every list costs a fixed number of queries whatever the page size."""

import itertools

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chat.models import Membership, Reaction
from chat.services import (
    edit_message,
    mark_read,
    react_to_message,
    recall_message,
    search,
    send_message,
    typing,
)
from tests.rest_helpers import befriend, direct_chat, group_of, ok, send

_numbers = itertools.count(1)
SMALL, LARGE = 5, 50


def bulk_users(count: int) -> list[User]:
    """`count` users in one INSERT (no per-user hashing or signals)."""
    password = make_password(None)
    batch = next(_numbers)
    return User.objects.bulk_create(
        [
            User(account=f"bulk{batch}-{i}", name=f"Bulk {i}", password=password)
            for i in range(count)
        ]
    )


def queries_of(action) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        result = action()
    return len(captured), result


def test_send_costs_the_same_queries_for_2_and_500_members(alice):
    small = group_of(alice, *bulk_users(1))
    large = group_of(alice, *bulk_users(499))
    assert Membership.objects.filter(group=large).count() == 500
    # Warm up: the first send of a process may load content types or the like.
    send(alice, group_of(alice, name="warm-up"))

    def sender(group, cmid):
        return lambda: send_message(
            sender_id=alice.pk, gid=group.pk, kind="Text", content="x", client_msg_id=cmid
        )

    small_count, _ = queries_of(sender(small, "small"))
    large_count, result = queries_of(sender(large, "large"))
    assert result.created
    assert small_count == large_count
    # PostgreSQL: one statement. SQLite: five, in a transaction (here a savepoint).
    assert large_count == {"postgresql": 1, "sqlite": 7}[connection.vendor]


def test_idempotent_retry_costs_the_same_queries_for_2_and_200_members(alice):
    small = group_of(alice, *bulk_users(1))
    large = group_of(alice, *bulk_users(199))
    for group in (small, large):
        send_message(
            sender_id=alice.pk, gid=group.pk, kind="Text", content="x", client_msg_id=f"r{group.pk}"
        )
    counts = [
        queries_of(
            lambda g=group: send_message(
                sender_id=alice.pk, gid=g.pk, kind="Text", content="x", client_msg_id=f"r{g.pk}"
            )
        )[0]
        for group in (small, large)
    ]
    assert counts[0] == counts[1]


def test_read_costs_the_same_queries_for_2_and_200_members(alice):
    small = group_of(alice, *bulk_users(1))
    large = group_of(alice, *bulk_users(199))
    counts = []
    for group in (small, large):
        member = Membership.objects.filter(group=group).exclude(user=alice).first().user
        message = send(member, group)
        counts.append(
            queries_of(
                lambda g=group, m=message: mark_read(user_id=alice.pk, gid=g.pk, msg_id=m.pk)
            )[0]
        )
    assert counts[0] == counts[1]


def test_group_read_over_rest_costs_the_same_for_2_and_200_members(client_for, alice):
    small = group_of(alice, *bulk_users(1))
    large = group_of(alice, *bulk_users(199))
    client = client_for(alice)
    for group in (small, large):
        send(alice, group)
    counts = [
        queries_of(lambda g=group: ok(client, "message/group/read", {"gid": g.pk}))[0]
        for group in (small, large)
    ]
    assert counts[0] == counts[1]


def page_counts(client, route: str, *, post: bool, **params) -> list[tuple[int, int]]:
    """(queries, rows) of pages of size SMALL and LARGE of a route."""
    results = []
    for size in (SMALL, LARGE):
        if post:
            count, data = queries_of(lambda s=size: ok(client, route, {**params, "size": s}))
        else:
            count, data = queries_of(lambda s=size: ok(client, route, **params, size=s))
        results.append((count, len(data)))
    return results


def assert_fixed_cost(results: list[tuple[int, int]], limit: int) -> None:
    (small_queries, small_rows), (large_queries, large_rows) = results
    assert (small_rows, large_rows) == (SMALL, LARGE), "pages must be full"
    assert small_queries == large_queries
    assert large_queries <= limit


def test_chat_list_costs_a_fixed_number_of_queries_whatever_the_page_size(client_for, alice):
    peers = bulk_users(LARGE + 2)
    for index, peer in enumerate(peers):
        chat = direct_chat(alice, peer) if index % 2 else group_of(alice, peer)
        send(peer, chat)
    client = client_for(alice)
    assert_fixed_cost(page_counts(client, "message/chat/list", post=True, page=1), limit=4)


def test_history_costs_a_fixed_number_of_queries_whatever_the_page_size(client_for, alice):
    senders = bulk_users(10)
    group = group_of(alice, *senders)
    for index in range(LARGE + 5):
        send(senders[index % len(senders)], group)
    client = client_for(alice)
    assert_fixed_cost(page_counts(client, "message/history", post=True, gid=group.pk), limit=4)


@pytest.mark.parametrize("path", ["scan", "index"])
@pytest.mark.parametrize("narrowed", [False, True])
def test_search_costs_a_fixed_number_of_queries_whatever_the_page_size(
    client_for, alice, monkeypatch, path, narrowed
):
    if path == "index":
        monkeypatch.setattr(search.Scope, "through_index", property(lambda s: bool(s.indexed)))
    senders = bulk_users(10)
    groups = [group_of(alice, *senders, name=f"g{i}") for i in range(3)]
    for index in range(LARGE + 5):
        message = send(senders[index % len(senders)], groups[0], f"found {index} found")
        send(senders[(index + 1) % len(senders)], groups[index % 3], f"other {index}")
        Reaction.objects.create(message=message, user=senders[index % 3], emoji="👍")
    query = {"q": "found", "post": True} | ({"gid": groups[0].pk} if narrowed else {})
    # SQLite first indexes the messages stored since its last batch: two statements in
    # a savepoint (the test's transaction is around it).
    catch_up = 4 if connection.vendor == "sqlite" else 0
    assert_fixed_cost(page_counts(client_for(alice), "message/search", **query), limit=5 + catch_up)


def test_member_list_costs_a_fixed_number_of_queries_whatever_the_page_size(client_for, alice):
    group = group_of(alice, *bulk_users(LARGE + 5))
    client = client_for(alice)
    assert_fixed_cost(page_counts(client, "group/user/get", post=False, gid=group.pk), limit=4)


@pytest.mark.parametrize("status", [0, 1])
def test_friend_list_costs_a_fixed_number_of_queries_whatever_the_page_size(
    client_for, alice, status
):
    for other in bulk_users(LARGE + 5):
        if status == 1:
            befriend(alice, other)
        else:
            other.friendships_out.create(to_user=alice)
    client = client_for(alice)
    assert_fixed_cost(page_counts(client, "friend/list", post=False, status=status), limit=3)


def test_group_list_costs_a_fixed_number_of_queries_whatever_the_page_size(client_for, alice):
    others = bulk_users(3)
    for _ in range(LARGE + 5):
        group_of(alice, *others)
    client = client_for(alice)
    assert_fixed_cost(page_counts(client, "group/get", post=False), limit=3)


def small_and_large_groups(alice) -> tuple:
    """A group of 2 and one of 500, each with one message of alice's (the large one's
    with 300 reactions on it)."""
    small = group_of(alice, *bulk_users(1))
    large = group_of(alice, *bulk_users(499))
    messages = [send(alice, group) for group in (small, large)]
    reactors = Membership.objects.filter(group=large).exclude(user=alice)[:300]
    Reaction.objects.bulk_create(
        Reaction(message=messages[1], user_id=m.user_id, emoji="👍") for m in reactors
    )
    return (small, large), messages


@pytest.mark.parametrize("change", ["react", "edit", "recall"])
def test_a_change_costs_the_same_for_2_and_500_members(alice, change):
    groups, messages = small_and_large_groups(alice)
    counts = []
    for n, (group, message) in enumerate(zip(groups, messages, strict=True)):
        fields = {"user_id": alice.pk, "gid": group.pk, "msg_id": message.pk}
        fields["client_msg_id"] = f"{change}-{n}"
        if change == "react":
            counts.append(queries_of(lambda f=fields: react_to_message(**f, emoji="🎉"))[0])
        elif change == "edit":
            counts.append(queries_of(lambda f=fields: edit_message(**f, content="new"))[0])
        else:
            counts.append(queries_of(lambda f=fields: recall_message(**f))[0])
    assert counts[0] == counts[1]
    assert counts[1] <= 12


def test_typing_costs_one_query_whatever_the_group_size(alice):
    groups, _ = small_and_large_groups(alice)
    counts = [
        queries_of(lambda g=group: typing(user_id=alice.pk, gid=g.pk, client_msg_id="t"))[0]
        for group in groups
    ]
    assert counts == [1, 1]
