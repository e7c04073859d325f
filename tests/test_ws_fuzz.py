"""Property-based tests of the consumer: whatever a client sends — random JSON, random
text, random bytes, MsgEvents with mutated fields — the consumer never raises, answers
every frame with exactly one well-formed MsgAck, and stores only what a valid event of
the logged-in member may store.

Hypothesis drives a synchronous test; the consumer runs on a private event loop that
lives across all examples, so one connection sees the whole sequence of frames.
"""

import asyncio
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chat.models import Message
from tests import ws_helpers
from tests.ws_helpers import WsClient, is_ack, layer_is_remote

team_fixture = ws_helpers.team_fixture

pytestmark = pytest.mark.django_db(transaction=True)

CODES = {
    "Ok",
    "bad_json",
    "invalid_event",
    "invalid_body",
    "not_logged_in",
    "auth_failed",
    "uid_mismatch",
    "not_member",
    "unknown_message",
    "content_too_large",
    "rate_limited",
    "server_error",
}
EVENTS = ["Login", "Msg", "Ack", "Read", "Heart", "Logout"]
MAX_CONTENT = 200
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MISSING = object()


class Connection:
    """One consumer on its own event loop, reused by every example of a test."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.client = WsClient()
        self.run(self.client.open())

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def exchange(self, text: str | None = None, data: bytes | None = None) -> dict:
        """Send one frame; return its ack, after checking that it is the only answer."""

        async def exchange():
            await self.client.send_raw(text, data)
            ack = await self.client.receive(timeout=10)
            assert is_ack(ack), ack
            assert await self.client.comm.receive_nothing(0.005), "more than one answer"
            return ack

        return self.run(exchange())

    def close(self) -> None:
        try:
            if not self.client.closed:
                quiet = 0.5 if layer_is_remote() else 0.05
                assert self.run(self.client.comm.receive_nothing(quiet)), "a late answer"
                assert not self.client.inbox
            self.run(self.client.close())
        finally:
            self.run(cancel_background_tasks())
            self.loop.close()


async def cancel_background_tasks() -> None:
    """As asyncio.run ends a loop: its background tasks (presence's refresh) are
    cancelled, not destroyed while pending."""
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def connection(settings):
    settings.RIM_RATE_LIMIT = 0
    settings.RIM_MAX_CONTENT = MAX_CONTENT
    opened = Connection()
    yield opened
    opened.close()


def assert_well_formed(ack: dict) -> None:
    assert ack["kind"] == "Ack", ack
    assert ack["content"] in CODES, ack
    if ack["content"] == "Ok":
        assert set(ack) == {"clientMsgId", "serverMsgId", "kind", "content"}, ack
        assert isinstance(ack["clientMsgId"], str), ack
    else:
        assert set(ack) == {"clientMsgId", "serverMsgId", "kind", "content", "detail"}, ack
        assert ack["serverMsgId"] is None, ack
        assert isinstance(ack["detail"], str), ack
    assert ack["content"] != "server_error", ack


def echoable(value: object) -> str | None:
    """The clientMsgId the ack must echo, by the contract: a non-empty string of at
    most 64 characters (without NUL, which the server refuses in strings)."""
    if not isinstance(value, dict) or not isinstance(value.get("body"), dict):
        return None
    candidate = value["body"].get("clientMsgId")
    if isinstance(candidate, str) and 0 < len(candidate) <= 64 and "\x00" not in candidate:
        return candidate
    return None


def strict_json(value: object) -> bool:
    """Whether `value` survives strict JSON: no NaN/Infinity, no lone surrogates."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(strict_json(item) for item in value)
    if isinstance(value, dict):
        return all(strict_json(k) and strict_json(v) for k, v in value.items())
    return True


# -- strategies ---------------------------------------------------------------------------

# Any code point (lone surrogates included, which strict JSON refuses), and the
# characters that matter to JSON, over-represented.
characters = (
    st.characters(exclude_categories=())
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
    | st.sampled_from(["\x00", '"', "\\", "{", "}", "[", ":", ","])
)
texts = st.text(characters, max_size=12) | st.text(max_size=80)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def mutations(valid: list) -> st.SearchStrategy:
    """A field's value: one of the valid ones, or anything at all, or absent."""
    return st.sampled_from(valid) | json_values | st.just(MISSING)


@st.composite
def near_valid_events(draw, team) -> dict:
    ids = [team.alice.pk, team.bob.pk, team.gid, team.side_gid, team.side_msg_id, 1, 0, -1]
    ids += [2**63 - 1, 2**63, 2**64 + 1]
    fields = {
        "kind": mutations(["Text", "RichText", "Image", "text", ""]),
        "uid": mutations([team.alice.pk, team.alice.pk, team.bob.pk, 0, True, "1"]),
        "gid": mutations([team.gid, team.gid, team.side_gid, None, 10**12, 1.0]),
        "content": mutations(
            [
                team.token(team.alice),
                # Never bob's token: only alice may ever be bound here (a Login as bob
                # would rightly sync bob's backlog, a second answer to the frame).
                "00000000-0000-4000-8000-000000000000",
                "hello",
                "",
                "a\x00b",
                "x" * (MAX_CONTENT + 1),
                "é" * (MAX_CONTENT // 2 + 1),
            ]
        ),
        "clientMsgId": mutations(["c-1", "c-2", "", "x" * 64, "x" * 65, 7, None]),
        "msgId": mutations([None, *ids]),
    }
    valid = {
        "kind": ["Text"],
        "uid": [team.alice.pk],
        "gid": [team.gid],
        "content": ["hello", team.token(team.alice)],
        "clientMsgId": ["c-1", "c-2", "c-3"],
        "msgId": [None, team.side_msg_id],
    }
    body = {}
    for name, mutation in fields.items():
        # Mostly valid: each field is mutated one time in four.
        if draw(st.integers(0, 3)):
            body[name] = draw(st.sampled_from(valid[name]))
        else:
            value = draw(mutation)
            if value is not MISSING:
                body[name] = value
    event = draw(st.sampled_from(EVENTS) | st.sampled_from(EVENTS) | json_values)
    frame = {"event": event, "body": body}
    if draw(st.booleans()) and draw(st.booleans()):
        frame[draw(texts)] = draw(json_values)
    return frame


def login(connection: Connection, team) -> None:
    connection.client.uid = team.alice.pk

    async def log_in():
        await connection.client.login(team.alice, team.token(team.alice))

    connection.run(log_in())


# -- properties -------------------------------------------------------------------------------


def test_any_json_value_gets_exactly_one_well_formed_ack(connection, team):
    login(connection, team)

    @FUZZ
    @given(value=json_values, ascii_only=st.booleans())
    def check(value, ascii_only):
        ack = connection.exchange(json.dumps(value, ensure_ascii=ascii_only))
        assert_well_formed(ack)
        if not isinstance(value, dict) or not strict_json(value):
            assert ack["content"] == "bad_json", (value, ack)
            assert ack["clientMsgId"] is None
        else:
            assert ack["content"] != "bad_json", (value, ack)
            assert ack["clientMsgId"] == echoable(value), (value, ack)

    check()


def test_any_text_gets_exactly_one_well_formed_ack(connection, team):
    login(connection, team)

    @FUZZ
    @given(text=st.text(characters, max_size=200) | st.text(max_size=200))
    def check(text):
        ack = connection.exchange(text)
        assert_well_formed(ack)
        try:
            # The stdlib is lenient (NaN, lone surrogates): what it refuses, rim must.
            json.loads(text)
        except ValueError:
            assert ack["content"] == "bad_json", (text, ack)

    check()


def test_any_binary_frame_gets_exactly_one_bad_json_ack(connection, team):
    login(connection, team)

    @FUZZ
    @given(data=st.binary(max_size=300))
    def check(data):
        ack = connection.exchange(data=data)
        assert_well_formed(ack)
        assert (ack["content"], ack["clientMsgId"]) == ("bad_json", None)

    check()


def test_near_valid_events_get_one_ack_and_store_only_the_members_messages(connection, team):
    login(connection, team)
    stored: set[int] = set()
    before = Message.objects.count()

    def valid(event: str, **body) -> dict:
        base = {"kind": "Text", "uid": team.alice.pk, "gid": team.gid, "clientMsgId": "c-9"}
        return {"event": event, "body": base | body}

    @FUZZ
    # Whatever runs first, alice is logged in for these two: one message is stored.
    @example(frame=valid("Login", content=team.token(team.alice)))
    @example(frame=valid("Msg", content="a valid one among them"))
    @given(frame=near_valid_events(team))
    def check(frame):
        ack = connection.exchange(json.dumps(frame))
        assert_well_formed(ack)
        if not strict_json(frame):
            assert (ack["content"], ack["clientMsgId"]) == ("bad_json", None), (frame, ack)
            return
        assert ack["clientMsgId"] == echoable(frame), (frame, ack)
        if ack["content"] == "Ok" and frame["event"] == "Msg":
            assert type(ack["serverMsgId"]) is int
            stored.add(ack["serverMsgId"])
        if ack["content"] == "Ok" and frame["event"] == "Read":
            assert ack["serverMsgId"] == frame["body"]["msgId"]
        if ack["content"] == "Ok" and frame["event"] in ("Login", "Ack", "Heart", "Logout"):
            assert ack["serverMsgId"] is None

    check()
    assert stored
    # Only valid Msgs of alice in her own group were stored: one row per serverMsgId.
    new = Message.objects.exclude(pk=team.side_msg_id)
    assert Message.objects.count() - before == len(stored)
    assert set(new.values_list("pk", flat=True)) == stored
    assert set(new.values_list("sender_id", "group_id").distinct()) <= {(team.alice.pk, team.gid)}
