"""rim's daphne: the stock server with WebSocket frames read and written fit for
fan-out, a cap on what a connection may have waiting to be sent, a ceiling on HTTP
request bodies, and a graceful shutdown.

`manage.py serve` runs this. The application does not depend on it: any ASGI server
runs rim (README: "Other ASGI servers" says what differs); this one closes oversize
sockets with 1009, bounds each connection's memory, refuses an oversize request body
before reading it, reads and pushes faster, and on SIGTERM finishes what is in flight
and closes every WebSocket with 1001.
"""

import asyncio
import gc
import json
import logging
import signal
import socket
import struct

from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import tcp

from infra import lifecycle, metrics

log = logging.getLogger("rim.server")

# Close codes the server itself sends (docs/protocol.md, "Close codes").
CLOSE_GOING_AWAY = 1001
CLOSE_BACKLOG = 4004

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
FIN = 0x80
MASKED = 0x80
# First octet of a whole text frame without extensions (RSV bits clear).
FIN_TEXT = FIN | OPCODE_TEXT
# 7-bit length values that announce a 16-bit and a 64-bit length.
LENGTH_16 = 126
LENGTH_64 = 127
MASK_SIZE = 4


def frame(payload: bytes, *, binary: bool) -> bytes:
    """One unfragmented, unmasked WebSocket message (RFC 6455 §5.2), as a server sends."""
    first = FIN | (OPCODE_BINARY if binary else OPCODE_TEXT)
    size = len(payload)
    if size < LENGTH_16:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, LENGTH_16, size)
    else:
        header = struct.pack("!BBQ", first, LENGTH_64, size)
    return header + payload


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-octet client mask, in one big-integer operation."""
    size = len(payload)
    key = (mask * (size // MASK_SIZE + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


class RimWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol with lean paths for the common frames.

    Profiles of a fan-out showed more time in the generic machinery under each push than
    in rim's code: autobahn's sendMessage (fragmentation, compression, masking and
    statistics, none of which a server frame of rim needs) and Twisted's buffered write,
    which registers the socket with the event loop for each write and unregisters it
    after (two epoll_ctl calls per push). Here a message becomes one frame, written
    straight to the socket when nothing is queued before it, as asyncio's own transports
    do; what the kernel does not take goes to Twisted's buffer, so frames keep their
    order. Anything unusual (handshake, compression, TLS) takes the stock path.

    The receive side is the same idea: the common frame (whole, final, masked, text,
    within the size limit, valid UTF-8) is read here; everything else (control frames,
    fragments, a partial frame, anything invalid) goes to autobahn, with all that
    follows it, so that its checks and close codes apply unchanged.
    """

    def connectionMade(self):
        # Acks and pushes are small writes that must leave at once: without this,
        # Nagle's algorithm holds one back until the previous one is acknowledged.
        transport = self.transport
        if isinstance(transport, tcp.Connection):
            transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        if self.may_read_here():
            data = self.read_text_frames(data)
        if data:
            super().dataReceived(data)

    def may_read_here(self) -> bool:
        """Open, and autobahn holds no buffered bytes or frame of its own."""
        return (
            self.state == self.STATE_OPEN
            and not self.data
            and self.current_frame is None
            and not self.inside_message
            and self._perMessageCompress is None
        )

    def read_text_frames(self, data: bytes) -> bytes:
        """Deliver the complete common frames at the start of `data`; return the rest."""
        start, end = 0, len(data)
        limits = (self.maxFramePayloadSize, self.maxMessagePayloadSize)
        limit = min((n for n in limits if n), default=0)  # autobahn's: 0 is none
        while end - start >= 2 and data[start] == FIN_TEXT and data[start + 1] & MASKED:
            size = data[start + 1] & ~MASKED
            header = 2
            if size == LENGTH_16:
                if end - start < 4:
                    break
                size = int.from_bytes(data[start + 2 : start + 4], "big")
                header = 4
                if size < LENGTH_16:
                    break  # not the minimal encoding: autobahn fails it
            elif size == LENGTH_64:
                break  # frames of 64 KiB and more: rare, autobahn reads them
            body = start + header + MASK_SIZE
            if 0 < limit < size or end < body + size:
                break  # over a limit (autobahn closes with 1009), or not all here yet
            payload = unmask(data[body : body + size], data[body - MASK_SIZE : body])
            try:
                payload.decode()
            except UnicodeDecodeError:
                break
            start = body + size
            self.onMessage(payload, False)
        return data[start:]

    backlogged = False

    def serverSend(self, content, binary=False):
        if self.backlogged or self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            # The close handshake has begun (RFC 6455 §5.5.1: no data frame after a
            # Close): what the application still sends has no one to go to. autobahn
            # would raise into the application, as a server error with a traceback.
            return
        if self.state != self.STATE_OPEN or self._perMessageCompress is not None:
            super().serverSend(content, binary)
            return
        self.write_now(frame(content if binary else content.encode(), binary=binary))

    def write_now(self, data: bytes) -> None:
        transport = self.transport
        if _plain_tcp_with_nothing_queued(transport):
            sent = transport.writeSomeData(data)
            if isinstance(sent, int):
                data = data[sent:]
            # Otherwise the connection is lost: Twisted's own write below, and its next
            # read or write, see to that as usual.
        if data:
            transport.write(data)
            if _waiting_bytes(transport) > settings.RIM_WS_BACKLOG_MAX:
                self.close_backlogged()

    def close_backlogged(self) -> None:
        """The client reads slower than its pushes come (or not at all): stop sending
        to it and close with 4004. Nothing is lost: what it missed is above its
        delivered watermark, and its next Login syncs it. The close frame waits behind
        the backlog; a client that reads none of it is cut off after a grace period."""
        self.backlogged = True
        log.info("event=ws_backlog_close client=%s", self.client_addr)
        metrics.CLOSES.add(str(CLOSE_BACKLOG))
        # autobahn drops the connection if the close is not answered within this.
        self.closeHandshakeTimeout = settings.RIM_WS_BACKLOG_GRACE
        self.sendCloseFrame(code=CLOSE_BACKLOG, reasonUtf8=b"too slow", isReply=False)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        # Let go of what was waiting to be sent now, not when the garbage collector
        # gets to this protocol: autobahn's Deferreds keep it in reference cycles, and
        # with them a slow client's backlog (tens of MB) until a full collection.
        transport = self.transport
        if isinstance(transport, tcp.Connection):
            transport.dataBuffer = b""
            transport._tempDataBuffer = []
            transport._tempDataLen = 0


