"""Sending a message, and the delivered and read watermarks: the server's hot path.

A message costs a fixed number of statements whatever the group size: it is stored
once and the members' watermarks say who has it. On PostgreSQL the whole send is one
statement (no BEGIN/COMMIT round trips, one WAL flush); SQLite, in-process, and a
message that carries a file run the same steps as five statements (six: the file is
marked sent) in one transaction. Both are fixed SQL instead of the
ORM's query building, which profiling showed to cost several times the database's own
work; table names come from the models and every value is a bound parameter.
"""

import functools
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chat import events
from chat import protocol as wire
from chat.entries import message_entry
from chat.models import Group, Membership, Message
from chat.services.access import access_group, message_in_group
from files import services as files
from files.models import File
from infra.errors import InvalidInput, NotMember
from infra.sql import prepared_cursor

_MESSAGE = Message._meta.db_table
_GROUP = Group._meta.db_table
_MEMBERSHIP = Membership._meta.db_table


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool


def send_message(
    *,
    sender_id: int,
    gid: int,
    kind: str,
    content: str,
    client_msg_id: str,
    reply_to: int | None = None,
    origin: str | None = None,
) -> SendResult:
    """Store a message, committed before this returns, and publish it to the group.

    The group row is locked while its next seq is allocated, so seqs are gap-free and
    commit in order. A retry with the same (sender, clientMsgId) returns the message
    stored the first time and publishes nothing; the sender's watermarks rise to its
    own message. `reply_to` must be a message of the same group.
    """
    now = timezone.now()
    file = _attached_file(sender_id, kind, content)
    # A file is marked sent in the message's own transaction: the purge of abandoned
    # uploads never deletes one that a stored message carries.
    single = connection.vendor == "postgresql" and file is None
    store = _store_postgresql if single else _store_in_transaction
    try:
        stored = store(sender_id, gid, kind, content, client_msg_id, reply_to, file, now)
    except IntegrityError:
        # A concurrent retry of the same clientMsgId committed first: theirs won.
        # Any other violation (a file purged meanwhile) is an error.
        earlier = _earlier(sender_id, client_msg_id)
        if earlier is None:
            raise
        return SendResult(message=earlier, created=False)
    if stored is None:
        return SendResult(
            message=_why_not_stored(sender_id, gid, client_msg_id, reply_to), created=False
        )
    msg_id, seq, number, members_version = stored
    message = Message(
        pk=msg_id,
        group_id=gid,
        seq=seq,
        number=number,
        sender_id=sender_id,
        kind=kind,
        content=content,
        client_msg_id=client_msg_id,
        reply_to_id=reply_to,
        file_id=None if file is None else file.pk,
        created_at=now,
        updated_at=now,
    )
    events.entry_added(message_entry(message), members_version=members_version, origin=origin)
    return SendResult(message=message, created=True)


def _attached_file(sender_id: int, kind: str, content: str) -> File | None:
    """The upload an Image or File message carries: the sender's own, by its URL. An
    Image may also be any other URL, as rim's v1 clients send them."""
    if kind not in (wire.IMAGE, wire.FILE):
        return None
    file = files.file_for_url(content, sender_id)
    if file is None and kind == wire.FILE:
        raise InvalidInput("content: a File message carries the URL of a file you uploaded")
    if file is not None and kind == wire.IMAGE and not file.is_image:
        raise InvalidInput("content: an Image message carries the URL of an image")
    return file


def _why_not_stored(sender_id: int, gid: int, client_msg_id: str, reply_to: int | None) -> Message:
    """Nothing was stored: the earlier message of a retry, or the refusal."""
    earlier = _earlier(sender_id, client_msg_id)
    if earlier is not None:
        return earlier
    access_group(user_id=sender_id, gid=gid)
    if reply_to is not None:
        message_in_group(gid=gid, msg_id=reply_to)
    raise NotMember(f"user {sender_id} is not a member of group {gid}")


def _earlier(sender_id: int, client_msg_id: str) -> Message | None:
    return Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).first()


