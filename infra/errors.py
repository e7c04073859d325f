"""Domain errors raised by the services.

Each carries the WebSocket error code of the protocol (docs/protocol.md §4) and the
HTTP status the REST API answers with, so that both transports report one failure the
same way without either holding a rule of its own.
"""


class DomainError(Exception):
    code = "server_error"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid_body"
    http_status = 400


class AuthFailed(DomainError):
    code = "auth_failed"
    http_status = 401


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403


class NotMember(Forbidden):
    """The group does not exist or the user is not in it: the two are not told apart."""

    code = "not_member"


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class UnknownMessage(NotFound):
    code = "unknown_message"


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