def _waiting_bytes(transport) -> int:
    """Bytes Twisted holds for the socket (dataBuffer from offset, and _tempDataBuffer)."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def _plain_tcp_with_nothing_queued(transport) -> bool:
    """True if writing to the socket now cannot overtake data Twisted still buffers
    (FileDescriptor keeps it in dataBuffer from offset on, and in _tempDataBuffer)."""
    return (
        isinstance(transport, tcp.Connection)
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    )


class BoundedRequest(WebRequest):
    """daphne's HTTP request with a ceiling on its body (RIM_MAX_REQUEST_BODY).

    daphne reads a whole body, into memory or a temporary file, before the application
    sees a byte of it, so a limit in the application comes too late to spare either. A
    body announced longer is refused (413) as soon as its headers are in, before any of
    it is read; one without a length (chunked) is cut off when it passes the ceiling.
    The connection is then closed, and nothing reaches the application.
    """

    refused = False
    body_received = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Twisted would parse multipart and form bodies into request.args, which daphne
        # never reads: CPU and memory for nothing, and a malformed body answered with
        # Twisted's own empty 400 instead of the application's envelope.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length):
        if length is not None and length > settings.RIM_MAX_REQUEST_BODY:
            self.refuse_body()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return
        self.body_received += len(data)
        if self.body_received > settings.RIM_MAX_REQUEST_BODY:
            self.refuse_body()
        else:
            super().handleContentChunk(data)

    def process(self):
        if not self.refused:
            return super().process()
        return None

    def refuse_body(self) -> None:
        self.refused = True
        # Twisted answers "Expect: 100-continue" after gotLength: not to a refused body.
        self.requestHeaders.removeHeader(b"Expect")
        if self.content is not None:
            self.content.close()
            self.content = None
        limit = settings.RIM_MAX_REQUEST_BODY
        body = json.dumps(
            {
                "ok": False,
                "code": 413,
                "msg": f"request body over the limit of {limit} bytes",
                "data": None,
            }
        ).encode()
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        self.channel.loseConnection()


class RimHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, making BoundedRequests."""

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


