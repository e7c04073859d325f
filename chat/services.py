"""Conversation operations: groups and members, sending, watermarks, lists.

Plain synchronous functions, each one transaction, shared by the REST views and the
WebSocket consumer. Every access to a group goes through `access_group`, which answers
the same for "no such group" and "not yours". A message costs a fixed number of
statements whatever the group size: it is stored once and the members' watermarks say
who has it.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Subquery, Window
from django.db.models.functions import Greatest, RowNumber
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.models import Group, Membership, Message
from chat.protocol import encode_read_push, format_time
from infra.errors import Forbidden, InvalidInput, NotFound, NotMember, UnknownMessage

ADD = 1
REMOVE = 2


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool


@dataclass(frozen=True)
class ChatEntry:
    """One row of the chat list or of history (docs/protocol.md: ChatMessage)."""

    group: Group
    message: Message
    user: User
    unread: int | None


@dataclass(frozen=True)
class SyncState:
    """What a connection needs after Login: each group's newest seq (where live pushes
    take over) and the undelivered messages to push now, oldest first per group."""

    last_seqs: dict[int, int]
    messages: list[Message]


def local_time(moment) -> str:
    return format_time(timezone.localtime(moment))


def pair_key(uid_a: int, uid_b: int) -> str:
    low, high = sorted((uid_a, uid_b))
    return f"{low}:{high}"


def access_group(*, user_id: int, gid: int) -> Membership:
    """The gate: `user_id`'s membership of `gid`, with the group loaded."""
    membership = (
        Membership.objects.select_related("group").filter(group_id=gid, user_id=user_id).first()
    )
    if membership is None:
        raise NotMember(f"user {user_id} is not a member of group {gid}")
    return membership


def access_group_as_admin(*, user_id: int, gid: int) -> Membership:
    membership = access_group(user_id=user_id, gid=gid)
    if membership.role != Membership.ADMIN:
        raise Forbidden("only a group admin may do this")
    return membership


def _existing_users(uids: set[int]) -> set[int]:
    found = set(User.objects.filter(pk__in=uids, is_active=True).values_list("pk", flat=True))
    missing = uids - found
    if missing:
        raise NotFound(f"users not found: {sorted(missing)}")
    return found


def _add_members(group: Group, roles: dict[int, int]) -> None:
    """New members start at the group's current seq: what came before is history, not
    unread."""
    Membership.objects.bulk_create(
        [
            Membership(
                group=group,
                user_id=uid,
                role=role,
                joined_seq=group.last_seq,
                delivered_seq=group.last_seq,
                read_seq=group.last_seq,
            )
            for uid, role in roles.items()
        ]
    )
    for uid in roles:
        events.member_joined(uid=uid, gid=group.pk, seq=group.last_seq)


@transaction.atomic
def create_group(
    *, creator: User, name: str, avatar: str, mode: int, members: dict[int, int]
) -> Group:
    """A new conversation; `members` maps uid → role. The creator is always an admin.
    A one-to-one chat (mode 1) has exactly one other member and is unique per pair."""
    others = {uid: role for uid, role in members.items() if uid != creator.pk}
    _existing_users(set(others))
    if mode == Group.ONE_TO_ONE:
        if len(others) != 1:
            raise InvalidInput("users: a one-to-one chat has exactly one other member")
        (other_id,) = others
        return open_direct_chat(user=creator, other_id=other_id, name=name, avatar=avatar)
    group = Group.objects.create(name=name, avatar=avatar, mode=mode, creator=creator)
    _add_members(group, {**others, creator.pk: Membership.ADMIN})
    return group


