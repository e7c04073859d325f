"""What one connection has delivered of each of its groups, and the rules that make
its pushes ordered, gap-free and duplicate-free, and stop them when the user may no
longer read the group.

A group's entries (messages and their changes) have seqs 1, 2, 3, ... without gaps.
The layer brings each new entry to every connection of the group, at most once and
not always in order; the database has them all. The state below, per group `g` the
connection follows:

- `last[g]`: every entry of g with seq <= last[g] was pushed to this connection, or was
  sent from this connection (it has it already), or came before the connection began
  to follow g (offline sync and history cover those); nothing above last[g] was
  pushed. An event with seq <= last[g] is a duplicate and is dropped; one with
  seq > last[g] + 1 means the layer lost the ones between, which are read from the
  database and pushed first. So pushes go out in seq order, once each, without gaps.
- `sending`: clientMsgIds of this connection's own writes that may have committed but
  have not returned yet. A repair can read such an entry before its write returns;
  it is skipped (the sender has it), not pushed back.
- `sent_here`: (gid, seq) of this connection's own entries above last[g] (or in a
  group it does not follow yet: its join may still be on its way), whose layer event
  has not come back. A repair skips them for the same reason. An entry is put here
  only while its seq is above last[g], and taken out when last[g] passes it, so the
  set holds only what is still ahead.
- `versions[g]`: the members version of g last confirmed by the database for this
  user. Every group event carries the version at its commit; a different one means
  the members changed since, and the database is asked whether the user is still a
  member before anything is pushed. Repairs read only for members. No lost or late
  layer event can make the connection push a group the user has left.
"""

import logging
from collections.abc import Awaitable, Callable

from chat.entries import Entry
from infra import metrics

log = logging.getLogger("rim.ws")

Push = Callable[[str], Awaitable[None]]
ReadEntries = Callable[[int, int, int], Awaitable[list[Entry] | None]]
CheckMember = Callable[[int], Awaitable[int | None]]
Leave = Callable[[int], Awaitable[None]]


class Delivery:
    def __init__(
        self, *, push: Push, read_entries: ReadEntries, check_member: CheckMember, leave: Leave
    ):
        self.push = push
        self.read_entries = read_entries
        self.check_member = check_member
        self.leave = leave
        self.uid: int | None = None
        self.last: dict[int, int] = {}
        self.versions: dict[int, int] = {}
        self.sending: set[str] = set()
        self.sent_here: set[tuple[int, int]] = set()

    def start(self, uid: int) -> None:
        self.stop()
        self.uid = uid

    def stop(self) -> None:
        """Follow nothing (Logout, a new Login, a closed connection)."""
        self.uid = None
        self.last = {}
        self.versions = {}
        self.sent_here = set()

    def follow(self, gid: int, seq: int, version: int) -> None:
        """Push `gid`'s entries above `seq` from now on."""
        self.last[gid] = seq
        self.versions[gid] = version
        self.sent_here = {key for key in self.sent_here if key[0] != gid or key[1] > seq}

    def confirm(self, gid: int, version: int) -> None:
        """The database says the user is a member of `gid` at `version`."""
        if gid in self.last:
            self.versions[gid] = version

    def forget(self, gid: int) -> bool:
        """Stop following `gid`; True if it was followed."""
        self.versions.pop(gid, None)
        self.sent_here = {key for key in self.sent_here if key[0] != gid}
        return self.last.pop(gid, None) is not None

    def followed(self) -> list[int]:
        return list(self.last)

    def sent(self, gid: int, seq: int) -> None:
        """This connection's own write took `seq` in `gid` (its write has returned)."""
        if seq > self.last.get(gid, -1):
            self.sent_here.add((gid, seq))

    async def pushed_after_login(self, entries: list[Entry]) -> None:
        """Offline sync: the entries above the delivered watermark, oldest first per
        group, then live from each group's newest seq (set by follow())."""
        for entry in entries:
            await self.push(entry.push)
            if entry.seq > self.last.get(entry.gid, 0):
                self.last[entry.gid] = entry.seq

    async def entry(self, gid: int, seq: int, version: int, push: str, own: bool) -> None:
        """A new entry of `gid` from the layer."""
        last = self.last.get(gid)
        if last is None or seq <= last:
            return
        if not await self.may_read(gid, version):
            return
        if seq > last + 1:
            log.info("event=gap_repair gid=%s after=%s", gid, last)
            metrics.REPAIRS.add("gap")
            if not await self.repair(gid, last, seq - 1):
                return
        if own or (gid, seq) in self.sent_here:
            self.sent_here.discard((gid, seq))
        else:
            await self.push(push)
        self.last[gid] = seq

    async def signal(self, gid: int, version: int, push: str) -> None:
        """A push about `gid` that takes no seq (a read receipt, typing)."""
        if gid in self.last and await self.may_read(gid, version):
            await self.push(push)

    async def may_read(self, gid: int, version: int) -> bool:
        """Whether the user is still a member of `gid`: free while the members did not
        change, one query when they did."""
        if self.versions.get(gid) == version:
            return True
        current = await self.check_member(gid)
        if current is None:
            await self.drop(gid)
            return False
        self.confirm(gid, current)
        return gid in self.last

    async def drop(self, gid: int) -> None:
        if self.forget(gid):
            log.info("event=membership_revoked gid=%s uid=%s", gid, self.uid)
            await self.leave(gid)

    async def repair(self, gid: int, after: int, upto: int) -> bool:
        """Push the stored entries of `gid` with seq in (after, upto], in bounded reads,
        and record the newest one seen. False if the user is no longer a member."""
        while after < upto:
            missed = await self.read_entries(gid, after, upto)
            if missed is None:
                await self.drop(gid)
                return False
            if not missed:
                break
            for entry in missed:
                if (gid, entry.seq) in self.sent_here:
                    self.sent_here.discard((gid, entry.seq))
                elif not self.is_being_sent_here(entry):
                    await self.push(entry.push)
                after = entry.seq
            self.last[gid] = after
        return True

    def is_being_sent_here(self, entry: Entry) -> bool:
        """Committed, but its write has not returned to this connection yet."""
        return entry.actor_id == self.uid and entry.client_msg_id in self.sending

    async def catch_up(self, gid: int, newest: int) -> None:
        """The tail check found `gid` at `newest`: push what the layer lost at its
        tail (gap repair only notices a loss when a later event arrives)."""
        last = self.last.get(gid)
        if last is not None and newest > last:
            log.info("event=tail_repair gid=%s after=%s", gid, last)
            metrics.REPAIRS.add("tail")
            await self.repair(gid, last, newest)