# The group row's UPDATE allocates the seq and the message's number, locks the row until
# commit, and checks membership and the replied-to message, in one statement.
_MAY_SEND = (
    f"EXISTS (SELECT 1 FROM {_MEMBERSHIP} WHERE group_id = %(gid)s AND user_id = %(uid)s) "
    f"AND (CAST(%(reply)s AS BIGINT) IS NULL OR EXISTS "
    f"(SELECT 1 FROM {_MESSAGE} WHERE id = %(reply)s AND group_id = %(gid)s))"
)
_COLUMNS = (
    "group_id, seq, number, sender_id, kind, content, client_msg_id, reply_to_id, file_id, "
    "recalled, created_at, updated_at"
)
_VALUES = (
    "%(kind)s, %(content)s, %(cmid)s, %(reply)s, CAST(%(file)s AS BIGINT), FALSE, %(now)s, %(now)s"
)

# PostgreSQL: everything in one statement. The message id is drawn from its sequence in
# the group's UPDATE, so that the row can point at it (the foreign key is checked at
# commit); data-modifying CTEs always run to completion. No row back: a retry, or a
# refusal (the slow path tells which).
_SEND_POSTGRESQL = (
    f"WITH g AS (UPDATE {_GROUP} SET last_seq = last_seq + 1, "
    "message_count = message_count + 1, last_msg_id = nextval(CAST(%(id_sequence)s AS regclass)) "
    f"WHERE id = %(gid)s AND {_MAY_SEND} AND NOT EXISTS (SELECT 1 FROM {_MESSAGE} "
    "WHERE sender_id = %(uid)s AND client_msg_id = %(cmid)s) "
    "RETURNING last_seq, message_count, last_msg_id, members_version), "
    f"m AS (INSERT INTO {_MESSAGE} (id, {_COLUMNS}) "
    f"SELECT last_msg_id, %(gid)s, last_seq, message_count, %(uid)s, {_VALUES} FROM g), "
    f"w AS (UPDATE {_MEMBERSHIP} SET delivered_seq = g.last_seq, read_seq = g.last_seq, "
    "read_count = g.message_count FROM g WHERE group_id = %(gid)s AND user_id = %(uid)s) "
    "SELECT last_msg_id, last_seq, message_count, members_version FROM g"
)


@functools.cache
def _message_id_sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [_MESSAGE])
        return cursor.fetchone()[0]


def _store_postgresql(sender_id, gid, kind, content, client_msg_id, reply_to, file, now):
    params = _params(sender_id, gid, kind, content, client_msg_id, reply_to, file, now)
    params["id_sequence"] = _message_id_sequence()
    with prepared_cursor() as cursor:
        cursor.execute(_SEND_POSTGRESQL, params)
        return cursor.fetchone()


_FIND_RETRY = f"SELECT 1 FROM {_MESSAGE} WHERE sender_id = %(uid)s AND client_msg_id = %(cmid)s"
_NEXT_SEQ = (
    f"UPDATE {_GROUP} SET last_seq = last_seq + 1, message_count = message_count + 1 "
    f"WHERE id = %(gid)s AND {_MAY_SEND} RETURNING last_seq, message_count, members_version"
)
_INSERT = (
    f"INSERT INTO {_MESSAGE} ({_COLUMNS}) "
    f"VALUES (%(gid)s, %(seq)s, %(number)s, %(uid)s, {_VALUES}) RETURNING id"
)
_SET_LAST = f"UPDATE {_GROUP} SET last_msg_id = %(id)s WHERE id = %(gid)s"
# Under the group lock `seq` is the group's newest, so no watermark can be above it.
_SENDER_READ = (
    f"UPDATE {_MEMBERSHIP} SET delivered_seq = %(seq)s, read_seq = %(seq)s, "
    "read_count = %(number)s WHERE group_id = %(gid)s AND user_id = %(uid)s"
)


def _store_in_transaction(sender_id, gid, kind, content, client_msg_id, reply_to, file, now):
    params = _params(sender_id, gid, kind, content, client_msg_id, reply_to, file, now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_FIND_RETRY, params)
        if cursor.fetchone() is not None:
            return None
        cursor.execute(_NEXT_SEQ, params)
        allocated = cursor.fetchone()
        if allocated is None:
            return None
        params["seq"], params["number"], members_version = allocated
        cursor.execute(_INSERT, params)
        params["id"] = cursor.fetchone()[0]
        cursor.execute(_SET_LAST, params)
        cursor.execute(_SENDER_READ, params)
        if file is not None:
            files.mark_sent(file)
    return params["id"], params["seq"], params["number"], members_version


