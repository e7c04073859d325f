"""A group's entries (its messages and the changes made to them) as connections push
them: each encoded once, on the database worker that read or wrote it, so that the
event loop only forwards text.

An Entry is what a connection needs to place a push in its group's sequence and to
recognise its own: the group, the seq, who acted and with which clientMsgId.
"""

from dataclasses import dataclass

from django.utils import timezone

from chat import protocol as wire
from chat.models import Change, Message


@dataclass(frozen=True, slots=True)
class Entry:
    gid: int
    seq: int
    actor_id: int
    client_msg_id: str
    push: str


def local_time(moment) -> str:
    return wire.format_time(timezone.localtime(moment))


def optional_time(moment) -> str | None:
    return None if moment is None else local_time(moment)


def message_push(message: Message) -> str:
    """A message in its current state: a recalled one has no content left."""
    return wire.encode_msg_push(
        kind=message.kind,
        uid=message.sender_id,
        gid=message.group_id,
        content=message.content,
        client_msg_id=message.client_msg_id,
        msg_id=message.pk,
        seq=message.seq,
        create_time=local_time(message.created_at),
        reply_to=message.reply_to_id,
        recalled=message.recalled,
        edit_time=optional_time(message.edited_at),
    )


def message_entry(message: Message) -> Entry:
    return Entry(
        gid=message.group_id,
        seq=message.seq,
        actor_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        push=message_push(message),
    )


def change_push(change: Change, message: Message) -> str:
    """A change as its Recall, Edit or React push. An edit is pushed with its message's
    text as it is now: the text it set may since have been edited again or recalled,
    and a recalled message's text exists nowhere any more."""
    extra = {}
    content = ""
    if change.kind == Change.EDIT:
        content = message.content
        extra["editTime"] = optional_time(message.edited_at)
    elif change.kind == Change.REACT:
        content = change.emoji
        extra["on"] = change.on
    return wire.encode_change_push(
        change.kind,
        kind=message.kind,
        actor_uid=change.actor_id,
        gid=change.group_id,
        msg_id=message.pk,
        client_msg_id=change.client_msg_id,
        seq=change.seq,
        content=content,
        **extra,
    )


def change_entry(change: Change, message: Message) -> Entry:
    return Entry(
        gid=change.group_id,
        seq=change.seq,
        actor_id=change.actor_id,
        client_msg_id=change.client_msg_id,
        push=change_push(change, message),
    )
