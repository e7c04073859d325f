"""The one error hierarchy of rim, and where each error maps on both transports.

A refusal is raised as a RimError subclass wherever it is found (the protocol parser,
the consumer, a service) and carries its `detail`, a sentence for the client. Its class
says how each transport reports it: `code` is the WebSocket MsgAck's `content`
(docs/protocol.md §4) and `status` the HTTP status of the REST envelope. The consumer
and the REST exception handler read these two attributes and nothing else, so a new
refusal is one class here. Pure Python: the protocol module imports it.
"""


class RimError(Exception):
    """A request the server refuses; anything not a RimError is a server error."""

    code = "server_error"
    status = 500

    def __init__(self, detail: str, *, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        # Seconds after which the same request may succeed (REST: Retry-After).
        self.retry_after = retry_after


class BadJson(RimError):
    code = "bad_json"
    status = 400


class InvalidEvent(RimError):
    code = "invalid_event"
    status = 400


class InvalidInput(RimError):
    code = "invalid_body"
    status = 400


class ContentTooLarge(RimError):
    code = "content_too_large"
    status = 413


class UnsupportedType(RimError):
    """An upload whose content is not of a type the server accepts."""

    code = "unsupported_type"
    status = 415


class NotLoggedIn(RimError):
    code = "not_logged_in"
    status = 401


class AuthFailed(RimError):
    code = "auth_failed"
    status = 401


class UidMismatch(RimError):
    code = "uid_mismatch"
    status = 403


class Forbidden(RimError):
    code = "forbidden"
    status = 403


class NotMember(Forbidden):
    """The group does not exist or the user is not in it: the two are not told apart."""

    code = "not_member"


class TooLate(Forbidden):
    """Past the window in which the change is allowed."""

    code = "too_late"


class NotFound(RimError):
    code = "not_found"
    status = 404


class UnknownMessage(NotFound):
    code = "unknown_message"


class Conflict(RimError):
    code = "conflict"
    status = 409


class Recalled(Conflict):
    """The message was recalled: nothing more can be done to it."""

    code = "recalled"


class QuotaExceeded(Conflict):
    """The user's stored files leave no room for this one."""

    code = "quota_exceeded"


class RateLimited(RimError):
    code = "rate_limited"
    status = 429


class ServerBusy(RimError):
    """The server has more of this work queued than it takes on; retry shortly."""

    code = "server_busy"
    status = 503
