"""The WebSocket endpoint: rim's MsgEvent state machine, one instance per connection.

Thin by design. A frame is decoded and validated (chat.protocol), its event runs a
service on a database worker (infra.dbworkers), and it is answered with exactly one
MsgAck. The services publish what they change (chat.events); this class only delivers
what the layer brings, through its Delivery (chat.delivery), which keeps the pushes of
each group ordered, gap-free, duplicate-free and for members only. What else lives
here is the connection's own state: the bound session, the rate-limit bucket, the
login deadline and the idle timer.
"""

import asyncio
import contextlib
import functools
import logging
import time

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from accounts import events as account_events
from accounts import services as accounts
from chat import events, services
from chat import protocol as wire
from chat.delivery import Delivery
from infra import clientaddr, dbworkers, lifecycle, metrics, presence
from infra.errors import AuthFailed, NotLoggedIn, RimError, UidMismatch
from infra.ratelimit import TokenBucket

log = logging.getLogger("rim.ws")

# Database-bound events one connection may have running beside its dispatch loop.
MAX_IN_FLIGHT = 32

typing_throttle = services.TypingThrottle()
# Connections per client address, in this process (RIM_MAX_CONNECTIONS_PER_IP).
connections_from: dict[str, int] = {}


def open_session(*, key: str) -> tuple[accounts.Session | None, list[int]]:
    session = accounts.session_for_token(key=key)
    if session is None:
        return None, []
    return session, services.group_ids_of(user_id=session.user.pk)


def db(func, /, *, route: int | None = None, **kwargs) -> asyncio.Future:
    """Run a service on a database worker; calls about one group share a worker."""
    return dbworkers.workers().run(func, route=route, **kwargs)


@functools.cache
def start_presence() -> None:
    """Once per process: report presence changes to the domain (who is told)."""

    def changed(uid, online, last_seen) -> None:
        # By user: its changes are told in the order they happened.
        future = db(
            services.presence_changed, route=uid, user_id=uid, online=online, last_seen=last_seen
        )
        future.add_done_callback(_log_failure)

    presence.tracker().start(changed)


# Ids of new messages one batch adds to SQLite's search index, at most.
SEARCH_INDEX_BATCH = 20_000
_search_indexer: asyncio.Task | None = None


def start_search_indexer() -> None:
    """SQLite, once per event loop: add the new messages to the search index in a
    batch every RIM_SEARCH_INDEX_INTERVAL seconds, on the database worker (the one
    writer), rather than one by one in each send's transaction."""
    global _search_indexer
    if connection.vendor != "sqlite":
        return
    loop = asyncio.get_running_loop()
    if _search_indexer is None or _search_indexer.get_loop() is not loop:
        _search_indexer = loop.create_task(index_for_search())


async def index_for_search() -> None:
    while True:
        await asyncio.sleep(settings.RIM_SEARCH_INDEX_INTERVAL)
        try:
            await db(services.index_new_messages, limit=SEARCH_INDEX_BATCH)
        except Exception:
            log.exception("event=search_index_failed")


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("event=presence_failed", exc_info=future.exception())


