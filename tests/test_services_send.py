"""The send service and the watermarks (chat.services): idempotent send, gap-free seqs
under concurrent writers (real threads on the real database: the SQLite test database
is a file), and watermarks that only rise."""

import pytest

from chat.models import Group, Membership, Message
from chat.services import (
    REMOVE,
    change_members,
    create_group,
    entries_between,
    mark_delivered,
    mark_read,
    members_version,
    send_message,
)
from infra.errors import NotMember, UnknownMessage
from tests.rest_helpers import group_of, run_in_threads, send


def send_as(user, group, client_msg_id: str, content: str = "hi"):
    return send_message(
        sender_id=user.pk, gid=group.pk, kind="Text", content=content, client_msg_id=client_msg_id
    )


def marks(user, group) -> tuple[int, int]:
    membership = Membership.objects.get(user=user, group=group)
    return membership.delivered_seq, membership.read_seq


# Sending


def test_send_allocates_seqs_1_2_3_and_moves_the_groups_last_message(alice, bob):
    group = group_of(alice, bob)
    messages = [send(alice, group), send(bob, group), send(alice, group)]
    assert [m.seq for m in messages] == [1, 2, 3]
    assert [m.pk for m in messages] == sorted(m.pk for m in messages)
    group.refresh_from_db()
    assert (group.last_seq, group.last_msg_id) == (3, messages[-1].pk)


def test_send_stores_what_was_sent(alice, bob):
    group = group_of(alice, bob)
    result = send_message(
        sender_id=bob.pk, gid=group.pk, kind="RichText", content="<b>x</b>", client_msg_id="c-1"
    )
    assert result.created
    stored = Message.objects.get(pk=result.message.pk)
    assert (
        stored.group_id,
        stored.sender_id,
        stored.kind,
        stored.content,
        stored.client_msg_id,
    ) == (
        group.pk,
        bob.pk,
        "RichText",
        "<b>x</b>",
        "c-1",
    )


def test_seqs_count_per_group(alice, bob):
    one, two = group_of(alice, bob), group_of(alice, bob, name="two")
    assert [send(alice, one).seq, send(alice, two).seq, send(bob, one).seq] == [1, 1, 2]


def test_retry_with_the_same_client_msg_id_returns_the_same_message_and_stores_nothing(alice, bob):
    group = group_of(alice, bob)
    first = send_as(alice, group, "retry-1", "hello")
    again = send_as(alice, group, "retry-1", "hello")
    assert first.created and not again.created
    assert again.message.pk == first.message.pk and again.message.seq == 1
    assert Message.objects.count() == 1
    group.refresh_from_db()
    assert group.last_seq == 1


def test_retry_returns_the_original_even_with_different_content(alice, bob):
    group = group_of(alice, bob)
    first = send_as(alice, group, "retry-2", "original")
    again = send_as(alice, group, "retry-2", "changed")
    assert again.message.pk == first.message.pk
    assert Message.objects.get().content == "original"


def test_retry_after_other_messages_returns_the_original(alice, bob):
    group = group_of(alice, bob)
    first = send_as(alice, group, "retry-3")
    send(bob, group)
    again = send_as(alice, group, "retry-3")
    assert (again.created, again.message.pk, again.message.seq) == (False, first.message.pk, 1)
    assert Message.objects.count() == 2


def test_same_client_msg_id_from_another_sender_is_another_message(alice, bob):
    group = group_of(alice, bob)
    mine = send_as(alice, group, "shared-id")
    theirs = send_as(bob, group, "shared-id")
    assert theirs.created and theirs.message.pk != mine.message.pk
    assert [m.seq for m in Message.objects.order_by("seq")] == [1, 2]


def test_same_client_msg_id_in_another_group_is_the_same_send(alice, bob):
    # Idempotency is per (uid, clientMsgId), as the protocol states it.
    one, two = group_of(alice, bob), group_of(alice, bob, name="two")
    first = send_as(alice, one, "cross")
    again = send_as(alice, two, "cross")
    assert (again.created, again.message.pk) == (False, first.message.pk)
    assert Message.objects.filter(group=two).count() == 0


