"""Changes to a message after it was sent: recall, edit, reaction (PROTOCOL.md §6.1).

Each change takes the next seq of its group, under the group row's lock (taken before
anything else is read, as the send path takes it first, so that no two writers wait on
each other), and is stored as a Change: it reaches connections, repairs and offline
sync exactly as a message does, and counts as nothing unread. A retry (same actor,
same clientMsgId) is answered with the first outcome and changes nothing, so a retried
React does not toggle back.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.entries import change_entry
from chat.models import Change, Group, Membership, Message, ModerationLog, Reaction
from chat.protocol import EDITABLE_KINDS
from chat.services.access import access_group, message_in_group
from files import services as files
from infra.errors import Forbidden, NotMember, Recalled, TooLate

MAX_DISTINCT_EMOJI = 20

_NEXT_SEQ = (
    f"UPDATE {Group._meta.db_table} SET last_seq = last_seq + 1 WHERE id = %s "
    "RETURNING last_seq, members_version"
)


@dataclass(frozen=True)
class ChangeResult:
    """The seq the change took (None if it changed nothing: a retry, a repeated
    recall) and, for a reaction, whether it is now on."""

    seq: int | None
    on: bool | None = None


NOTHING_CHANGED = ChangeResult(seq=None)


@dataclass(frozen=True)
class Slot:
    """A seq taken in a group, its row locked until commit."""

    gid: int
    seq: int
    members_version: int

    def record(
        self, message: Message, *, actor_id: int, kind: str, client_msg_id: str, origin, **fields
    ) -> Change:
        """Store the change in this slot and publish it to the group after commit."""
        change = Change.objects.create(
            group_id=self.gid,
            seq=self.seq,
            message=message,
            actor_id=actor_id,
            kind=kind,
            client_msg_id=client_msg_id,
            **fields,
        )
        events.entry_added(
            change_entry(change, message), members_version=self.members_version, origin=origin
        )
        return change


def _take_slot(gid: int) -> Slot:
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ, [gid])
        row = cursor.fetchone()
    if row is None:
        raise NotMember(f"group {gid} not found")
    return Slot(gid=gid, seq=row[0], members_version=row[1])


def _earlier(actor_id: int, client_msg_id: str) -> Change | None:
    return Change.objects.filter(actor_id=actor_id, client_msg_id=client_msg_id).first()


def _within(window_seconds: float, since) -> bool:
    return timezone.now() - since <= timedelta(seconds=window_seconds)


@transaction.atomic
def recall_message(
    *,
    user_id: int,
    gid: int,
    msg_id: int,
    client_msg_id: str,
    origin: str | None = None,
    moderator: User | None = None,
) -> ChangeResult:
    """Take a message back: its sender within RIM_RECALL_WINDOW, an admin of a group
    (not of a one-to-one chat) or a moderator from the admin at any time. Its content
    and reactions are erased from storage, not hidden. Recalling a recalled message
    changes nothing."""
    if _earlier(user_id, client_msg_id) is not None:
        return NOTHING_CHANGED
    membership = None if moderator else access_group(user_id=user_id, gid=gid)
    slot = _take_slot(gid)
    message = message_in_group(gid=gid, msg_id=msg_id)
    if message.recalled:
        transaction.set_rollback(True)  # the seq taken is given back
        return NOTHING_CHANGED
    # Both members of a one-to-one chat are its admins: neither erases the other's words.
    is_admin = moderator is not None or (
        membership.role == Membership.ADMIN and membership.group.mode == Group.GROUP
    )
    own = message.sender_id == user_id
    if not is_admin and not (own and _within(settings.RIM_RECALL_WINDOW, message.created_at)):
        if own:
            raise TooLate(f"a message can be recalled within {settings.RIM_RECALL_WINDOW:g} s")
        raise Forbidden("only its sender or a group admin may recall a message")
    message.content = ""
    message.recalled = True
    message.save(update_fields=["content", "recalled", "updated_at"])
    Reaction.objects.filter(message=message).delete()
    _release_file(message)
    change = slot.record(
        message, actor_id=user_id, kind=Change.RECALL, client_msg_id=client_msg_id, origin=origin
    )
    if moderator is not None:
        ModerationLog.objects.create(
            moderator=moderator,
            action=ModerationLog.RECALL,
            group_id=gid,
            message=message,
            detail=f"message {message.pk} (#{message.seq}) of user {message.sender_id}",
        )
    return ChangeResult(seq=change.seq)


def _release_file(message: Message) -> None:
    """A recalled message's upload goes with it, unless another message carries it."""
    if message.file_id is None:
        return
    others = Message.objects.filter(file_id=message.file_id, recalled=False)
    files.delete_if_unused(message.file, in_use=others.exclude(pk=message.pk).exists())


@transaction.atomic
def edit_message(
    *,
    user_id: int,
    gid: int,
    msg_id: int,
    content: str,
    client_msg_id: str,
    origin: str | None = None,
) -> ChangeResult:
    """Replace a text message's content: its sender only, within RIM_EDIT_WINDOW, and
    not once it is recalled."""
    if _earlier(user_id, client_msg_id) is not None:
        return NOTHING_CHANGED
    access_group(user_id=user_id, gid=gid)
    slot = _take_slot(gid)
    message = message_in_group(gid=gid, msg_id=msg_id)
    if message.recalled:
        raise Recalled(f"message {msg_id} was recalled")
    if message.sender_id != user_id:
        raise Forbidden("only its sender may edit a message")
    if message.kind not in EDITABLE_KINDS:
        raise Forbidden(f"a message of kind {message.kind} cannot be edited")
    if not _within(settings.RIM_EDIT_WINDOW, message.created_at):
        raise TooLate(f"a message can be edited within {settings.RIM_EDIT_WINDOW:g} s")
    message.content = content
    message.edited_at = timezone.now()
    message.save(update_fields=["content", "edited_at", "updated_at"])
    change = slot.record(
        message, actor_id=user_id, kind=Change.EDIT, client_msg_id=client_msg_id, origin=origin
    )
    return ChangeResult(seq=change.seq)


@transaction.atomic
def react_to_message(
    *,
    user_id: int,
    gid: int,
    msg_id: int,
    emoji: str,
    client_msg_id: str,
    origin: str | None = None,
) -> ChangeResult:
    """Toggle the user's `emoji` on a message (`on`: whether it is now on). Any member may
    react, to a message that is not recalled, with at most MAX_DISTINCT_EMOJI
    different emoji on one message."""
    earlier = _earlier(user_id, client_msg_id)
    if earlier is not None:
        return ChangeResult(seq=None, on=bool(earlier.on))
    access_group(user_id=user_id, gid=gid)
    slot = _take_slot(gid)
    message = message_in_group(gid=gid, msg_id=msg_id)
    if message.recalled:
        raise Recalled(f"message {msg_id} was recalled")
    removed, _ = Reaction.objects.filter(message=message, user_id=user_id, emoji=emoji).delete()
    on = not removed
    if on:
        present = set(
            Reaction.objects.filter(message=message).values_list("emoji", flat=True).distinct()
        )
        if emoji not in present and len(present) >= MAX_DISTINCT_EMOJI:
            raise Forbidden(f"a message has at most {MAX_DISTINCT_EMOJI} different emoji")
        Reaction.objects.create(message=message, user_id=user_id, emoji=emoji)
    change = slot.record(
        message,
        actor_id=user_id,
        kind=Change.REACT,
        client_msg_id=client_msg_id,
        origin=origin,
        emoji=emoji,
        on=on,
    )
    return ChangeResult(seq=change.seq, on=on)
