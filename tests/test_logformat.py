"""The JSON log format (infra.logformat): one object per line, rim's event pairs as
fields, the standard fields intact, exceptions on the same line. A real server's JSON
log: tests/e2e/test_e2e_monitoring.py."""

import json
import logging
import sys

from infra.logformat import JsonFormatter, event_fields


def formatted(message: str, *args, exc_info=None) -> dict:
    record = logging.LogRecord("rim.ws", logging.INFO, __file__, 1, message, args, exc_info)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_json_record_has_the_standard_fields_and_the_event_pairs():
    entry = formatted("event=ws_login conn=%s uid=%s groups=%d", "abc", 7, 2)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "INFO",
        "logger": "rim.ws",
        "message": "event=ws_login conn=abc uid=7 groups=2",
        "event": "ws_login",
        "conn": "abc",
        "uid": "7",
        "groups": "2",
    }


def test_a_value_with_spaces_stays_whole():
    error = "ConnectionError('Error 111 connecting to localhost:6379. Connection refused.')"
    entry = formatted("event=publish_failed events=%d error=%s", 3, error)
    assert entry["error"] == error and entry["events"] == "3"


def test_pairs_never_replace_the_standard_fields_and_other_messages_are_not_split():
    entry = formatted("event=odd level=DEBUG logger=evil message=x")
    assert (entry["level"], entry["logger"]) == ("INFO", "rim.ws")
    assert entry["message"] == "event=odd level=DEBUG logger=evil message=x"
    assert event_fields("Not Found: /api/x?a=b") == {}
    assert set(formatted("Not Found: /api/x?a=b")) == {"time", "level", "logger", "message"}


def test_an_exception_is_one_field_on_the_same_line():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        entry = formatted("event=ws_server_error conn=%s", "c1", exc_info=sys.exc_info())
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom\nsecond line" in entry["exception"]
    assert entry["event"] == "ws_server_error"
