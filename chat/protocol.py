"""rim's WebSocket wire format: parse and validate MsgEvents, build MsgAcks and pushes.

Pure functions over text and plain values, no Django: the consumer decodes a frame here,
hands the typed event to the services, and sends what this module encodes. Field names
and value formats are rim's own (docs/protocol.md §2-4) and must not drift.
"""

from dataclasses import dataclass
from datetime import datetime

import orjson

LOGIN = "Login"
MSG = "Msg"
READ = "Read"
HEART = "Heart"
LOGOUT = "Logout"
ACK = "Ack"
EVENTS = frozenset({LOGIN, MSG, READ, HEART, LOGOUT, ACK})
KINDS = frozenset({"Text", "RichText", "Image"})

OK = "Ok"
MAX_CLIENT_MSG_ID = 64
# Ids are 64-bit signed integers in the database: anything larger names nothing.
MAX_ID = 2**63 - 1
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class ProtocolError(Exception):
    """A frame the server cannot serve; becomes an error MsgAck with `code`."""

    def __init__(self, code: str, detail: str, client_msg_id: str | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_msg_id = client_msg_id


@dataclass(frozen=True, slots=True)
class ClientEvent:
    event: str
    client_msg_id: str
    kind: str
    uid: int | None
    gid: int | None
    msg_id: int | None
    content: str


def decode_frame(text: str | None) -> dict:
    """The JSON object of a text frame; `None` stands for a binary frame.

    orjson is strict where the stdlib is lenient: it refuses NaN/Infinity, lone
    surrogates and numbers that overflow a double.
    """
    if text is None:
        raise ProtocolError("bad_json", "binary frames are not accepted; send JSON text")
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"frame is not valid JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise ProtocolError("bad_json", "frame must be a JSON object")
    return frame


def echoable_client_msg_id(frame: dict) -> str | None:
    """The frame's clientMsgId if it is one the ack may echo, else None."""
    body = frame.get("body")
    if not isinstance(body, dict):
        return None
    value = body.get("clientMsgId")
    if _is_client_msg_id(value):
        return value
    return None


def parse_event(frame: dict, *, max_content: int) -> ClientEvent:
    """Validate a decoded frame into a ClientEvent, or raise ProtocolError.

    Which fields an event requires is checked here; whether the connection may send it
    (login state, uid binding, membership) is the consumer's and the services' concern.
    """
    client_msg_id = echoable_client_msg_id(frame)

    def invalid(detail: str) -> ProtocolError:
        return ProtocolError("invalid_body", detail, client_msg_id)

    event = frame.get("event")
    if not isinstance(event, str) or event not in EVENTS:
        raise ProtocolError(
            "invalid_event",
            f"event must be one of {', '.join(sorted(EVENTS))}",
            client_msg_id,
        )
    body = frame.get("body")
    if not isinstance(body, dict):
        raise invalid("body must be a JSON object")
    raw_client_msg_id = body.get("clientMsgId")
    if not _is_client_msg_id(raw_client_msg_id):
        raise invalid(
            f"clientMsgId must be a non-empty string of at most {MAX_CLIENT_MSG_ID} characters"
        )

    kind = body.get("kind")
    if kind is None and event != MSG:
        kind = "Text"
    if not isinstance(kind, str) or kind not in KINDS:
        raise invalid(f"kind must be one of {', '.join(sorted(KINDS))}")

    uid = _optional_id(body, "uid", invalid)
    gid = _optional_id(body, "gid", invalid)
    msg_id = _optional_id(body, "msgId", invalid)
    content = body.get("content", "")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise invalid("content must be a string")
    if "\x00" in content:
        raise invalid("content must not contain NUL characters")

    if event != HEART and uid is None:
        raise invalid("uid is required")
    if event == LOGIN and not content:
        raise invalid("content must carry the login token")
    if event in (MSG, ACK, READ) and gid is None:
        raise invalid("gid is required")
    if event in (ACK, READ) and msg_id is None:
        raise invalid("msgId is required")
    if event == MSG:
        if not content:
            raise invalid("content must not be empty")
        if utf8_length_over(content, max_content):
            raise ProtocolError(
                "content_too_large",
                f"content is over the limit of {max_content} bytes",
                client_msg_id,
            )
    return ClientEvent(
        event=event,
        client_msg_id=raw_client_msg_id,
        kind=kind,
        uid=uid,
        gid=gid,
        msg_id=msg_id,
        content=content,
    )


def _is_client_msg_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_CLIENT_MSG_ID and "\x00" not in value


def _optional_id(body: dict, field: str, invalid) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    # bool is an int in Python but `true` is no id on the wire.
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise invalid(f"{field} must be a positive integer or null")
    return value


def utf8_length_over(text: str, limit: int) -> bool:
    # A character is at most 4 bytes: skip the encoding when it cannot matter.
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8")) > limit


def _dumps(value: dict) -> str:
    return orjson.dumps(value).decode()


def encode_ack(client_msg_id: str | None, server_msg_id: int | None = None) -> str:
    return _dumps(
        {
            "clientMsgId": client_msg_id,
            "serverMsgId": server_msg_id,
            "kind": ACK,
            "content": OK,
        }
    )


def encode_error(code: str, detail: str, client_msg_id: str | None) -> str:
    return _dumps(
        {
            "clientMsgId": client_msg_id,
            "serverMsgId": None,
            "kind": ACK,
            "content": code,
            "detail": detail,
        }
    )


def format_time(moment: datetime) -> str:
    """rim's time format; `moment` is already in the server's time zone."""
    return moment.strftime(TIME_FORMAT)


def encode_msg_push(
    *,
    kind: str,
    uid: int,
    gid: int,
    content: str,
    client_msg_id: str,
    msg_id: int,
    seq: int,
    create_time: str,
) -> str:
    return _dumps(
        {
            "event": MSG,
            "body": {
                "kind": kind,
                "uid": uid,
                "gid": gid,
                "content": content,
                "clientMsgId": client_msg_id,
                "msgId": msg_id,
                "seq": seq,
                "createTime": create_time,
            },
        }
    )


def encode_read_push(*, reader_uid: int, gid: int, msg_id: int, client_msg_id: str | None) -> str:
    return _dumps(
        {
            "event": READ,
            "body": {
                "kind": "Text",
                "uid": reader_uid,
                "gid": gid,
                "msgId": msg_id,
                "content": "",
                "clientMsgId": client_msg_id,
            },
        }
    )