class RimServer(Server):
    """daphne's server with RimWebSocketProtocol and BoundedRequest, failing a
    WebSocket (a frame over the size limit, a protocol violation) with a close frame
    (autobahn's default drops the TCP connection, so the client would see 1006 instead
    of the 1009 that PROTOCOL.md promises), and a graceful shutdown on SIGTERM."""

    def run(self):
        # daphne.server installed its asyncio reactor; import it only now.
        from twisted.internet import reactor

        self.ports = []
        self.stopping = None
        # The factories exist once run() has built them, before the reactor starts.
        reactor.callWhenRunning(self.configure_ws_factory)
        reactor.callWhenRunning(self.configure_http_factory)
        reactor.callWhenRunning(freeze_startup_heap)
        # After Twisted's own handlers (installed as the reactor starts): ours win.
        reactor.callWhenRunning(self.handle_sigterm)
        super().run()

    def configure_ws_factory(self):
        self.ws_factory.protocol = RimWebSocketProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False)

    def configure_http_factory(self):
        # Server.run listens with the daphne HTTPFactory it built; rim's subclass only
        # changes the request class, so the instance becomes one in place.
        self.http_factory.__class__ = RimHTTPFactory

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)

    def handle_sigterm(self) -> None:
        """Replace Twisted's SIGTERM handler (which stops the reactor at once). Twisted
        owns the signal wake-up fd, so asyncio's add_signal_handler would never fire:
        a plain handler hands over to the reactor's thread, as Twisted's own does."""
        from twisted.internet import reactor

        signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(self.begin_shutdown))

    def begin_shutdown(self) -> None:
        if self.stopping is None:
            self.stopping = asyncio.ensure_future(self.shut_down())

    async def shut_down(self) -> None:
        """Stop accepting connections and frames, answer every frame already taken,
        let the database workers and the publisher finish, then close every
        WebSocket with 1001 (clients reconnect, to another process behind the load
        balancer) and stop, all within RIM_SHUTDOWN_TIMEOUT."""
        from twisted.internet import reactor

        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.RIM_SHUTDOWN_TIMEOUT
        log.warning("event=shutdown_started connections=%d", len(self.connections))
        for port in self.ports:
            port.stopListening()
        websockets = [p for p in self.connections if isinstance(p, WebSocketProtocol)]
        for protocol in websockets:
            if protocol.transport is not None:
                protocol.transport.pauseProducing()
        finished = await lifecycle.drained(deadline, busy=self.requests_unanswered)
        for protocol in websockets:
            if protocol.state == protocol.STATE_OPEN:
                protocol.sendCloseFrame(code=CLOSE_GOING_AWAY, isReply=False)
        # The clients answer the close; give them a moment (within the deadline).
        await lifecycle.drained(min(deadline, loop.time() + 1.0), busy=lambda: any_open(websockets))
        log.warning("event=shutdown_done drained=%s", finished)
        reactor.stop()

    def requests_unanswered(self) -> bool:
        """A frame the application has not taken yet, or an HTTP request it has not
        answered."""
        for protocol, details in self.connections.items():
            queue = getattr(protocol, "application_queue", None)
            if queue is not None and not queue.empty():
                return True
            instance = details.get("application_instance")
            websocket = isinstance(protocol, WebSocketProtocol)
            if not websocket and instance is not None and not instance.done():
                return True
        return False


def any_open(websockets) -> bool:
    return any(protocol.state != protocol.STATE_CLOSED for protocol in websockets)


def freeze_startup_heap() -> None:
    """Take what startup loaded (Django, the apps, the URL and settings modules: it
    lives as long as the process) out of the garbage collector's sight. Every full
    collection scanned it all: pauses of 55-60 ms, every few thousand messages, which
    set the ack p99 of a busy server."""
    gc.collect()
    gc.freeze()
