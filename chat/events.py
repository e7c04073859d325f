"""Channel-layer names and the events services publish after a commit.

Layer groups: `g.<gid>` carries a conversation's pushes to every connection of its
members; `u.<uid>` carries per-user control events (membership changes, token
revocation, deactivation) to every connection of that user, on any process.
The layer is at-most-once: a lost event must never lose data, so each event only
tells connections to look at the database (the truth) or to update their state.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("rim.events")


def group_channel(gid: int) -> str:
    return f"g.{gid}"


def user_channel(uid: int) -> str:
    return f"u.{uid}"


def publish(layer_group: str, event: dict) -> None:
    """Send `event` to a layer group from synchronous code; a layer failure is logged,
    never raised, because the data it announces is already committed."""
    try:
        async_to_sync(get_channel_layer().group_send)(layer_group, event)
    except Exception:
        log.exception("event=publish_failed group=%s type=%s", layer_group, event["type"])


def publish_on_commit(layer_group: str, event: dict) -> None:
    transaction.on_commit(lambda: publish(layer_group, event))


def member_joined(*, uid: int, gid: int, seq: int) -> None:
    """`uid` joined `gid` when its last seq was `seq`: its connections start from there."""
    publish_on_commit(user_channel(uid), {"type": "member.joined", "gid": gid, "seq": seq})


def member_left(*, uid: int, gid: int) -> None:
    publish_on_commit(user_channel(uid), {"type": "member.left", "gid": gid})


def token_revoked(*, uid: int, token_id: int) -> None:
    publish_on_commit(user_channel(uid), {"type": "token.revoked", "token_id": token_id})


def user_deactivated(*, uid: int) -> None:
    publish_on_commit(user_channel(uid), {"type": "user.deactivated"})


def read_receipt(*, gid: int, reader_uid: int, push: str) -> None:
    """A Read push (already encoded) for the other members of `gid`."""
    publish_on_commit(
        group_channel(gid), {"type": "read.receipt", "reader": reader_uid, "push": push}
    )
