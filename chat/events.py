"""The layer events of conversations: what each change tells whom.

Services call these after (or, for what is not stored, instead of) a commit; nothing
else publishes. `g.<gid>` carries a conversation's events to every connection of its
members; `u.<uid>` (accounts.events) carries per-user events to every connection of
one user. The layer is at-most-once, so an event never carries the only copy of
anything: entries come with their seq (a connection that misses one repairs from the
database), and every group event carries the group's members version (a connection
that has not seen that version asks the database whether it may still read the group
before it pushes). docs/ARCHITECTURE.md has the table of events and receivers.
"""

from accounts.events import user_channel
from chat.entries import Entry
from infra.publish import publish_now, publish_on_commit


def group_channel(gid: int) -> str:
    return f"g.{gid}"


def entry_added(entry: Entry, *, members_version: int, origin: str | None) -> None:
    """A message or a change took `entry.seq` in its group. `origin` is the channel of
    the connection that sent it (it is not pushed back there), None from REST or the
    admin."""
    publish_on_commit(
        group_channel(entry.gid),
        {
            "type": "chat.entry",
            "gid": entry.gid,
            "seq": entry.seq,
            "mv": members_version,
            "origin": origin,
            "push": entry.push,
        },
    )


def read_receipt(*, gid: int, reader_uid: int, members_version: int, push: str) -> None:
    """For the other members' connections (not the reader's own)."""
    publish_on_commit(
        group_channel(gid),
        {
            "type": "read.receipt",
            "gid": gid,
            "mv": members_version,
            "actor": reader_uid,
            "push": push,
        },
    )


def typing(*, gid: int, uid: int, members_version: int, push: str) -> None:
    """For the other members' connections; nothing is stored, so nothing to wait for."""
    publish_now(
        group_channel(gid),
        {"type": "chat.typing", "gid": gid, "mv": members_version, "actor": uid, "push": push},
    )


def member_joined(*, uid: int, gid: int, seq: int, members_version: int) -> None:
    """`uid` joined `gid` when its last seq was `seq`: its connections start there."""
    publish_on_commit(
        user_channel(uid),
        {"type": "member.joined", "gid": gid, "seq": seq, "mv": members_version},
    )


def member_left(*, uid: int, gid: int) -> None:
    publish_on_commit(user_channel(uid), {"type": "member.left", "gid": gid})


def presence_changed(*, peer_uids: list[int], push: str) -> None:
    """A user went online or offline: its one-to-one peers' connections are told."""
    for peer in peer_uids:
        publish_now(user_channel(peer), {"type": "presence.changed", "push": push})
