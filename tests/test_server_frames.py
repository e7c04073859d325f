"""infra.server's frame helpers, against RFC 6455 §5.2 written out by hand."""

import os
import struct

import pytest
from autobahn.exception import Disconnected
from daphne.ws_protocol import WebSocketProtocol

from infra.server import RimWebSocketProtocol, frame, unmask


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e" + struct.pack("!H", 126)),
        (65535, b"\x81\x7e" + struct.pack("!H", 65535)),
        (65536, b"\x81\x7f" + struct.pack("!Q", 65536)),
    ],
)
def test_text_frame_header_uses_the_shortest_length_form(size, header):
    payload = b"x" * size
    assert frame(payload, binary=False) == header + payload


def test_binary_frame_has_the_binary_opcode():
    assert frame(b"\x00\x01", binary=True) == b"\x82\x02\x00\x01"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 4096, 70001])
def test_unmask_is_the_xor_with_the_repeated_mask(size):
    payload, mask = os.urandom(size), os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert unmask(payload, mask) == expected
    assert unmask(expected, mask) == payload


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_send_after_the_close_began_is_dropped_not_raised(state):
    """The application may still answer an event that came in just before the client's
    bad frame failed the connection; autobahn would raise that into it as a server
    error. No data frame may follow a Close, so the send is dropped."""
    protocol = RimWebSocketProtocol()
    protocol.state = getattr(protocol, state)
    protocol.client_addr = ("127.0.0.1", 50000)  # set by daphne's onConnect
    protocol.serverSend('{"content":"Ok"}')
    with pytest.raises(Disconnected):
        WebSocketProtocol.serverSend(protocol, '{"content":"Ok"}')
