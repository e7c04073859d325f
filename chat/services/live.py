"""Live signals that are not stored: typing and presence (PROTOCOL.md §6.1, §6.2)."""

import time
from datetime import datetime

from accounts.models import User
from chat import events
from chat import protocol as wire
from chat.entries import optional_time
from chat.services.groups import direct_peers, sharing_a_group
from chat.services.reading import members_version
from infra.errors import NotMember

# A user's Typing in one group is pushed at most once per this many seconds.
TYPING_INTERVAL = 2.0


class TypingThrottle:
    """When each (user, group) last had its Typing pushed, in this process. Extra ones
    are acked and dropped before they cost a query."""

    def __init__(self, interval: float = TYPING_INTERVAL, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.last: dict[tuple[int, int], float] = {}

    def allows(self, uid: int, gid: int) -> bool:
        now = self.clock()
        if now - self.last.get((uid, gid), -self.interval) < self.interval:
            return False
        if len(self.last) > 10_000:
            # Old entries allow anyway: forget them rather than grow without bound.
            self.last = {k: t for k, t in self.last.items() if now - t < self.interval}
        self.last[(uid, gid)] = now
        return True


def typing(*, user_id: int, gid: int, client_msg_id: str) -> None:
    """Tell the group's other members that `user_id` is typing; members only."""
    version = members_version(user_id=user_id, gid=gid)
    if version is None:
        raise NotMember(f"user {user_id} is not a member of group {gid}")
    events.typing(
        gid=gid,
        uid=user_id,
        members_version=version,
        push=wire.encode_typing_push(uid=user_id, gid=gid, client_msg_id=client_msg_id),
    )


def presence_changed(*, user_id: int, online: bool, last_seen: datetime | None) -> None:
    """`user_id` went online or (after the grace period) offline: remember when it was
    last seen, and tell the users who share a one-to-one chat with it."""
    if not online:
        User.objects.filter(pk=user_id).update(last_seen=last_seen)
    push = wire.encode_presence_push(
        uid=user_id, online=online, last_seen=None if online else optional_time(last_seen)
    )
    events.presence_changed(peer_uids=direct_peers(user_id=user_id), push=push)


def last_seen_of(*, viewer_id: int, uids: set[int]) -> dict[int, datetime | None]:
    """uid → when it was last seen, for those of `uids` who share a group with the
    viewer (others are left out)."""
    visible = sharing_a_group(user_id=viewer_id, uids=uids)
    return dict(User.objects.filter(pk__in=visible).values_list("pk", "last_seen"))
