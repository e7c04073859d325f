"""chat.protocol: rim's wire format, parsed strictly and encoded exactly (PROTOCOL.md §2, §4).

Pure functions: no database, no consumer.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime

import pytest

from chat import protocol as wire
from infra.errors import RimError

LIMIT = 64


def frame(event: object = "Msg", **body) -> dict:
    """A valid Msg frame (the seed's example), with fields of the body replaced;
    a field given as `...` is removed."""
    base = {
        "kind": "Text",
        "uid": 1,
        "gid": 1,
        "content": "Hello World",
        "clientMsgId": "badc6d33aebfd40ab3cda",
        "msgId": None,
    }
    base.update(body)
    return {"event": event, "body": {k: v for k, v in base.items() if v is not ...}}


def parse(value: dict, max_content: int = LIMIT) -> wire.ClientEvent:
    return wire.parse_event(value, max_content=max_content)


@dataclass(frozen=True)
class Refusal:
    """What the consumer answers a refused frame with: the error's code and detail,
    and the clientMsgId its ack echoes."""

    code: str
    detail: str
    client_msg_id: str | None


def refusal(value: dict, max_content: int = LIMIT) -> Refusal:
    with pytest.raises(RimError) as caught:
        parse(value, max_content)
    error = caught.value
    return Refusal(error.code, error.detail, wire.echoable_client_msg_id(value))


def decode_refusal(text: str | None) -> Refusal:
    with pytest.raises(RimError) as caught:
        wire.decode_frame(text)
    return Refusal(caught.value.code, caught.value.detail, None)


# -- decode_frame: bad_json ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        '{"event": "Msg",}',
        "{'event': 'Msg'}",
        '{"a": NaN}',
        "NaN",
        '{"a": Infinity}',
        '{"a": -Infinity}',
        '{"a": 1e400}',
        '{"a": "\\ud800"}',
        '{"a": "\\udc00x"}',
        "\ufeff{}",
        '{"a": 1} trailing',
    ],
    ids=repr,
)
def test_malformed_json_is_bad_json(text):
    error = decode_refusal(text)
    assert error.code == "bad_json"
    assert error.client_msg_id is None


@pytest.mark.parametrize("text", ["[]", '[{"event": "Msg"}]', "1", '"Msg"', "null", "true"])
def test_json_that_is_not_an_object_is_bad_json(text):
    error = decode_refusal(text)
    assert error.code == "bad_json"
    assert "object" in error.detail


def test_binary_frame_is_bad_json():
    error = decode_refusal(None)
    assert error.code == "bad_json"
    assert "binary" in error.detail


def test_lone_surrogate_in_text_itself_is_bad_json():
    # Not something a real WebSocket delivers, but a str can hold it.
    assert decode_refusal('{"content": "\ud800"}').code == "bad_json"


def test_a_json_object_decodes_with_paired_surrogates_and_large_numbers_intact():
    text = '{"event": "Msg", "body": {"content": "\\ud83d\\ude00", "uid": 9223372036854775807}}'
    assert wire.decode_frame(text) == {
        "event": "Msg",
        "body": {"content": "\U0001f600", "uid": 2**63 - 1},
    }


# -- parse_event: a valid event -------------------------------------------------------


def test_the_seed_msg_example_parses():
    assert parse(frame()) == wire.ClientEvent(
        event="Msg",
        client_msg_id="badc6d33aebfd40ab3cda",
        kind="Text",
        uid=1,
        gid=1,
        msg_id=None,
        content="Hello World",
    )


def test_login_ignores_nothing_it_needs_and_accepts_rims_gid():
    event = parse(frame("Login", gid=3, content="2b1c0f5e-token"))
    assert (event.event, event.uid, event.content) == ("Login", 1, "2b1c0f5e-token")


@pytest.mark.parametrize("event", ["Login", "Ack", "Read", "Heart", "Logout"])
def test_kind_defaults_to_text_except_for_msg(event):
    assert parse(frame(event, kind=..., msgId=5, content="t")).kind == "Text"


def test_heart_needs_no_uid():
    event = parse({"event": "Heart", "body": {"clientMsgId": "h1"}})
    assert (event.event, event.uid, event.client_msg_id) == ("Heart", None, "h1")


@pytest.mark.parametrize("kind", ["Text", "RichText", "Image"])
def test_every_kind_of_message_parses(kind):
    assert parse(frame(kind=kind)).kind == kind


def test_absent_and_null_optional_fields_are_none():
    event = parse(frame("Logout", gid=..., msgId=..., content=...))
    assert (event.gid, event.msg_id, event.content) == (None, None, "")
    event = parse(frame("Logout", gid=None, msgId=None, content=None))
    assert (event.gid, event.msg_id, event.content) == (None, None, "")


def test_ids_up_to_the_database_maximum_are_accepted():
    event = parse(frame("Ack", uid=2**63 - 1, gid=2**63 - 1, msgId=2**63 - 1))
    assert event.uid == event.gid == event.msg_id == 2**63 - 1


def test_client_msg_id_of_64_characters_is_accepted():
    assert parse(frame(clientMsgId="x" * 64)).client_msg_id == "x" * 64


def test_client_msg_id_of_64_non_ascii_characters_counts_characters():
    assert parse(frame(clientMsgId="é" * 64)).client_msg_id == "é" * 64


# -- parse_event: invalid_event -------------------------------------------------------


@pytest.mark.parametrize("event", [..., None, "msg", "MSG", "Push", "", 1, True, ["Msg"], {}])
def test_unknown_or_missing_event_is_invalid_event(event):
    value = frame("Msg")
    if event is ...:
        del value["event"]
    else:
        value["event"] = event
    error = refusal(value)
    assert error.code == "invalid_event"
    # The frame's clientMsgId is echoed: the client can match the refusal.
    assert error.client_msg_id == "badc6d33aebfd40ab3cda"


def test_invalid_event_without_a_body_echoes_nothing():
    error = refusal({"event": "Nope"})
    assert (error.code, error.client_msg_id) == ("invalid_event", None)


# -- parse_event: invalid_body ------------------------------------------------------------


@pytest.mark.parametrize("body", [..., None, [], "body", 1, True])
def test_missing_or_non_object_body_is_invalid_body(body):
    value = {"event": "Msg"} if body is ... else {"event": "Msg", "body": body}
    error = refusal(value)
    assert (error.code, error.client_msg_id) == ("invalid_body", None)


@pytest.mark.parametrize(
    "client_msg_id",
    [..., None, "", "x" * 65, 1, 1.5, True, ["a"], {"a": 1}, "a\x00b"],
    ids=["missing", "null", "empty", "65 chars", "int", "float", "bool", "list", "object", "NUL"],
)
def test_bad_client_msg_id_is_invalid_body_and_not_echoed(client_msg_id):
    error = refusal(frame(clientMsgId=client_msg_id))
    assert error.code == "invalid_body"
    assert "clientMsgId" in error.detail
    assert error.client_msg_id is None


@pytest.mark.parametrize("kind", [..., None, "text", "Video", "", 1, ["Text"], {"Text": 1}])
def test_msg_with_missing_or_unknown_kind_is_invalid_body(kind):
    error = refusal(frame(kind=kind))
    assert error.code == "invalid_body"
    assert "kind" in error.detail
    assert error.client_msg_id == "badc6d33aebfd40ab3cda"


@pytest.mark.parametrize("event", ["Login", "Ack", "Read", "Heart", "Logout"])
def test_unknown_kind_is_invalid_body_for_every_event(event):
    assert refusal(frame(event, kind="Video", msgId=1, content="t")).code == "invalid_body"


BAD_IDS = [
    "1",
    1.0,
    1.5,
    True,
    False,
    0,
    -1,
    2**63,
    2**64 + 1,
    [1],
    {"id": 1},
]


@pytest.mark.parametrize("field", ["uid", "gid", "msgId"])
@pytest.mark.parametrize("value", BAD_IDS, ids=repr)
def test_id_that_is_not_a_positive_64_bit_integer_is_invalid_body(field, value):
    error = refusal(frame("Read", **({"msgId": 1} | {field: value})))
    assert error.code == "invalid_body"
    assert field in error.detail


@pytest.mark.parametrize("field", ["uid", "gid", "msgId"])
def test_huge_integers_through_the_decoder_are_invalid_body(field):
    valid = '{"event":"Read","body":{"uid":1,"gid":1,"msgId":1,"clientMsgId":"c"}}'
    assert parse(wire.decode_frame(valid)).msg_id == 1
    # 2**63 overflows the database's ids; 2**64 + 1 and below -2**63 do not even fit an
    # integer for orjson, which makes them floats: no id either way.
    for digits in ("9223372036854775808", "18446744073709551617", "-9223372036854775809"):
        text = valid.replace(f'"{field}":1', f'"{field}":{digits}')
        error = refusal(wire.decode_frame(text))
        assert (error.code, error.client_msg_id) == ("invalid_body", "c")


@pytest.mark.parametrize("content", [1, 1.5, True, ["a"], {"a": "b"}])
def test_content_that_is_not_a_string_is_invalid_body(content):
    error = refusal(frame(content=content))
    assert error.code == "invalid_body"
    assert "content" in error.detail


@pytest.mark.parametrize("event", ["Msg", "Login"])
def test_content_with_nul_is_invalid_body(event):
    error = refusal(frame(event, content="a\x00b"))
    assert error.code == "invalid_body"
    assert "NUL" in error.detail


def test_nul_through_the_decoder_is_invalid_body():
    text = json.dumps(frame(content="a\u0000b"))
    assert "\\u0000" in text
    assert refusal(wire.decode_frame(text)).code == "invalid_body"


@pytest.mark.parametrize("event", ["Login", "Msg", "Ack", "Read", "Logout"])
@pytest.mark.parametrize("uid", [..., None])
def test_uid_is_required_except_for_heart(event, uid):
    error = refusal(frame(event, uid=uid, msgId=1, content="t"))
    assert error.code == "invalid_body"
    assert "uid" in error.detail


@pytest.mark.parametrize("content", [..., None, ""])
def test_login_without_a_token_is_invalid_body(content):
    error = refusal(frame("Login", content=content))
    assert error.code == "invalid_body"
    assert "token" in error.detail


@pytest.mark.parametrize("event", ["Msg", "Ack", "Read"])
@pytest.mark.parametrize("gid", [..., None])
def test_gid_is_required_for_msg_ack_and_read(event, gid):
    error = refusal(frame(event, gid=gid, msgId=1))
    assert error.code == "invalid_body"
    assert "gid" in error.detail


@pytest.mark.parametrize("event", ["Ack", "Read"])
@pytest.mark.parametrize("msg_id", [..., None])
def test_msg_id_is_required_for_ack_and_read(event, msg_id):
    error = refusal(frame(event, msgId=msg_id))
    assert error.code == "invalid_body"
    assert "msgId" in error.detail


@pytest.mark.parametrize("content", [..., None, ""])
def test_msg_with_empty_content_is_invalid_body(content):
    error = refusal(frame(content=content))
    assert error.code == "invalid_body"
    assert "content" in error.detail


# -- content_too_large: bytes of UTF-8, not characters ---------------------------------


@pytest.mark.parametrize(
    "content",
    ["a" * LIMIT, "é" * (LIMIT // 2), "\U0001f600" * (LIMIT // 4), "a" * (LIMIT - 3) + "€"],
    ids=["ascii", "2-byte", "4-byte", "mixed"],
)
def test_content_of_exactly_the_limit_in_bytes_is_accepted(content):
    assert len(content.encode()) == LIMIT
    assert parse(frame(content=content)).content == content


@pytest.mark.parametrize(
    "content",
    ["a" * (LIMIT + 1), "é" * (LIMIT // 2 + 1), "\U0001f600" * (LIMIT // 4) + "a", "€" * 22],
    ids=["ascii", "2-byte", "4-byte", "3-byte"],
)
def test_content_over_the_limit_in_bytes_is_content_too_large(content):
    assert len(content.encode()) > LIMIT
    # Multi-byte contents are within the limit when counted in characters.
    error = refusal(frame(content=content))
    assert error.code == "content_too_large"
    assert error.client_msg_id == "badc6d33aebfd40ab3cda"
    assert str(LIMIT) in error.detail


def test_content_limit_is_the_one_passed_in():
    assert parse(frame(content="a" * 1000), max_content=1000).content == "a" * 1000
    assert refusal(frame(content="a" * 1001), max_content=1000).code == "content_too_large"


def test_content_limit_applies_to_msg_only():
    # A Login token or an Ack's content is not a message; its size is the frame's concern.
    assert parse(frame("Login", content="t" * (LIMIT + 1))).event == "Login"


@pytest.mark.parametrize(
    ("text", "limit", "over"),
    [
        ("", 0, False),
        ("a", 0, True),
        ("abcd", 4, False),
        ("abcde", 4, True),
        ("éé", 4, False),
        ("ééa", 4, True),
        ("\U0001f600", 3, True),
        ("\U0001f600", 4, False),
    ],
)
def test_utf8_length_over_counts_encoded_bytes(text, limit, over):
    assert wire.utf8_length_over(text, limit) is over


# -- echoable_client_msg_id -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "echoed"),
    [
        ({"body": {"clientMsgId": "abc"}}, "abc"),
        ({"body": {"clientMsgId": "x" * 64}}, "x" * 64),
        ({"body": {"clientMsgId": "x" * 65}}, None),
        ({"body": {"clientMsgId": ""}}, None),
        ({"body": {"clientMsgId": 7}}, None),
        ({"body": {"clientMsgId": "a\x00"}}, None),
        ({"body": {}}, None),
        ({"body": ["clientMsgId"]}, None),
        ({"clientMsgId": "top-level"}, None),
        ({}, None),
    ],
)
def test_only_a_valid_client_msg_id_is_echoed(value, echoed):
    assert wire.echoable_client_msg_id(value) == echoed


# -- encoding: exact shapes -------------------------------------------------------------


def test_ok_ack_has_exactly_the_seed_fields():
    text = wire.encode_ack("badc6d33aebfd40ab3cda", 28)
    assert json.loads(text) == {
        "clientMsgId": "badc6d33aebfd40ab3cda",
        "serverMsgId": 28,
        "kind": "Ack",
        "content": "Ok",
    }
    assert list(json.loads(text)) == ["clientMsgId", "serverMsgId", "kind", "content"]


def test_ok_ack_without_a_server_id_carries_null():
    assert json.loads(wire.encode_ack("l1")) == {
        "clientMsgId": "l1",
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }


def test_error_ack_has_the_seed_fields_and_a_detail():
    text = wire.encode_error("not_member", "user 2 is not a member of group 7", "72aebfd4aeef7634")
    assert json.loads(text) == {
        "clientMsgId": "72aebfd4aeef7634",
        "serverMsgId": None,
        "kind": "Ack",
        "content": "not_member",
        "detail": "user 2 is not a member of group 7",
    }


def test_error_ack_without_a_client_msg_id_echoes_null():
    assert json.loads(wire.encode_error("bad_json", "no", None))["clientMsgId"] is None


def test_msg_push_has_the_seed_shape_plus_seq_and_create_time():
    text = wire.encode_msg_push(
        kind="Text",
        uid=1,
        gid=1,
        content="Hello World",
        client_msg_id="badc6d33aebfd40ab3cda",
        msg_id=28,
        seq=3,
        create_time="2026-01-02 03:04:05",
    )
    assert json.loads(text) == {
        "event": "Msg",
        "body": {
            "kind": "Text",
            "uid": 1,
            "gid": 1,
            "content": "Hello World",
            "clientMsgId": "badc6d33aebfd40ab3cda",
            "msgId": 28,
            "seq": 3,
            "createTime": "2026-01-02 03:04:05",
        },
    }


def test_read_push_has_the_contract_shape():
    text = wire.encode_read_push(reader_uid=2, gid=7, msg_id=28, client_msg_id="r1")
    assert json.loads(text) == {
        "event": "Read",
        "body": {
            "kind": "Text",
            "uid": 2,
            "gid": 7,
            "msgId": 28,
            "content": "",
            "clientMsgId": "r1",
        },
    }


def test_encoded_text_keeps_non_ascii_and_round_trips():
    content = 'héllo \U0001f600 \u2028 "quoted" \\ </script>'
    text = wire.encode_msg_push(
        kind="RichText",
        uid=1,
        gid=1,
        content=content,
        client_msg_id="c",
        msg_id=1,
        seq=1,
        create_time="2026-01-02 03:04:05",
    )
    assert json.loads(text)["body"]["content"] == content
    # The encoded push is valid input to the strict decoder too.
    assert wire.decode_frame(text)["body"]["content"] == content


def test_time_format_is_rims():
    assert wire.format_time(datetime(2026, 1, 2, 3, 4, 5, 999999)) == "2026-01-02 03:04:05"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", wire.format_time(datetime.now()))
