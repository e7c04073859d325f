"""Reads: the chat list, history, what a connection must push (offline sync, repairs)
and what it must re-check (membership, its session).

Every list is bounded and built with a fixed number of queries, never one per row.
What a connection pushes is read only for a member of the group: a lost layer event
must never let a removed user read on.
"""

from dataclasses import dataclass, field
from itertools import groupby

from django.conf import settings
from django.db.models import Case, Count, F, Max, Min, Value, When, Window
from django.db.models.functions import RowNumber

from accounts import services as accounts
from accounts.models import User
from chat.entries import Entry, change_entry, message_entry
from chat.models import Change, Group, Membership, Message, Reaction
from chat.services.access import access_group


@dataclass(frozen=True)
class ChatEntry:
    """One row of the chat list or of history (docs/protocol.md: ChatMessage)."""

    group: Group
    message: Message
    user: User
    unread: int | None
    reactions: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Following:
    """Where a connection follows one of its groups from."""

    last_seq: int
    members_version: int
    delivered_seq: int = 0


@dataclass(frozen=True)
class SyncState:
    """What a connection needs after Login: where to follow each group from, and the
    entries above the user's delivered watermark to push now, oldest first per group."""

    groups: dict[int, Following]
    entries: list[Entry]


def reactions_of(message_ids: list[int], viewer_id: int) -> dict[int, list[dict]]:
    """message id → its reactions [{"emoji", "count", "mine"}], in the order the emoji
    were first used; one query for a whole page."""
    rows = (
        Reaction.objects.filter(message_id__in=message_ids)
        .values("message_id", "emoji")
        .annotate(
            count=Count("id"),
            mine=Max(Case(When(user_id=viewer_id, then=Value(1)), default=Value(0))),
            first=Min("created_at"),
        )
        .order_by("message_id", "first", "emoji")
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["message_id"], []).append(
            {"emoji": row["emoji"], "count": row["count"], "mine": bool(row["mine"])}
        )
    return found


def chat_list(*, user: User, offset: int, limit: int) -> list[ChatEntry]:
    """The user's conversations that have a message, newest first, with unread counts
    and their last message as it is now (recalled, edited, reacted to).

    Unread is arithmetic on message numbers: sending raises the sender's read count,
    so every message above it is from someone else; changes are no messages. Three
    queries whatever the page size.
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
    reactions = reactions_of([m.group.last_msg_id for m in memberships], user.pk)
    entries = []
    for m in memberships:
        last = m.group.last_msg
        other = last.sender
        if m.group.mode == Group.ONE_TO_ONE:
            other = peers.get(m.group_id, last.sender)
        entries.append(
            ChatEntry(
                group=m.group,
                message=last,
                user=other,
                unread=m.group.message_count - m.read_count,
                reactions=reactions.get(last.pk, []),
            )
        )
    return entries


def history(*, user: User, gid: int, offset: int, limit: int) -> list[ChatEntry]:
    """A page of a conversation's messages, counted from the newest, oldest first."""
    group = access_group(user_id=user.pk, gid=gid).group
    page = list(
        Message.objects.filter(group_id=gid)
        .select_related("sender")
        .order_by("-seq")[offset : offset + limit]
    )
    page.reverse()
    reactions = reactions_of([m.pk for m in page], user.pk)
    return [
        ChatEntry(
            group=group, message=m, user=m.sender, unread=None, reactions=reactions.get(m.pk, [])
        )
        for m in page
    ]


def following(*, user_id: int) -> dict[int, Following]:
    """gid → where the user's connections follow it from, for each of its groups."""
    rows = Membership.objects.filter(user_id=user_id).values_list(
        "group_id", "group__last_seq", "group__members_version", "delivered_seq"
    )
    return {gid: Following(last, version, delivered) for gid, last, version, delivered in rows}


def _newest_above_watermark(model, user_id: int, limit: int):
    rows = (
        model.objects.filter(
            group__memberships__user_id=user_id,
            seq__gt=F("group__memberships__delivered_seq"),
        )
        .annotate(
            newest_first=Window(RowNumber(), partition_by=F("group_id"), order_by=F("seq").desc())
        )
        .filter(newest_first__lte=limit)
    )
    if model is Change:
        rows = rows.select_related("message")
    return rows


def _as_entries(messages, changes) -> list[Entry]:
    entries = [message_entry(m) for m in messages]
    entries += [change_entry(c, c.message) for c in changes]
    entries.sort(key=lambda e: (e.gid, e.seq))
    return entries


def sync_state(*, user_id: int, limit: int) -> SyncState:
    """After Login: where to follow each group from, then the newest `limit` entries
    above the delivered watermark per group. The groups are read first, so an entry
    committed in between is either in the list or arrives live above the seq; never
    skipped."""
    groups = following(user_id=user_id)
    messages = _newest_above_watermark(Message, user_id, limit)
    changes = _newest_above_watermark(Change, user_id, limit)
    entries = []
    for _, of_group in groupby(_as_entries(messages, changes), key=lambda e: e.gid):
        entries += list(of_group)[-limit:]
    return SyncState(groups=groups, entries=entries)


def entries_between(*, user_id: int, gid: int, after_seq: int, upto_seq: int) -> list[Entry] | None:
    """The entries of `gid` with seq in (after_seq, upto_seq], oldest first, at most
    RIM_SYNC_LIMIT (a huge hole is filled in bounded steps); None if the user is not
    (any more) a member."""
    if not Membership.objects.filter(group_id=gid, user_id=user_id).exists():
        return None
    limit = settings.RIM_SYNC_LIMIT
    in_range = {"group_id": gid, "seq__gt": after_seq, "seq__lte": upto_seq}
    messages = Message.objects.filter(**in_range).order_by("seq")[:limit]
    changes = Change.objects.filter(**in_range).select_related("message").order_by("seq")[:limit]
    return _as_entries(messages, changes)[:limit]


def members_version(*, user_id: int, gid: int) -> int | None:
    """The group's members version if the user is a member of it, else None."""
    return (
        Membership.objects.filter(group_id=gid, user_id=user_id)
        .values_list("group__members_version", flat=True)
        .first()
    )


@dataclass(frozen=True)
class TailState:
    """A connection's periodic check: its session's status, and (while alive) where
    each of the user's groups stands."""

    session: str
    groups: dict[int, Following]


def tail_state(*, user_id: int, token_id: int) -> TailState:
    status = accounts.session_status(user_id=user_id, token_id=token_id)
    if status != accounts.SESSION_ALIVE:
        return TailState(session=status, groups={})
    return TailState(session=status, groups=following(user_id=user_id))
