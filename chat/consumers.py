"""The WebSocket endpoint: rim's MsgEvent state machine, one instance per connection.

Thin by design: decode and validate a frame (chat.protocol), call a service in the ORM
thread, answer with exactly one MsgAck, fan out through the channel layer. What lives
here is connection state: the bound session, the last seq pushed per group (which makes
delivery ordered, gap-free and duplicate-free even when the layer drops events), the
rate-limit bucket and the idle timer.
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

from accounts import services as accounts
from chat import events, services
from chat import protocol as wire
from infra.dbworkers import DatabaseThread
from infra.errors import DomainError
from infra.ratelimit import TokenBucket

log = logging.getLogger("rim.ws")

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_IDLE = 4000
CLOSE_DEACTIVATED = 4001
# Database-bound events one connection may have running beside its dispatch loop.
MAX_IN_FLIGHT = 32
# Seconds between two tail checks of a connection (each costs one query).
CATCH_UP_INTERVAL = 30.0

# Event name → handler method (a class-level table: nothing per connection).
HANDLERS = {
    wire.LOGIN: "on_login",
    wire.MSG: "on_msg",
    wire.ACK: "on_ack",
    wire.READ: "on_read",
    wire.HEART: "on_heart",
    wire.LOGOUT: "on_logout",
}


def _open_session(key: str) -> tuple[accounts.Session | None, list[int]]:
    session = accounts.session_for_token(key=key)
    if session is None:
        return None, []
    return session, services.group_ids_of(user_id=session.user.pk)


# Every database call of the WebSocket side runs on this one thread, in order.
database = DatabaseThread("rim-db")
open_session = database.wrap(_open_session)
sync_state = database.wrap(services.sync_state)
send_message = database.wrap(services.send_message)
mark_delivered = database.wrap(services.mark_delivered)
mark_read = database.wrap(services.mark_read)
messages_between = database.wrap(services.messages_between)
newest_seqs = database.wrap(services.newest_seqs)


def message_push(message) -> str:
    return wire.encode_msg_push(
        kind=message.kind,
        uid=message.sender_id,
        gid=message.group_id,
        content=message.content,
        client_msg_id=message.client_msg_id,
        msg_id=message.pk,
        seq=message.seq,
        create_time=services.local_time(message.created_at),
    )


class ClientError(Exception):
    """An event refused by the connection's own state (login, uid binding)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def dispatch_in_turn(sources, dispatch) -> None:
    """Pass each message of every source to `dispatch`, one at a time, until one raises
    (StopConsumer when the socket closes). channels' own loop does the same with a new
    task and an asyncio.wait per message, which profiles as a good part of a push's
    cost; here each source has one long-lived reader and a lock takes turns."""
    turn = asyncio.Lock()

    async def read(source) -> None:
        while True:
            message = await source()
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
        # gid → seq of the last message this connection pushed (or knows about).
        self.last_pushed: dict[int, int] = {}
        # Ids this connection sent whose fan-out event has not come back yet: never
        # pushed back to it, also not by a gap repair.
        self.sent_here: set[int] = set()
        # clientMsgIds of this connection's sends still being stored.
        self.sending: set[str] = set()
        self.in_flight: set[asyncio.Task] = set()
        self.bucket = TokenBucket(rate=settings.RIM_RATE_LIMIT, burst=settings.RIM_RATE_BURST)
        self.refused_in_a_row = 0
        loop = asyncio.get_running_loop()
        self.next_catch_up = loop.time() + CATCH_UP_INTERVAL
        self.last_frame_at = loop.time()
        self.idle_timer = loop.call_later(settings.RIM_IDLE_TIMEOUT, self.check_idle)
        await self.accept()
        log.info("event=ws_open conn=%s client=%s", self.conn_label, self.client_label)

    async def dispatch(self, message: dict) -> None:
        """Run the handler of a client frame or layer event. channels' own dispatch
        first hops to the ORM thread to close stale database connections, for every
        message: every push to every connection would queue on that one thread. Our
        handlers reach the database only through the DatabaseThread, which does that
        cleanup itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        self.idle_timer.cancel()
        await self.unbind()
        log.info("event=ws_close conn=%s code=%s", self.conn_label, code)

    @property
    def conn_label(self) -> str:
        return self.channel_name.rsplit("!", 1)[-1]

    @property
    def client_label(self) -> str:
        client = self.scope.get("client") or ("?", 0)
        return f"{client[0]}:{client[1]}"

    # -- frames in ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Every frame gets exactly one MsgAck; bad frames become error acks instead of
        the stock class's exceptions (which would drop the socket)."""
        self.last_frame_at = asyncio.get_running_loop().time()
        if self.frame_too_big(text_data, bytes_data):
            log.info("event=ws_frame_too_big conn=%s", self.conn_label)
            await self.close(code=CLOSE_TOO_BIG)
            return
        client_msg_id = None
        try:
            # The bucket counts every frame, unreadable ones too.
            allowed = self.bucket.take()
            try:
                frame = wire.decode_frame(text_data)
            except wire.ProtocolError:
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
            await getattr(self, HANDLERS[event.event])(event)
        except Exception as exc:
            await self.send_failure(exc, client_msg_id)

    async def send_failure(self, exc: Exception, client_msg_id: str | None) -> None:
        """The error MsgAck for `exc`; anything unexpected is logged with its traceback
        and shown to the client only as server_error."""
        if isinstance(exc, (wire.ProtocolError, ClientError)):
            await self.send_error(exc.code, exc.detail, client_msg_id)
        elif isinstance(exc, DomainError):
            await self.send_error(exc.code, exc.message, client_msg_id)
        else:
            log.error(
                "event=ws_server_error conn=%s uid=%s", self.conn_label, self.uid, exc_info=exc
            )
            await self.send_error("server_error", "internal error", client_msg_id)

    async def detach(self, event: wire.ClientEvent, work) -> None:
        """Run a database-bound event beside the dispatch loop, so that pushes to this
        connection never queue behind its own writes. Its ack comes when it is done
        (writes run in order on the database thread, so acks keep the order of the frames).
        Past MAX_IN_FLIGHT events the loop waits: a flood slows only its sender."""
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self.answer(event, work))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def answer(self, event: wire.ClientEvent, work) -> None:
        try:
            await work
        except Exception as exc:
            await self.send_failure(exc, event.client_msg_id)

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
            log.info("event=ws_rate_abuse conn=%s uid=%s", self.conn_label, self.uid)
            await self.close(code=CLOSE_POLICY)

    async def send_error(self, code: str, detail: str, client_msg_id: str | None) -> None:
        log.info("event=ws_error conn=%s uid=%s code=%s", self.conn_label, self.uid, code)
        await self.send(text_data=wire.encode_error(code, detail, client_msg_id))

    async def send_ack(self, event: wire.ClientEvent, server_msg_id: int | None = None) -> None:
        await self.send(text_data=wire.encode_ack(event.client_msg_id, server_msg_id))

    async def require_session(self, event: wire.ClientEvent) -> int:
        """The bound uid, if `event` may act for it."""
        if self.uid is None:
            if self.revoked:
                raise ClientError("auth_failed", "the token was revoked; log in again")
            raise ClientError("not_logged_in", "log in first")
        if time.time() >= self.expires_at:
            await self.unbind()
            self.revoked = True
            raise ClientError("auth_failed", "the token has expired; log in again")
        if event.uid != self.uid:
            raise ClientError("uid_mismatch", f"uid {event.uid} is not the logged-in user")
        return self.uid

    # -- events ------------------------------------------------------------------

    async def on_login(self, event: wire.ClientEvent) -> None:
        if self.uid is not None and event.uid != self.uid:
            raise ClientError("uid_mismatch", "this connection is logged in as another user")
        session, gids = await open_session(key=event.content)
        if session is None or session.user.pk != event.uid:
            raise ClientError("auth_failed", "the token is unknown, expired or not this user's")
        await self.unbind()
        try:
            await self.bind(session, gids)
            state = await sync_state(user_id=self.uid, limit=settings.RIM_SYNC_LIMIT)
        except Exception:
            # The Login fails as a whole (one server_error ack), instead of an Ok
            # followed by a server_error, or a bound connection that follows no group
            # (the layer failed) or knows no group's seq, and silently drops pushes.
            self.last_pushed = dict.fromkeys(gids, 0)
            await self.unbind()
            raise
        await self.send_ack(event)
        await self.sync(state)

    async def bind(self, session: accounts.Session, gids: list[int]) -> None:
        self.uid = session.user.pk
        self.token_id = session.token_id
        self.expires_at = session.expires_at.timestamp()
        self.revoked = False
        layer_groups = [events.user_channel(self.uid), *map(events.group_channel, gids)]
        await asyncio.gather(
            *(self.channel_layer.group_add(g, self.channel_name) for g in layer_groups)
        )
        log.info("event=ws_login conn=%s uid=%s groups=%d", self.conn_label, self.uid, len(gids))

    async def unbind(self) -> None:
        if self.uid is None:
            return
        layer_groups = [events.user_channel(self.uid), *map(events.group_channel, self.last_pushed)]
        self.uid = None
        self.token_id = None
        self.last_pushed = {}
        self.sent_here = set()
        await asyncio.gather(
            *(self.channel_layer.group_discard(g, self.channel_name) for g in layer_groups),
            return_exceptions=True,
        )

    async def sync(self, state: services.SyncState) -> None:
        """Offline sync: with `state` read after joining the layer groups, push what the
        user has not received, then follow each group from its newest seq."""
        self.last_pushed = dict(state.last_seqs)
        for message in state.messages:
            await self.send(text_data=message_push(message))
            if message.seq > self.last_pushed.get(message.group_id, 0):
                self.last_pushed[message.group_id] = message.seq

    async def on_msg(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.store_and_fan_out(event, uid))

    async def store_and_fan_out(self, event: wire.ClientEvent, uid: int) -> None:
        self.sending.add(event.client_msg_id)
        try:
            result = await send_message(
                sender_id=uid,
                gid=event.gid,
                kind=event.kind,
                content=event.content,
                client_msg_id=event.client_msg_id,
            )
        finally:
            self.sending.discard(event.client_msg_id)
        message = result.message
        if result.created:
            self.sent_here.add(message.pk)
        await self.send_ack(event, message.pk)
        if result.created:
            await self.fan_out(message)

    async def fan_out(self, message) -> None:
        """One push, encoded once, to the conversation's layer group. The message is
        committed already: if the layer fails, connections repair from the database."""
        try:
            await self.channel_layer.group_send(
                events.group_channel(message.group_id),
                {
                    "type": "chat.message",
                    "gid": message.group_id,
                    "seq": message.seq,
                    "msg_id": message.pk,
                    "origin": self.channel_name,
                    "push": message_push(message),
                },
            )
        except Exception:
            log.exception("event=fan_out_failed gid=%s msg=%s", message.group_id, message.pk)

    async def on_ack(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.deliver(event, uid))

    async def deliver(self, event: wire.ClientEvent, uid: int) -> None:
        await mark_delivered(user_id=uid, gid=event.gid, msg_id=event.msg_id)
        await self.send_ack(event)

    async def on_read(self, event: wire.ClientEvent) -> None:
        uid = await self.require_session(event)
        await self.detach(event, self.read(event, uid))

    async def read(self, event: wire.ClientEvent, uid: int) -> None:
        await mark_read(
            user_id=uid, gid=event.gid, msg_id=event.msg_id, client_msg_id=event.client_msg_id
        )
        await self.send_ack(event, event.msg_id)

    async def on_heart(self, event: wire.ClientEvent) -> None:
        await self.send_ack(event)
        now = asyncio.get_running_loop().time()
        if self.uid is not None and now >= self.next_catch_up:
            self.next_catch_up = now + CATCH_UP_INTERVAL
            await self.catch_up()

    async def catch_up(self) -> None:
        """Push what the layer lost at the tail of a group. Gap repair notices a lost
        event only when a later one arrives; a group that then falls silent would keep
        its last messages from this connection. A logged-in client's Heart (at most
        every CATCH_UP_INTERVAL) compares each group's newest seq with ours."""
        for gid, newest in (await newest_seqs(user_id=self.uid)).items():
            pushed = self.last_pushed.get(gid)
            if pushed is not None and newest > pushed:
                log.info("event=tail_repair conn=%s gid=%s after=%s", self.conn_label, gid, pushed)
                await self.repair(gid, pushed, newest)

    async def on_logout(self, event: wire.ClientEvent) -> None:
        await self.require_session(event)
        await self.unbind()
        await self.send_ack(event)

    # -- layer events --------------------------------------------------------------

    async def chat_message(self, event: dict) -> None:
        """A message fanned out to one of our groups: push it in seq order, first
        filling any hole the layer left from the database."""
        gid, seq = event["gid"], event["seq"]
        own = event["origin"] == self.channel_name
        if own:
            self.sent_here.discard(event["msg_id"])
        last = self.last_pushed.get(gid)
        if last is None or seq <= last:
            return
        if seq > last + 1:
            log.info("event=gap_repair conn=%s gid=%s after=%s", self.conn_label, gid, last)
            await self.repair(gid, last, seq - 1)
        if not own:
            await self.send(text_data=event["push"])
        self.last_pushed[gid] = seq

    async def repair(self, gid: int, after: int, upto: int) -> None:
        """Push the stored messages of `gid` with seq in (after, upto], in bounded
        reads, and record the newest one seen."""
        while after < upto:
            missed = await messages_between(gid=gid, after_seq=after, upto_seq=upto)
            if not missed:
                break
            for message in missed:
                if message.pk in self.sent_here:
                    self.sent_here.discard(message.pk)
                elif not self.is_being_sent_here(message):
                    await self.send(text_data=message_push(message))
                after = message.seq
        self.last_pushed[gid] = after

    def is_being_sent_here(self, message) -> bool:
        """Committed, but its send has not returned to this connection yet."""
        return message.sender_id == self.uid and message.client_msg_id in self.sending

    async def read_receipt(self, event: dict) -> None:
        if self.uid is not None and event["reader"] != self.uid:
            await self.send(text_data=event["push"])

    async def member_joined(self, event: dict) -> None:
        gid = event["gid"]
        if self.uid is None:
            return
        # Joining is idempotent, and needed even for a group we already follow: a Login
        # that read the new membership in its sync state had looked up the groups to
        # join before it. Whatever was sent before the join took effect did not reach
        # us: fetch it.
        await self.channel_layer.group_add(events.group_channel(gid), self.channel_name)
        await self.repair(gid, self.last_pushed.get(gid, event["seq"]), wire.MAX_ID)

    async def member_left(self, event: dict) -> None:
        gid = event["gid"]
        if self.last_pushed.pop(gid, None) is not None:
            await self.channel_layer.group_discard(events.group_channel(gid), self.channel_name)

    async def token_revoked(self, event: dict) -> None:
        if event["token_id"] == self.token_id:
            await self.unbind()
            self.revoked = True

    async def user_deactivated(self, event: dict) -> None:
        await self.close(code=CLOSE_DEACTIVATED)

    # -- idle timeout --------------------------------------------------------------

    def check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        silent_for = loop.time() - self.last_frame_at
        timeout = settings.RIM_IDLE_TIMEOUT
        if silent_for >= timeout:
            log.info("event=ws_idle_close conn=%s uid=%s", self.conn_label, self.uid)
            self.idle_close = asyncio.ensure_future(self.close(code=CLOSE_IDLE))
        else:
            self.idle_timer = loop.call_later(timeout - silent_for, self.check_idle)