def open_direct_chat(*, user: User, other_id: int, name: str = "", avatar: str = "") -> Group:
    """The one-to-one chat of `user` and `other_id`, created if they have none."""
    key = pair_key(user.pk, other_id)
    with transaction.atomic():
        existing = Group.objects.filter(pair_key=key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                group = Group.objects.create(
                    name=name, avatar=avatar, mode=Group.ONE_TO_ONE, creator=user, pair_key=key
                )
        except IntegrityError:
            # A concurrent request created it first: use theirs.
            return Group.objects.get(pair_key=key)
        _add_members(group, {user.pk: Membership.ADMIN, other_id: Membership.ADMIN})
        return group


@transaction.atomic
def update_group(*, user: User, gid: int, name: str, avatar: str) -> None:
    access_group_as_admin(user_id=user.pk, gid=gid)
    Group.objects.filter(pk=gid).update(name=name, avatar=avatar)


def list_groups(*, user: User, offset: int, limit: int) -> list[Group]:
    return list(
        Group.objects.filter(memberships__user=user).order_by("-pk")[offset : offset + limit]
    )


def list_members(*, user: User, gid: int, offset: int, limit: int) -> list[Membership]:
    access_group(user_id=user.pk, gid=gid)
    return list(
        Membership.objects.filter(group_id=gid)
        .select_related("user")
        .order_by("pk")[offset : offset + limit]
    )


@transaction.atomic
def change_members(*, user: User, gid: int, uids: list[int], op: int) -> None:
    """Add (admins) or remove (admins; anyone may remove itself) members. The affected
    users' open connections follow at once through their per-user layer group."""
    membership = access_group(user_id=user.pk, gid=gid)
    group = Group.objects.select_for_update().get(pk=gid)
    targets = set(uids)
    leaving_alone = op == REMOVE and targets == {user.pk}
    if membership.role != Membership.ADMIN and not leaving_alone:
        raise Forbidden("only a group admin may change members")
    if group.mode == Group.ONE_TO_ONE:
        raise Forbidden("a one-to-one chat has fixed members")
    current = set(Membership.objects.filter(group=group).values_list("user_id", flat=True))
    if op == ADD:
        new = _existing_users(targets - current)
        _add_members(group, dict.fromkeys(new, Membership.MEMBER))
    else:
        leaving = targets & current
        Membership.objects.filter(group=group, user_id__in=leaving).delete()
        for uid in leaving:
            events.member_left(uid=uid, gid=gid)


# The send path is the server's hot path: fixed SQL instead of the ORM's query
# building, which profiling showed to cost several times the database's own work.
# Table names come from the models; every value is a bound parameter.
_MESSAGE = Message._meta.db_table
_GROUP = Group._meta.db_table
_MEMBERSHIP = Membership._meta.db_table
_FIND_RETRY = f"SELECT id FROM {_MESSAGE} WHERE sender_id = %s AND client_msg_id = %s"
# Allocates the next seq, locks the group row until commit (PostgreSQL; SQLite holds
# its write lock from BEGIN IMMEDIATE), and checks membership, in one statement.
_NEXT_SEQ = (
    f"UPDATE {_GROUP} SET last_seq = last_seq + 1 WHERE id = %s AND EXISTS "
    f"(SELECT 1 FROM {_MEMBERSHIP} WHERE group_id = %s AND user_id = %s) RETURNING last_seq"
)
_INSERT = (
    f"INSERT INTO {_MESSAGE} (group_id, seq, sender_id, kind, content, client_msg_id, "
    "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_SET_LAST = f"UPDATE {_GROUP} SET last_msg_id = %s WHERE id = %s"
# Under the group lock `seq` is the group's newest, so no watermark can be above it.
_SENDER_READ = (
    f"UPDATE {_MEMBERSHIP} SET delivered_seq = %s, read_seq = %s "
    "WHERE group_id = %s AND user_id = %s"
)


def send_message(
    *, sender_id: int, gid: int, kind: str, content: str, client_msg_id: str
) -> SendResult:
    """Store a message, committed before this returns; five statements whatever the
    group size.

    The group row is locked while its next seq is allocated, so seqs are gap-free and
    commit in order. A retry with the same (sender, clientMsgId) returns the message
    stored the first time; the sender's watermarks rise to its own message.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FIND_RETRY, [sender_id, client_msg_id])
            earlier = cursor.fetchone()
            if earlier is not None:
                return SendResult(message=Message.objects.get(pk=earlier[0]), created=False)
            cursor.execute(_NEXT_SEQ, [gid, gid, sender_id])
            allocated = cursor.fetchone()
            if allocated is None:
                raise NotMember(f"user {sender_id} is not a member of group {gid}")
            seq = allocated[0]
            now = timezone.now()
            stamp = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(
                _INSERT, [gid, seq, sender_id, kind, content, client_msg_id, stamp, stamp]
            )
            msg_id = cursor.fetchone()[0]
            cursor.execute(_SET_LAST, [msg_id, gid])
            cursor.execute(_SENDER_READ, [seq, seq, gid, sender_id])
    except IntegrityError:
        # A concurrent retry of the same clientMsgId committed first: theirs won.
        earlier = Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).first()
        if earlier is None:
            raise
        return SendResult(message=earlier, created=False)
    message = Message(
        pk=msg_id,
        group_id=gid,
        seq=seq,
        sender_id=sender_id,
        kind=kind,
        content=content,
        client_msg_id=client_msg_id,
        created_at=now,
        updated_at=now,
    )
    return SendResult(message=message, created=True)


def _raise_watermark(*, user_id: int, gid: int, msg_id: int, read: bool) -> bool:
    """Raise the delivered (and with `read`, the read) watermark to `msg_id`'s seq.

    One UPDATE on the hot path; only when it changes nothing do we look why (not a
    member, not a message of the group, or simply an older id). True if it rose.
    """
    seq = Subquery(Message.objects.filter(pk=msg_id, group_id=gid).values("seq")[:1])
    rows = Membership.objects.filter(group_id=gid, user_id=user_id)
    if read:
        changed = rows.filter(read_seq__lt=seq).update(
            read_seq=seq, delivered_seq=Greatest("delivered_seq", seq)
        )
    else:
        changed = rows.filter(delivered_seq__lt=seq).update(delivered_seq=seq)
    if changed:
        return True
    access_group(user_id=user_id, gid=gid)
    if not Message.objects.filter(pk=msg_id, group_id=gid).exists():
        raise UnknownMessage(f"message {msg_id} is not in group {gid}")
    return False


@transaction.atomic
def mark_delivered(*, user_id: int, gid: int, msg_id: int) -> bool:
    return _raise_watermark(user_id=user_id, gid=gid, msg_id=msg_id, read=False)


@transaction.atomic
def mark_read(*, user_id: int, gid: int, msg_id: int, client_msg_id: str | None = None) -> bool:
    """Raise the read watermark; the other members are told after the commit."""
    changed = _raise_watermark(user_id=user_id, gid=gid, msg_id=msg_id, read=True)
    if changed:
        events.read_receipt(
            gid=gid,
            reader_uid=user_id,
            push=encode_read_push(
                reader_uid=user_id, gid=gid, msg_id=msg_id, client_msg_id=client_msg_id
            ),
        )
    return changed


@transaction.atomic
def mark_group_read(*, user: User, gid: int) -> None:
    """The read watermark jumps to the group's newest message."""
    group = access_group(user_id=user.pk, gid=gid).group
    if group.last_msg_id is not None:
        mark_read(user_id=user.pk, gid=gid, msg_id=group.last_msg_id)


def chat_list(*, user: User, offset: int, limit: int) -> list[ChatEntry]:
    """The user's conversations that have a message, newest first, with unread counts.

    Unread is arithmetic on seqs: sending raises the sender's read watermark, so every
    message above it is from someone else. Two queries whatever the page size.
    """
    memberships = list(
        Membership.objects.filter(user=user, group__last_msg__isnull=False)
        .select_related("group", "group__last_msg", "group__last_msg__sender")
        .order_by("-group__last_msg_id")[offset : offset + limit]
    )
    direct = [m.group_id for m in memberships if m.group.mode == Group.ONE_TO_ONE]
    peers = {
        m.group_id: m.user
        for m in Membership.objects.filter(group_id__in=direct)
        .exclude(user=user)
        .select_related("user")
    }
    entries = []
    for m in memberships:
        last = m.group.last_msg
        other = (
            peers.get(m.group_id, last.sender) if m.group.mode == Group.ONE_TO_ONE else last.sender
        )
        entries.append(
            ChatEntry(group=m.group, message=last, user=other, unread=m.group.last_seq - m.read_seq)
        )
    return entries


def history(*, user: User, gid: int, offset: int, limit: int) -> list[ChatEntry]:
    """A page of a conversation, counted from the newest; returned oldest first."""
    group = access_group(user_id=user.pk, gid=gid).group
    page = list(
        Message.objects.filter(group_id=gid)
        .select_related("sender")
        .order_by("-seq")[offset : offset + limit]
    )
    page.reverse()
    return [ChatEntry(group=group, message=m, user=m.sender, unread=None) for m in page]


def group_ids_of(*, user_id: int) -> list[int]:
    return list(Membership.objects.filter(user_id=user_id).values_list("group_id", flat=True))


def newest_seqs(*, user_id: int) -> dict[int, int]:
    """gid → the seq of its newest message, for each of the user's groups."""
    return dict(
        Membership.objects.filter(user_id=user_id).values_list("group_id", "group__last_seq")
    )


def sync_state(*, user_id: int, limit: int) -> SyncState:
    """After Login: each group's newest seq, then the newest `limit` undelivered
    messages per group. The seqs are read first, so a message committed in between is
    either in the list or arrives live above the seq; never skipped."""
    last_seqs = newest_seqs(user_id=user_id)
    undelivered = (
        Message.objects.filter(
            group__memberships__user_id=user_id,
            seq__gt=F("group__memberships__delivered_seq"),
        )
        .annotate(
            newest_first=Window(RowNumber(), partition_by=F("group_id"), order_by=F("seq").desc())
        )
        .filter(newest_first__lte=limit)
        .order_by("group_id", "seq")
    )
    return SyncState(last_seqs=last_seqs, messages=list(undelivered))


def messages_between(*, gid: int, after_seq: int, upto_seq: int) -> list[Message]:
    """The messages a connection missed (seq in (after_seq, upto_seq]), oldest first;
    at most RIM_SYNC_LIMIT, so that a huge hole is filled in bounded steps."""
    return list(
        Message.objects.filter(group_id=gid, seq__gt=after_seq, seq__lte=upto_seq).order_by("seq")[
            : settings.RIM_SYNC_LIMIT
        ]
    )
