"""The WebSocket framing of `manage.py serve` (infra.server), octet by octet.

rim's daphne reads the common client frame itself and hands everything else to
autobahn, and writes its frames straight to the socket. These tests speak raw TCP to a
real server so that they decide where frames start and end: several frames in one
write, one frame over several writes, control frames between messages, and every kind
of bad frame after a good one in the same write.
"""

import asyncio
import base64
import json
import os
import socket
import struct
import uuid

import pytest

from tests.e2e.conftest import (
    create_group,
    env_for_tests,
    history,
    in_thread,
    new_user,
    server_pool,
)

pytestmark = pytest.mark.e2e

MAX_FRAME = 4096
TIMEOUT = 15.0
OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x1, 0x8, 0x9, 0xA


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_pool(tmp_path_factory.mktemp("wire")) as pool:
        daphne = pool.new("daphne", env_for_tests(RIM_MAX_FRAME=str(MAX_FRAME)))
        daphne.start()
        yield daphne


def client_frame(
    payload: bytes,
    *,
    opcode: int = OPCODE_TEXT,
    first: int | None = None,
    masked: bool = True,
    length_16: bool = False,
) -> bytes:
    """A client frame; `first` overrides the first octet (FIN, RSV, opcode), and
    `length_16` writes a small length in the 16-bit form (not the minimal encoding)."""
    size = len(payload)
    head = bytes([0x80 | opcode if first is None else first])
    mask_bit = 0x80 if masked else 0
    if size < 126 and not length_16:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def event(name: str, uid: int | None = None, **body) -> tuple[str, bytes]:
    cmid = uuid.uuid4().hex
    frame = {"event": name, "body": {"uid": uid, "clientMsgId": cmid, **body}}
    return cmid, json.dumps(frame).encode()


