"""The JSON log format (RIM_LOG_FORMAT=json): one JSON object per line, for log
collectors.

Every record has `time` (UTC, ISO 8601), `level`, `logger` and `message`, and
`exception` when it carries one. rim's own messages are written as
`event=ws_login conn=... uid=7 groups=2`; their pairs also become fields of their own
(`"event": "ws_login"`, `"uid": "7"`, ...), so that a collector can filter on them
without parsing. Values stay strings: one key must not be a number in one record and
text in the next (`code=1000`, `code=auth_failed`), which collectors that infer a
type per field reject. The message itself is kept whole.
"""

import json
import logging
import re
from datetime import UTC, datetime

# A key at the start of the message or after a space: `name=`. A value runs up to the
# next key, so a value with spaces in it (an error's repr) stays whole.
KEY = re.compile(r"(?:^|\s)([A-Za-z_]\w*)=")


def event_fields(message: str) -> dict[str, str]:
    """The key=value pairs of a rim event message; none for any other message."""
    if not message.startswith("event="):
        return {}
    keys = list(KEY.finditer(message))
    ends = [key.start() for key in keys[1:]] + [len(message)]
    return {key.group(1): message[key.end() : end] for key, end in zip(keys, ends, strict=True)}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for key, value in event_fields(message).items():
            entry.setdefault(key, value)  # the four above are never overwritten
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry)