def _params(sender_id, gid, kind, content, client_msg_id, reply_to, file, now) -> dict:
    return {
        "uid": sender_id,
        "gid": gid,
        "kind": kind,
        "content": content,
        "cmid": client_msg_id,
        "reply": reply_to,
        "file": None if file is None else file.pk,
        "now": connection.ops.adapt_datetimefield_value(now),
    }


# One statement each, on both databases; only when it changes nothing do we look why
# (not a member, not a message of the group, or simply an older id).
_RAISE_DELIVERED = (
    f"UPDATE {_MEMBERSHIP} SET delivered_seq = {_MESSAGE}.seq FROM {_MESSAGE} "
    f"WHERE {_MEMBERSHIP}.group_id = %(gid)s AND {_MEMBERSHIP}.user_id = %(uid)s "
    f"AND {_MESSAGE}.id = %(msg)s AND {_MESSAGE}.group_id = %(gid)s "
    f"AND {_MEMBERSHIP}.delivered_seq < {_MESSAGE}.seq"
)
_RAISE_READ = (
    f"UPDATE {_MEMBERSHIP} SET read_seq = {_MESSAGE}.seq, read_count = {_MESSAGE}.number, "
    f"delivered_seq = CASE WHEN delivered_seq > {_MESSAGE}.seq THEN delivered_seq "
    f"ELSE {_MESSAGE}.seq END FROM {_MESSAGE} "
    f"WHERE {_MEMBERSHIP}.group_id = %(gid)s AND {_MEMBERSHIP}.user_id = %(uid)s "
    f"AND {_MESSAGE}.id = %(msg)s AND {_MESSAGE}.group_id = %(gid)s "
    f"AND {_MEMBERSHIP}.read_seq < {_MESSAGE}.seq "
    f"RETURNING (SELECT members_version FROM {_GROUP} WHERE id = %(gid)s)"
)


def _check_watermark_target(user_id: int, gid: int, msg_id: int) -> None:
    access_group(user_id=user_id, gid=gid)
    message_in_group(gid=gid, msg_id=msg_id)


def _hot_cursor():
    """A cursor for the hot path's statements: prepared once per connection on
    PostgreSQL (infra.sql); SQLite caches its statements itself."""
    return prepared_cursor() if connection.vendor == "postgresql" else connection.cursor()


def mark_delivered(*, user_id: int, gid: int, msg_id: int) -> bool:
    """The delivered watermark rises to `msg_id`'s seq. True if it rose."""
    with _hot_cursor() as cursor:
        cursor.execute(_RAISE_DELIVERED, {"gid": gid, "uid": user_id, "msg": msg_id})
        changed = cursor.rowcount > 0
    if not changed:
        _check_watermark_target(user_id, gid, msg_id)
    return changed


def mark_read(*, user_id: int, gid: int, msg_id: int, client_msg_id: str | None = None) -> bool:
    """The read (and delivered) watermark rises to `msg_id`'s seq; the other members
    are told. True if it rose."""
    with _hot_cursor() as cursor:
        cursor.execute(_RAISE_READ, {"gid": gid, "uid": user_id, "msg": msg_id})
        raised = cursor.fetchone()
    if raised is None:
        _check_watermark_target(user_id, gid, msg_id)
        return False
    events.read_receipt(
        gid=gid,
        reader_uid=user_id,
        members_version=raised[0],
        push=wire.encode_read_push(
            reader_uid=user_id, gid=gid, msg_id=msg_id, client_msg_id=client_msg_id
        ),
    )
    return True


def mark_group_read(*, user_id: int, gid: int) -> None:
    """The read watermark jumps to the group's newest message."""
    group = access_group(user_id=user_id, gid=gid).group
    if group.last_msg_id is not None:
        mark_read(user_id=user_id, gid=gid, msg_id=group.last_msg_id)