class RawSocket:
    """A WebSocket client that writes whatever octets a test gives it. It keeps what it
    received apart from how the connection ended: a server that fails a connection may
    reset it right after its close frame, and the frame must still be readable."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.received = bytearray()
        self.ended: OSError | None = None

    @classmethod
    async def open(cls, port: int, receive_buffer: int | None = None) -> "RawSocket":
        sock = socket.socket()
        if receive_buffer:
            # Before connecting, so that the window the connection agrees on is small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        raw = cls(sock)
        key = base64.b64encode(os.urandom(16)).decode()
        await raw.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in raw.received:
            await raw.receive_more()
        status, _, rest = bytes(raw.received).partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        raw.received[:] = rest
        return raw

    async def write(self, *chunks: bytes, pause: float = 0.05) -> None:
        """Each chunk is its own TCP write, `pause` apart."""
        loop = asyncio.get_running_loop()
        for n, chunk in enumerate(chunks):
            if n:
                await asyncio.sleep(pause)
            await loop.sock_sendall(self.sock, chunk)

    async def receive_more(self) -> None:
        if self.ended is not None:
            raise self.ended
        try:
            data = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(self.sock, 65536), TIMEOUT
            )
        except ConnectionResetError as exc:
            self.ended = exc
            raise
        if not data:
            self.ended = ConnectionAbortedError("closed by the server")
            raise self.ended
        self.received += data

    async def take(self, size: int) -> bytes:
        while len(self.received) < size:
            await self.receive_more()
        taken = bytes(self.received[:size])
        del self.received[:size]
        return taken

    async def read_frame(self) -> tuple[int, bytes]:
        head = await self.take(2)
        assert head[1] & 0x80 == 0, "server frames are not masked"
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.take(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.take(8))[0]
        return head[0], await self.take(size)

    async def read_json(self) -> dict:
        first, payload = await self.read_frame()
        assert first == 0x80 | OPCODE_TEXT, hex(first)
        return json.loads(payload)

    async def close_code(self) -> int:
        """Skip data frames up to the close frame and return its code."""
        while True:
            first, payload = await self.read_frame()
            if first & 0x0F == OPCODE_CLOSE:
                return struct.unpack("!H", payload[:2])[0]

    def close(self) -> None:
        self.sock.close()


async def logged_in(server, receive_buffer: int | None = None) -> tuple[RawSocket, object]:
    user = await in_thread(new_user, server.http_url, "wire")
    sock = await RawSocket.open(server.port, receive_buffer)
    cmid, login = event("Login", user.uid, content=user.token)
    await sock.write(client_frame(login))
    ack = await sock.read_json()
    assert (ack["clientMsgId"], ack["content"]) == (cmid, "Ok")
    return sock, user


async def test_frames_coalesced_split_and_between_control_frames(server):
    """Three Hearts in one write; a Heart with a 16-bit length cut into three writes
    (inside the length, inside the payload); a ping between two Hearts in one write.
    Every Heart is acked in order and the ping gets its pong."""
    sock, user = await logged_in(server)
    try:
        hearts = [event("Heart", user.uid) for _ in range(3)]
        await sock.write(b"".join(client_frame(body) for _, body in hearts))
        for cmid, _ in hearts:
            assert (await sock.read_json())["clientMsgId"] == cmid

        cmid, long_heart = event("Heart", user.uid, content="x" * 300)
        raw = client_frame(long_heart)
        assert raw[1] & 0x7F == 126
        await sock.write(raw[:3], raw[3:40], raw[40:])
        assert (await sock.read_json())["clientMsgId"] == cmid

        (before, first), (after, second) = event("Heart", user.uid), event("Heart", user.uid)
        ping = client_frame(b"are you there", opcode=OPCODE_PING)
        await sock.write(client_frame(first) + ping + client_frame(second))
        # autobahn answers a ping as it reads it; the acks come from the application.
        frames = [await sock.read_frame() for _ in range(3)]
        assert (0x80 | OPCODE_PONG, b"are you there") in frames
        acks = [json.loads(payload) for first, payload in frames if first & 0x0F == OPCODE_TEXT]
        assert [ack["clientMsgId"] for ack in acks] == [before, after]
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        pytest.param(client_frame(b'{"event":"Heart"}', masked=False), 1002, id="unmasked"),
        pytest.param(client_frame(b'"\xff\xfe"'), 1007, id="invalid-utf8"),
        pytest.param(client_frame(b"x" * (MAX_FRAME + 1)), 1009, id="over-the-limit"),
        pytest.param(client_frame(b"{}", first=0x80 | 0x40 | OPCODE_TEXT), 1002, id="rsv-bit"),
        pytest.param(client_frame(b"{}", length_16=True), 1002, id="non-minimal-length"),
        pytest.param(client_frame(b"{}", opcode=0x3), 1002, id="reserved-opcode"),
    ],
)
async def test_bad_frame_after_a_good_one_closes_with_its_code(server, bad_frame, code):
    """In one write, a good Msg, a bad frame and another Msg: the connection fails with
    the code RFC 6455 gives the bad frame, the Msg before it is stored and the one
    after it is not read. The good Msg's ack, which comes after the close frame, is
    dropped quietly: no server error is logged."""
    sock, user = await logged_in(server)
    gid = await in_thread(create_group, server.http_url, user, [])
    try:
        _, good = event("Msg", user.uid, kind="Text", gid=gid, content="before", msgId=None)
        _, never = event("Msg", user.uid, kind="Text", gid=gid, content="after", msgId=None)
        await sock.write(client_frame(good) + bad_frame + client_frame(never))
        assert await sock.close_code() == code
    finally:
        sock.close()
    for _ in range(50):
        stored = await in_thread(history, server.http_url, user, gid)
        if stored:
            break
        await asyncio.sleep(0.1)
    assert [m["content"] for m in stored] == ["before"]
    assert "ERROR" not in server.log_text()


async def test_pushes_past_a_full_socket_buffer_arrive_whole_and_in_order(server):
    """A receiver with a small socket buffer that reads nothing while 3 MB are pushed
    to it (its client stops reading past 128 KiB) makes the buffers fill: the server's
    writes are then partial or refused, the rest waits in Twisted's buffer, and once
    the receiver reads again every push arrives whole and in order."""
    sender, alice = await logged_in(server)
    receiver, bob = await logged_in(server, receive_buffer=4096)
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    contents = [f"{n:04d}" + "z" * 3000 for n in range(1000)]
    try:
        for at in range(0, len(contents), 100):
            batch = [
                event("Msg", alice.uid, kind="Text", gid=gid, content=c, msgId=None)
                for c in contents[at : at + 100]
            ]
            await sender.write(b"".join(client_frame(body) for _, body in batch), pause=0)
            acks = [await sender.read_json() for _ in batch]
            assert [a["clientMsgId"] for a in acks] == [cmid for cmid, _ in batch]
            assert all(a["content"] == "Ok" for a in acks)
        pushed = []
        while len(pushed) < len(contents):
            frame = await receiver.read_json()
            if frame.get("event") == "Msg":
                pushed.append(frame["body"]["content"])
        assert pushed == contents
    finally:
        sender.close()
        receiver.close()
