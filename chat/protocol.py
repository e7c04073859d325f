"""rim's WebSocket wire format: parse and validate MsgEvents, build MsgAcks and pushes.

Pure functions over text and plain values, no Django: the consumer decodes a frame here,
hands the typed event to the services, and sends what this module encodes. Field names
and value formats are rim's own (PROTOCOL.md §2-4, docs/protocol.md) and must not
drift; the v2 events (§6) only add.
"""

from dataclasses import dataclass
from datetime import datetime

import orjson

from infra.errors import BadJson, ContentTooLarge, InvalidEvent, InvalidInput

LOGIN = "Login"
MSG = "Msg"
READ = "Read"
HEART = "Heart"
LOGOUT = "Logout"
ACK = "Ack"
RECALL = "Recall"
EDIT = "Edit"
REACT = "React"
TYPING = "Typing"
PRESENCE = "Presence"
EVENTS = frozenset({LOGIN, MSG, READ, HEART, LOGOUT, ACK, RECALL, EDIT, REACT, TYPING})
# Events about one message of a group: they need `gid` and `msgId`.
ABOUT_A_MESSAGE = frozenset({ACK, READ, RECALL, EDIT, REACT})
# Events about a group: they need `gid`.
ABOUT_A_GROUP = ABOUT_A_MESSAGE | {MSG, TYPING}

TEXT = "Text"
RICH_TEXT = "RichText"
IMAGE = "Image"
FILE = "File"
KINDS = frozenset({TEXT, RICH_TEXT, IMAGE, FILE})
# Kinds whose content is text a person wrote, so that an Edit may replace it.
EDITABLE_KINDS = frozenset({TEXT, RICH_TEXT})

OK = "Ok"
MAX_CLIENT_MSG_ID = 64
MAX_EMOJI = 16
# Ids are 64-bit signed integers in the database: anything larger names nothing.
MAX_ID = 2**63 - 1
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Close codes the application starts (docs/protocol.md, "Close codes"). The server's
# transport sends the others itself (infra.server): 1001 at shutdown, 1009 for a frame
# over its limit, 4004 for a client that reads too slowly.
CLOSE_IDLE = 4000  # silent longer than the idle timeout
CLOSE_DEACTIVATED = 4001  # the user was deactivated
CLOSE_NO_LOGIN = 4002  # no Login within the login deadline
CLOSE_TOO_MANY = 4003  # too many connections from this address
CLOSE_RATE_ABUSE = 4008  # a full burst of refused events in a row
CLOSE_TOO_BIG_APP = 4009  # a frame over the limit, seen by the application (stock daphne)


@dataclass(frozen=True, slots=True)
class ClientEvent:
    event: str
    client_msg_id: str
    kind: str
    uid: int | None
    gid: int | None
    msg_id: int | None
    content: str
    reply_to: int | None = None


def decode_frame(text: str | None) -> dict:
    """The JSON object of a text frame; `None` stands for a binary frame.

    orjson is strict where the stdlib is lenient: it refuses NaN/Infinity, lone
    surrogates and numbers that overflow a double.
    """
    if text is None:
        raise BadJson("binary frames are not accepted; send JSON text")
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"frame is not valid JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise BadJson("frame must be a JSON object")
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
    """Validate a decoded frame into a ClientEvent, or raise a RimError.

    Which fields an event requires is checked here; whether the connection may send it
    (login state, uid binding, membership) is the consumer's and the services' concern.
    """
    event = frame.get("event")
    if not isinstance(event, str) or event not in EVENTS:
        raise InvalidEvent(f"event must be one of {', '.join(sorted(EVENTS))}")
    body = frame.get("body")
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    client_msg_id = body.get("clientMsgId")
    if not _is_client_msg_id(client_msg_id):
        raise InvalidInput(
            f"clientMsgId must be a non-empty string of at most {MAX_CLIENT_MSG_ID} characters"
        )

    kind = body.get("kind")
    if kind is None and event != MSG:
        kind = TEXT
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(sorted(KINDS))}")

    uid = _optional_id(body, "uid")
    gid = _optional_id(body, "gid")
    msg_id = _optional_id(body, "msgId")
    reply_to = _optional_id(body, "replyTo") if event == MSG else None
    content = body.get("content", "")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise InvalidInput("content must be a string")
    if "\x00" in content:
        raise InvalidInput("content must not contain NUL characters")

    if event != HEART and uid is None:
        raise InvalidInput("uid is required")
    if event == LOGIN and not content:
        raise InvalidInput("content must carry the login token")
    if event in ABOUT_A_GROUP and gid is None:
        raise InvalidInput("gid is required")
    if event in ABOUT_A_MESSAGE and msg_id is None:
        raise InvalidInput("msgId is required")
    if event in (MSG, EDIT):
        _check_text(content, max_content)
    if event == REACT and not is_emoji(content):
        raise InvalidInput(f"content must be one emoji (1 to {MAX_EMOJI} characters)")
    return ClientEvent(
        event=event,
        client_msg_id=client_msg_id,
        kind=kind,
        uid=uid,
        gid=gid,
        msg_id=msg_id,
        content=content,
        reply_to=reply_to,
    )