async def dispatch_in_turn(sources, dispatch) -> None:
    """Pass each message of every source to `dispatch`, one at a time, until one raises
    (StopConsumer when the socket closes). channels' own loop does the same with a new
    task and an asyncio.wait per message, which profiles as a good part of a push's
    cost; here each source has one long-lived reader and a lock takes turns."""
    turn = asyncio.Lock()

    async def read(source) -> None:
        while True:
            message = await source()
            # In flight from the moment it is taken (a graceful shutdown waits for it).
            with lifecycle.handling():
                async with turn:
                    await dispatch(message)

    readers = [asyncio.create_task(read(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        done.pop().result()
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        """channels' AsyncConsumer.__call__ with dispatch_in_turn for its loop."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await dispatch_in_turn([receive, self.channel_receive], self.dispatch)

    async def connect(self) -> None:
        self.uid: int | None = None
        self.token_id: int | None = None
        self.expires_at = 0.0
        self.revoked = False
        # closing: no frame is handled any more; closed: nothing is sent any more.
        self.closing = False
        self.closed = False
        self.delivery = Delivery(
            push=self.push,
            read_entries=self.read_entries,
            check_member=self.check_member,
            leave=self.leave_group,
        )
        self.in_flight: set[asyncio.Task] = set()
        self.last_answer: asyncio.Task | None = None
        self.bucket = TokenBucket(rate=settings.RIM_RATE_LIMIT, burst=settings.RIM_RATE_BURST)
        self.refused_in_a_row = 0
        self.address = clientaddr.client_address(self.scope)
        connections_from[self.address] = connections_from.get(self.address, 0) + 1
        metrics.CONNECTIONS.value += 1
        loop = asyncio.get_running_loop()
        self.next_tail_check = loop.time() + settings.RIM_TAIL_CHECK_INTERVAL
        self.last_frame_at = loop.time()
        self.idle_timer = loop.call_later(settings.RIM_IDLE_TIMEOUT, self.check_idle)
        self.login_timer = loop.call_later(settings.RIM_LOGIN_TIMEOUT, self.check_login)
        start_presence()
        start_search_indexer()
        await self.accept()
        log.info("event=ws_open conn=%s", self.conn_label)
        if connections_from[self.address] > settings.RIM_MAX_CONNECTIONS_PER_IP > 0:
            await self.close_with(wire.CLOSE_TOO_MANY, "too_many_connections")

    async def dispatch(self, message: dict) -> None:
        """Run the handler of a client frame or layer event. channels' own dispatch
        first hops to the ORM thread to close stale database connections, for every
        message: every push to every connection would queue on that one thread. Our
        handlers reach the database only through the workers, which see to their own
        connections."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        if message["type"].startswith("websocket."):
            await handler(message)
            return
        try:
            await handler(message)
        except Exception:
            # A layer event whose handling failed (its database read, a layer timeout)
            # is as good as lost, which the tail check repairs. Raising would end the
            # consumer without its disconnect cleanup.
            log.exception(
                "event=layer_event_failed conn=%s uid=%s type=%s",
                self.conn_label,
                self.uid,
                message["type"],
            )

    async def disconnect(self, code: int) -> None:
        self.idle_timer.cancel()
        self.login_timer.cancel()
        await self.unbind()
        left = connections_from.get(self.address, 1) - 1
        if left:
            connections_from[self.address] = left
        else:
            connections_from.pop(self.address, None)
        metrics.CONNECTIONS.value -= 1
        log.info("event=ws_close conn=%s code=%s", self.conn_label, code)

    @property
    def conn_label(self) -> str:
        return self.channel_name.rsplit("!", 1)[-1]

    async def close_with(self, code: int, why: str) -> None:
        """Close the connection (once). Frames taken before still get their acks;
        nothing is handled or sent after the close."""
        if self.closing:
            return
        self.closing = True
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=settings.RIM_SHUTDOWN_TIMEOUT)
        self.closed = True
        log.info(
            "event=ws_server_close conn=%s uid=%s code=%s why=%s",
            self.conn_label,
            self.uid,
            code,
            why,
        )
        metrics.CLOSES.add(str(code))
        await self.close(code=code)

    # -- frames in ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Every frame gets exactly one MsgAck; bad frames become error acks instead of
        the stock class's exceptions (which would drop the socket)."""
        if self.closing:
            return
        self.last_frame_at = asyncio.get_running_loop().time()
        if self.frame_too_big(text_data, bytes_data):
            # rim's server refuses such a frame in its transport (1009) before it gets
            # here; under another ASGI server the application sees it and closes.
            await self.close_with(wire.CLOSE_TOO_BIG_APP, "frame_too_big")
            return
        client_msg_id = None
        try:
            # The bucket counts every frame, unreadable ones too.
            allowed = self.bucket.take()
            try:
                frame = wire.decode_frame(text_data)
            except RimError:
                if not allowed:
                    await self.refuse_rate(None)
                    return
                raise
            client_msg_id = wire.echoable_client_msg_id(frame)
            if not allowed:
                await self.refuse_rate(client_msg_id)
                return
            self.refused_in_a_row = 0
            event = wire.parse_event(frame, max_content=settings.RIM_MAX_CONTENT)
            metrics.CLIENT_EVENTS.add(event.event)
            await getattr(self, HANDLERS[event.event])(event)
        except Exception as exc:
            await self.send_failure(exc, client_msg_id)

    async def send_failure(self, exc: Exception, client_msg_id: str | None) -> None:
        """The error MsgAck for `exc`; anything unexpected is logged with its traceback
        and shown to the client only as server_error."""
        if isinstance(exc, RimError):
            await self.send_error(exc.code, exc.detail, client_msg_id)
        else:
            log.error(
                "event=ws_server_error conn=%s uid=%s", self.conn_label, self.uid, exc_info=exc
            )
            await self.send_error("server_error", "internal error", client_msg_id)

    async def detach(self, event: wire.ClientEvent, work) -> None:
        """Run a database-bound event beside the dispatch loop, so that pushes to this
        connection never queue behind its own writes. `work` returns the ack's
        serverMsgId. Acks keep the order of the frames (each waits for the one
        before), also when calls about different groups run on different workers.
        Past MAX_IN_FLIGHT events the loop waits: a flood slows only its sender."""
        arrived = asyncio.get_running_loop().time()
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self.answer(event, work, self.last_answer, arrived))
        self.last_answer = task
        lifecycle.track(task)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def answer(self, event: wire.ClientEvent, work, previous, arrived: float) -> None:
        try:
            server_msg_id = await work
        except Exception as exc:
            failure = exc
        else:
            failure = None
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if failure is not None:
            await self.send_failure(failure, event.client_msg_id)
        else:
            await self.send_ack(event, server_msg_id)
        metrics.ACK_LATENCY.observe(asyncio.get_running_loop().time() - arrived)

    def frame_too_big(self, text_data: str | None, bytes_data: bytes | None) -> bool:
        limit = settings.RIM_MAX_FRAME
        if text_data is not None:
            return wire.utf8_length_over(text_data, limit)
        return bytes_data is not None and len(bytes_data) > limit

    async def refuse_rate(self, client_msg_id: str | None) -> None:
        """Drop the event; a connection that keeps hammering a full burst past the
        limit is closed."""
        self.refused_in_a_row += 1
        await self.send_error("rate_limited", "too many events; slow down", client_msg_id)
        if self.refused_in_a_row >= max(self.bucket.burst, 1):
            await self.close_with(wire.CLOSE_RATE_ABUSE, "rate_abuse")

    async def push(self, text: str) -> None:
        if not self.closed:
            metrics.PUSHES.add()
            await self.send(text_data=text)

    async def send_error(self, code: str, detail: str, client_msg_id: str | None) -> None:
        if self.closed:
            return
        log.info("event=ws_error conn=%s uid=%s code=%s", self.conn_label, self.uid, code)
        metrics.ACKS.add(code)
        await self.send(text_data=wire.encode_error(code, detail, client_msg_id))

    async def send_ack(self, event: wire.ClientEvent, server_msg_id: int | None = None) -> None:
        if self.closed:
            return
        metrics.ACKS.add(wire.OK)
        await self.send(text_data=wire.encode_ack(event.client_msg_id, server_msg_id))

    async def require_session(self, event: wire.ClientEvent) -> int:
        """The bound uid, if `event` may act for it."""
        if self.uid is None:
            if self.revoked:
                raise AuthFailed("the session ended (token revoked or expired); log in again")
            raise NotLoggedIn("log in first")
        if time.time() >= self.expires_at:
            await self.end_session()
            raise AuthFailed("the token has expired; log in again")
        if event.uid != self.uid:
            raise UidMismatch(f"uid {event.uid} is not the logged-in user")
        return self.uid

    # -- the session -------------------------------------------------------------

    async def on_login(self, event: wire.ClientEvent) -> None:
        if self.uid is not None and event.uid != self.uid:
            raise UidMismatch("this connection is logged in as another user")
        session, gids = await db(open_session, key=event.content)
        if session is None or session.user.pk != event.uid:
            raise AuthFailed("the token is unknown, expired or not this user's")
        await self.unbind()
        await self.bind(session, gids)
        try:
            state = await db(services.sync_state, user_id=self.uid, limit=settings.RIM_SYNC_LIMIT)
            # Joined since `gids` was read: its member.joined event may have come
            # before we listened.
            await self.join_layer_groups(
                [events.group_channel(gid) for gid in state.groups if gid not in gids]
            )
        except Exception:
            # The Login fails as a whole (one server_error ack), instead of an Ok
            # followed by a server_error, or a bound connection that knows no group's
            # seq and silently drops pushes.
            for gid in gids:
                self.delivery.follow(gid, 0, 0)
            await self.unbind()
            raise
        for gid, where in state.groups.items():
            self.delivery.follow(gid, where.last_seq, where.members_version)
        # Left since `gids` was read.
        await self.leave_layer_groups(
            [events.group_channel(gid) for gid in gids if gid not in state.groups]
        )
        await self.send_ack(event)
        await self.delivery.pushed_after_login(state.entries)

    async def bind(self, session: accounts.Session, gids: list[int]) -> None:
        """Join the user's layer groups, then act for the user. If the layer fails, the
        Login fails whole and leaves nothing joined: a bound connection that follows
        no group would silently drop pushes."""
        uid = session.user.pk
        await self.join_layer_groups(
            [account_events.user_channel(uid), *map(events.group_channel, gids)]
        )
        self.uid = uid
        self.token_id = session.token_id
        self.expires_at = session.expires_at.timestamp()
        self.revoked = False
        self.login_timer.cancel()
        self.delivery.start(uid)
        presence.tracker().connected(uid)
        metrics.LOGGED_IN.value += 1
        log.info("event=ws_login conn=%s uid=%s groups=%d", self.conn_label, uid, len(gids))

    async def unbind(self) -> None:
        """Stop acting for the user: leave its layer groups and restart the login
        deadline."""
        if self.uid is None:
            return
        uid, gids = self.uid, self.delivery.followed()
        self.uid = None
        self.token_id = None
        self.delivery.stop()
        presence.tracker().disconnected(uid)
        metrics.LOGGED_IN.value -= 1
        if not self.closing:
            loop = asyncio.get_running_loop()
            self.login_timer = loop.call_later(settings.RIM_LOGIN_TIMEOUT, self.check_login)
        await self.leave_layer_groups(
            [account_events.user_channel(uid), *map(events.group_channel, gids)]
        )

    async def join_layer_groups(self, layer_groups: list[str]) -> None:
        """Join all of `layer_groups`, or (on failure) none."""
        try:
            async with asyncio.timeout(settings.RIM_LAYER_TIMEOUT):
                await asyncio.gather(
                    *(self.channel_layer.group_add(g, self.channel_name) for g in layer_groups)
                )
        except BaseException:
            await self.leave_layer_groups(layer_groups)
            raise

    async def leave_layer_groups(self, layer_groups: list[str]) -> None:
        if not layer_groups:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.RIM_LAYER_TIMEOUT):
                await asyncio.gather(
                    *(self.channel_layer.group_discard(g, self.channel_name) for g in layer_groups),
                    return_exceptions=True,
                )

    async def end_session(self) -> None:
        """The token expired or was revoked: later events get auth_failed."""
        await self.unbind()
        self.revoked = True

    async def on_logout(self, event: wire.ClientEvent) -> None:
        await self.require_session(event)
        await self.unbind()
        await self.send_ack(event)

    async def on_heart(self, event: wire.ClientEvent) -> None:
        await self.send_ack(event)
        now = asyncio.get_running_loop().time()
        if self.uid is not None and now >= self.next_tail_check:
            self.next_tail_check = now + settings.RIM_TAIL_CHECK_INTERVAL
            try:
                await self.check_tail()
            except Exception:
                # The Heart has its ack already; the next one checks again.
                log.exception("event=tail_check_failed conn=%s uid=%s", self.conn_label, self.uid)

    async def check_tail(self) -> None:
        """The periodic check of a logged-in connection (on its Heart): the session is
        still valid (token not revoked or expired, user active), the groups followed
        are the user's groups, and nothing the layer lost at a group's tail is missing
        (gap repair notices a loss only when a later event arrives)."""
        tail = await db(services.tail_state, user_id=self.uid, token_id=self.token_id)
        if tail.session == accounts.SESSION_DEACTIVATED:
            await self.close_with(wire.CLOSE_DEACTIVATED, "deactivated")
            return
        if tail.session != accounts.SESSION_ALIVE:
            await self.end_session()
            return
        for gid in self.delivery.followed():
            if gid not in tail.groups:
                await self.delivery.drop(gid)
        for gid, where in tail.groups.items():
            if gid in self.delivery.last:
                self.delivery.confirm(gid, where.members_version)
                await self.delivery.catch_up(gid, where.last_seq)
            else:  # a member.joined event was lost
                start = max(where.delivered_seq, where.last_seq - settings.RIM_SYNC_LIMIT)
                await self.join_group(gid, start, where.members_version)

    # -- events about a group ----------------------------------------------------

    async def on_msg(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.store(event, uid))

    async def store(self, event: wire.ClientEvent, uid: int) -> int:
        result = await self.write(
            event,
            services.send_message,
            sender_id=uid,
            gid=event.gid,
            kind=event.kind,
            content=event.content,
            client_msg_id=event.client_msg_id,
            reply_to=event.reply_to,
            origin=self.channel_name,
        )
        if result.created:
            self.delivery.sent(event.gid, result.message.seq)
        return result.message.pk

    async def write(self, event: wire.ClientEvent, service, **kwargs):
        """Run a service that may add this connection's own entry to the group: while
        it runs, a repair must not push that entry back here."""
        self.delivery.sending.add(event.client_msg_id)
        try:
            return await db(service, route=event.gid, **kwargs)
        finally:
            self.delivery.sending.discard(event.client_msg_id)

    async def on_ack(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.deliver(event, uid))

    async def deliver(self, event: wire.ClientEvent, uid: int) -> None:
        await db(
            services.mark_delivered,
            route=event.gid,
            user_id=uid,
            gid=event.gid,
            msg_id=event.msg_id,
        )

    async def on_read(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.read(event, uid))

    async def read(self, event: wire.ClientEvent, uid: int) -> int:
        await db(
            services.mark_read,
            route=event.gid,
            user_id=uid,
            gid=event.gid,
            msg_id=event.msg_id,
            client_msg_id=event.client_msg_id,
        )
        return event.msg_id

    async def on_recall(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.change(event, services.recall_message, user_id=uid))

    async def on_edit(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        work = self.change(event, services.edit_message, user_id=uid, content=event.content)
        await self.detach(event, work)

    async def on_react(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        work = self.change(event, services.react_to_message, user_id=uid, emoji=event.content)
        await self.detach(event, work)

    async def change(self, event: wire.ClientEvent, service, **kwargs) -> int:
        """A Recall, Edit or React: acked with the message's id."""
        change = await self.write(
            event,
            service,
            gid=event.gid,
            msg_id=event.msg_id,
            client_msg_id=event.client_msg_id,
            origin=self.channel_name,
            **kwargs,
        )
        if change.seq is not None:
            self.delivery.sent(event.gid, change.seq)
        return event.msg_id

    async def on_typing(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        if not typing_throttle.allows(uid, event.gid):
            await self.send_ack(event)
            return
        work = db(
            services.typing,
            route=event.gid,
            user_id=uid,
            gid=event.gid,
            client_msg_id=event.client_msg_id,
        )
        await self.detach(event, work)

    # -- layer events --------------------------------------------------------------

    async def chat_entry(self, event: dict) -> None:
        """A message or change of one of our groups: pushed in seq order, holes filled
        from the database, never back to the connection it came from."""
        await self.delivery.entry(
            event["gid"],
            event["seq"],
            event["mv"],
            event["push"],
            own=event["origin"] == self.channel_name,
        )

    async def group_signal(self, event: dict) -> None:
        """A read receipt or a typing notice of another member: pushed as it comes
        (signals have no seq), to members only."""
        if self.uid is not None and event["actor"] != self.uid:
            await self.delivery.signal(event["gid"], event["mv"], event["push"])

    read_receipt = chat_typing = group_signal

    async def member_joined(self, event: dict) -> None:
        if self.uid is not None:
            await self.join_group(event["gid"], event["seq"], event["mv"])

    async def join_group(self, gid: int, seq: int, version: int) -> None:
        """Follow `gid` from `seq`. Joining the layer group is idempotent, and needed
        even for a group we already follow: a Login that read the new membership in
        its sync state had looked up the groups to join before it. What was sent
        before the join took effect did not reach us: it is read."""
        async with asyncio.timeout(settings.RIM_LAYER_TIMEOUT):
            await self.channel_layer.group_add(events.group_channel(gid), self.channel_name)
        if gid not in self.delivery.last:
            self.delivery.follow(gid, seq, version)
        await self.delivery.repair(gid, self.delivery.last[gid], wire.MAX_ID)

    async def member_left(self, event: dict) -> None:
        if self.delivery.forget(event["gid"]):
            await self.leave_group(event["gid"])

    async def leave_group(self, gid: int) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.RIM_LAYER_TIMEOUT):
                await self.channel_layer.group_discard(events.group_channel(gid), self.channel_name)

    async def token_revoked(self, event: dict) -> None:
        if event["token_id"] == self.token_id:
            await self.end_session()

    async def user_deactivated(self, event: dict) -> None:
        await self.close_with(wire.CLOSE_DEACTIVATED, "deactivated")

    async def presence_changed(self, event: dict) -> None:
        if self.uid is not None:
            await self.push(event["push"])

    # -- what Delivery asks of the database ----------------------------------------

    async def read_entries(self, gid: int, after: int, upto: int):
        return await db(
            services.entries_between,
            route=gid,
            user_id=self.uid,
            gid=gid,
            after_seq=after,
            upto_seq=upto,
        )

    async def check_member(self, gid: int) -> int | None:
        return await db(services.members_version, route=gid, user_id=self.uid, gid=gid)

    # -- timers ----------------------------------------------------------------------

    def check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        silent_for = loop.time() - self.last_frame_at
        timeout = settings.RIM_IDLE_TIMEOUT
        if silent_for >= timeout:
            self.idle_close = asyncio.ensure_future(self.close_with(wire.CLOSE_IDLE, "idle"))
        else:
            self.idle_timer = loop.call_later(timeout - silent_for, self.check_idle)

    def check_login(self) -> None:
        if self.uid is None:
            self.login_close = asyncio.ensure_future(
                self.close_with(wire.CLOSE_NO_LOGIN, "no_login")
            )


# Event name → handler method (a class-level table: nothing per connection).
HANDLERS = {
    wire.LOGIN: "on_login",
    wire.MSG: "on_msg",
    wire.ACK: "on_ack",
    wire.READ: "on_read",
    wire.HEART: "on_heart",
    wire.LOGOUT: "on_logout",
    wire.RECALL: "on_recall",
    wire.EDIT: "on_edit",
    wire.REACT: "on_react",
    wire.TYPING: "on_typing",
}