def test_send_by_a_non_member_is_rejected_and_not_stored(alice, bob, make_user):
    group = group_of(alice, bob)
    with pytest.raises(NotMember):
        send(make_user("mallory"), group)
    assert not Message.objects.exists()
    group.refresh_from_db()
    assert (group.last_seq, group.last_msg_id) == (0, None)


def test_send_to_a_nonexistent_group_is_not_member(alice):
    with pytest.raises(NotMember):
        send_message(sender_id=alice.pk, gid=999_999, kind="Text", content="x", client_msg_id="x")
    assert not Message.objects.exists()


def test_send_raises_the_senders_watermarks_only(alice, bob):
    group = group_of(alice, bob)
    send(alice, group)
    message = send(alice, group)
    assert marks(alice, group) == (message.seq, message.seq) == (2, 2)
    assert marks(bob, group) == (0, 0)


def test_send_marks_everything_before_it_read_for_the_sender(alice, bob):
    group = group_of(alice, bob)
    send(bob, group)
    send(bob, group)
    send(alice, group)
    assert marks(alice, group) == (3, 3)


# Watermarks


def test_mark_delivered_raises_the_delivered_watermark_only(alice, bob):
    group = group_of(alice, bob)
    message = send(alice, group)
    assert mark_delivered(user_id=bob.pk, gid=group.pk, msg_id=message.pk) is True
    assert marks(bob, group) == (1, 0)


def test_mark_delivered_for_an_older_message_changes_nothing(alice, bob):
    group = group_of(alice, bob)
    old, new = send(alice, group), send(alice, group)
    mark_delivered(user_id=bob.pk, gid=group.pk, msg_id=new.pk)
    assert mark_delivered(user_id=bob.pk, gid=group.pk, msg_id=old.pk) is False
    assert mark_delivered(user_id=bob.pk, gid=group.pk, msg_id=new.pk) is False
    assert marks(bob, group) == (2, 0)


def test_mark_read_raises_read_and_delivered(alice, bob):
    group = group_of(alice, bob)
    send(alice, group)
    message = send(alice, group)
    assert mark_read(user_id=bob.pk, gid=group.pk, msg_id=message.pk) is True
    assert marks(bob, group) == (2, 2)


def test_mark_read_for_an_older_message_changes_nothing(alice, bob):
    group = group_of(alice, bob)
    old, new = send(alice, group), send(alice, group)
    mark_read(user_id=bob.pk, gid=group.pk, msg_id=new.pk)
    assert mark_read(user_id=bob.pk, gid=group.pk, msg_id=old.pk) is False
    assert marks(bob, group) == (2, 2)


def test_mark_read_below_the_delivered_watermark_keeps_delivered(alice, bob):
    group = group_of(alice, bob)
    first = send(alice, group)
    second, third = send(alice, group), send(alice, group)
    mark_delivered(user_id=bob.pk, gid=group.pk, msg_id=third.pk)
    assert mark_read(user_id=bob.pk, gid=group.pk, msg_id=first.pk) is True
    assert marks(bob, group) == (3, 1)
    assert second.seq == 2


def test_watermark_for_a_message_of_another_group_is_unknown_message(alice, bob):
    group, other = group_of(alice, bob), group_of(alice, bob, name="other")
    foreign = send(alice, other)
    send(alice, group)
    for mark in (mark_delivered, mark_read):
        with pytest.raises(UnknownMessage):
            mark(user_id=bob.pk, gid=group.pk, msg_id=foreign.pk)
    assert marks(bob, group) == (0, 0)


def test_watermark_for_a_nonexistent_message_is_unknown_message(alice, bob):
    group = group_of(alice, bob)
    send(alice, group)
    with pytest.raises(UnknownMessage):
        mark_read(user_id=bob.pk, gid=group.pk, msg_id=999_999)


