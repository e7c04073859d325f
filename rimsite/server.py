"""rim's daphne: the stock server with a WebSocket send path fit for fan-out.

`manage.py serve` runs this. The application does not depend on it: any ASGI server
runs rim, this one only closes oversize sockets properly and pushes faster.
"""

import gc
import socket
import struct

from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import tcp

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
FIN = 0x80


def frame(payload: bytes, *, binary: bool) -> bytes:
    """One unfragmented, unmasked WebSocket message (RFC 6455 §5.2), as a server sends."""
    first = FIN | (OPCODE_BINARY if binary else OPCODE_TEXT)
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


class RimWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol with a lean send path.

    Profiles of a fan-out showed more time in the generic machinery under each push than
    in rim's code: autobahn's sendMessage (fragmentation, compression, masking and
    statistics, none of which a server frame of rim needs) and Twisted's buffered write,
    which registers the socket with the event loop for each write and unregisters it
    after (two epoll_ctl calls per push). Here a message becomes one frame, written
    straight to the socket when nothing is queued before it, as asyncio's own transports
    do; what the kernel does not take goes to Twisted's buffer, so frames keep their
    order. Anything unusual (handshake, compression, TLS) takes the stock path.
    """

    def connectionMade(self):
        # Acks and pushes are small writes that must leave at once: without this,
        # Nagle's algorithm holds one back until the previous one is acknowledged.
        transport = self.transport
        if isinstance(transport, tcp.Connection):
            transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connectionMade()

    def serverSend(self, content, binary=False):
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


class RimServer(Server):
    """daphne's server with RimWebSocketProtocol, and failing a WebSocket (a frame over
    the size limit, a protocol violation) with a close frame: autobahn's default drops
    the TCP connection, so the client would see 1006 instead of the 1009 that
    PROTOCOL.md promises."""

    def run(self):
        # daphne.server installed its asyncio reactor; import it only now.
        from twisted.internet import reactor

        # The factory exists once run() has built it, before the reactor starts.
        reactor.callWhenRunning(self.configure_ws_factory)
        reactor.callWhenRunning(freeze_startup_heap)
        super().run()

    def configure_ws_factory(self):
        self.ws_factory.protocol = RimWebSocketProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False)


def freeze_startup_heap() -> None:
    """Take what startup loaded (Django, the apps, the URL and settings modules: it
    lives as long as the process) out of the garbage collector's sight. Every full
    collection scanned it all: pauses of 55-60 ms, every few thousand messages, which
    set the ack p99 of a busy server."""
    gc.collect()
    gc.freeze()