def _check_text(content: str, max_content: int) -> None:
    if not content:
        raise InvalidInput("content must not be empty")
    if utf8_length_over(content, max_content):
        raise ContentTooLarge(f"content is over the limit of {max_content} bytes")


def is_emoji(text: str) -> bool:
    """One emoji, loosely: 1-16 characters (skin tones, joiners and flags take
    several), no white space or control character, and not plain ASCII text."""
    return (
        0 < len(text) <= MAX_EMOJI
        and not text.isascii()
        and all(c.isprintable() and not c.isspace() for c in text)
    )


def _is_client_msg_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_CLIENT_MSG_ID and "\x00" not in value


def _optional_id(body: dict, field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    # bool is an int in Python but `true` is no id on the wire.
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise InvalidInput(f"{field} must be a positive integer or null")
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
    reply_to: int | None = None,
    recalled: bool = False,
    edit_time: str | None = None,
) -> str:
    """A message as pushed live, at sync and in repairs. The v2 fields appear only when
    they say something, so a plain message is pushed exactly as v1 pushed it."""
    body = {
        "kind": kind,
        "uid": uid,
        "gid": gid,
        "content": content,
        "clientMsgId": client_msg_id,
        "msgId": msg_id,
        "seq": seq,
        "createTime": create_time,
    }
    if reply_to is not None:
        body["replyTo"] = reply_to
    if recalled:
        body["recalled"] = True
    if edit_time is not None:
        body["editTime"] = edit_time
    return _dumps({"event": MSG, "body": body})


def encode_read_push(*, reader_uid: int, gid: int, msg_id: int, client_msg_id: str | None) -> str:
    return _dumps(
        {
            "event": READ,
            "body": {
                "kind": TEXT,
                "uid": reader_uid,
                "gid": gid,
                "msgId": msg_id,
                "content": "",
                "clientMsgId": client_msg_id,
            },
        }
    )


def encode_change_push(
    event: str,
    *,
    kind: str,
    actor_uid: int,
    gid: int,
    msg_id: int,
    client_msg_id: str | None,
    seq: int,
    content: str = "",
    **extra,
) -> str:
    """A Recall, Edit or React push (§6.1): `uid` is the actor, `kind` the message's
    own, `seq` the change's place in the group's sequence; `extra` adds the event's
    own fields (`editTime`; `on`)."""
    return _dumps(
        {
            "event": event,
            "body": {
                "kind": kind,
                "uid": actor_uid,
                "gid": gid,
                "msgId": msg_id,
                "content": content,
                "clientMsgId": client_msg_id,
                "seq": seq,
                **extra,
            },
        }
    )


def encode_typing_push(*, uid: int, gid: int, client_msg_id: str) -> str:
    return _dumps(
        {
            "event": TYPING,
            "body": {"kind": TEXT, "uid": uid, "gid": gid, "clientMsgId": client_msg_id},
        }
    )


def encode_presence_push(*, uid: int, online: bool, last_seen: str | None) -> str:
    return _dumps(
        {
            "event": PRESENCE,
            "body": {
                "kind": TEXT,
                "uid": uid,
                "content": "online" if online else "offline",
                "lastSeen": last_seen,
            },
        }
    )