def test_watermark_by_a_non_member_is_not_member(alice, bob, make_user):
    group = group_of(alice, bob)
    message = send(alice, group)
    outsider = make_user("outsider")
    for mark in (mark_delivered, mark_read):
        with pytest.raises(NotMember):
            mark(user_id=outsider.pk, gid=group.pk, msg_id=message.pk)


# Concurrent writers


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_get_contiguous_seqs_in_id_order(make_user):
    senders = [make_user(f"sender{i}") for i in range(8)]
    group = group_of(senders[0], *senders[1:])
    per_thread = 10

    def work(index: int) -> list[int]:
        return [
            send_as(senders[index], group, f"t{index}-{n}").message.pk for n in range(per_thread)
        ]

    sent = [pk for ids in run_in_threads(len(senders), work) for pk in ids]
    stored = list(Message.objects.filter(group=group).order_by("seq").values_list("seq", "pk"))
    total = len(senders) * per_thread
    assert [seq for seq, _ in stored] == list(range(1, total + 1))
    ids = [pk for _, pk in stored]
    assert ids == sorted(ids), "ids must rise with seqs"
    assert sorted(sent) == sorted(ids)
    group.refresh_from_db()
    assert (group.last_seq, group.last_msg_id) == (total, ids[-1])
    for index, sender in enumerate(senders):
        own = Message.objects.filter(sender=sender).order_by("seq")
        assert [m.client_msg_id for m in own] == [f"t{index}-{n}" for n in range(per_thread)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_client_msg_id_store_one_message(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    group = group_of(alice, bob)
    results = run_in_threads(8, lambda index: send_as(alice, group, "same-id"))
    assert len({r.message.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Message.objects.count() == 1
    group.refresh_from_db()
    assert group.last_seq == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_into_different_groups_store_one_message(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    groups = [group_of(alice, bob, name=f"g{i}") for i in range(6)]
    results = run_in_threads(len(groups), lambda index: send_as(alice, groups[index], "one-id"))
    assert len({r.message.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Message.objects.count() == 1
    # The losers allocated no seq: no group has a hole.
    for group in groups:
        group.refresh_from_db()
    assert sorted(g.last_seq for g in groups) == [0] * 5 + [1]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reads_leave_the_highest_watermark(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    group = group_of(alice, bob)
    messages = [send(alice, group) for _ in range(8)]
    run_in_threads(
        len(messages),
        lambda index: mark_read(user_id=bob.pk, gid=group.pk, msg_id=messages[index].pk),
    )
    assert marks(bob, group) == (8, 8)
    assert Group.objects.get(pk=group.pk).last_seq == 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_one_to_one_chat_creation_yields_one_chat(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    pair = (alice, bob)
    results = run_in_threads(
        6,
        lambda index: create_group(
            creator=pair[index % 2],
            name="",
            avatar="",
            mode=Group.ONE_TO_ONE,
            members={pair[(index + 1) % 2].pk: 1},
        ),
    )
    assert len({group.pk for group in results}) == 1
    assert Group.objects.count() == 1
    assert Membership.objects.filter(group=results[0]).count() == 2


def test_what_a_connection_repairs_is_read_for_members_only(alice, bob, make_user):
    """entries_between (gap and tail repairs) and members_version (the check behind a
    new members version) answer None for someone outside the group: no lost
    member.left event lets a removed user read on."""
    group = group_of(alice, bob)
    send(alice, group)
    outsider = make_user()
    assert entries_between(user_id=outsider.pk, gid=group.pk, after_seq=0, upto_seq=10) is None
    assert members_version(user_id=outsider.pk, gid=group.pk) is None
    entries = entries_between(user_id=bob.pk, gid=group.pk, after_seq=0, upto_seq=10)
    assert [entry.seq for entry in entries] == [1]
    change_members(user=alice, gid=group.pk, uids=[bob.pk], op=REMOVE)
    assert entries_between(user_id=bob.pk, gid=group.pk, after_seq=0, upto_seq=10) is None
