"""The REST envelope: every response is {"ok", "code", "msg", "data"}, code = HTTP status.

Views answer through `envelope`; DRF's exception handler and Django's 404/500 handlers
below turn every failure into the same shape, so a client parses one format. The
middleware below guarantees it for everything under /api/, whatever the method and
content type: it rewraps any answer that Django builds outside the API's views (a CSRF
refusal, a 400 for a disallowed host, a redirect, a debug page) into the envelope with
the same status.
"""

import logging
import math
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from infra.errors import Forbidden, RimError

log = logging.getLogger("rim.api")

LOGIN_REQUIRED = "login required"


def envelope(data=None, status: int = 200) -> Response:
    return Response(_body(status, None, data), status=status)


def _body(status: int, msg: str | None, data=None) -> dict:
    return {"ok": 200 <= status < 300, "code": status, "msg": msg, "data": data}


def exception_handler(exc: Exception, context: dict) -> Response:
    status, msg = _status_and_message(exc, context)
    response = Response(_body(status, msg), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    retry_after = _retry_after(exc)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _retry_after(exc: Exception) -> int | None:
    """Whole seconds, at least 1, after which the request may succeed."""
    if isinstance(exc, exceptions.Throttled):
        seconds = exc.wait
    else:
        seconds = getattr(exc, "retry_after", None)
    return None if seconds is None else max(1, math.ceil(seconds))


def _status_and_message(exc: Exception, context: dict) -> tuple[int, str]:
    if isinstance(exc, RimError):
        return exc.status, exc.detail
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return 401, LOGIN_REQUIRED
    if isinstance(exc, exceptions.Throttled):
        wait = _retry_after(exc)
        later = f"try again in {wait} seconds" if wait is not None else "try again later"
        return 429, f"too many requests: {later}"
    if isinstance(exc, exceptions.ValidationError):
        return 400, validation_message(exc.detail)
    if isinstance(exc, exceptions.ParseError):
        return 400, "malformed JSON body"
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, Http404):
        return 404, "not found"
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body declared over the limit before reading it.
        return 413, f"request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    if isinstance(exc, SuspiciousOperation):
        # Django's own refusals of a request, e.g. a query string with too many fields.
        return 400, str(exc) or "bad request"
    if isinstance(exc.__cause__, PoolTimeout):
        # Every connection of the process's pool stayed busy for RIM_DB_POOL_TIMEOUT:
        # an overload to shed, not a bug.
        log.warning("event=db_pool_exhausted view=%s", type(context.get("view")).__name__)
        return 503, "server busy; try again"
    view = context.get("view")
    log.error("event=api_error view=%s", type(view).__name__, exc_info=exc)
    return 500, "system error"


def validation_message(detail, path: str = "") -> str:
    """The first problem, named by its field path ("group.name: This field is
    required.")."""
    if isinstance(detail, dict):
        field, inner = next(iter(detail.items()))
        name = field if field != "non_field_errors" else ""
        return validation_message(inner, f"{path}.{name}" if path and name else path or name)
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if item:
                if isinstance(item, (dict, list)):
                    return validation_message(item, f"{path}[{index}]")
                return f"{path}: {item}" if path else str(item)
    return f"{path}: invalid" if path else "invalid request body"


# Exempt from CSRF: it changes nothing, and a POST to an unknown route must be told
# that the route does not exist, not that its CSRF token is missing.
@csrf_exempt
def not_found(request, exception=None, **kwargs) -> JsonResponse:
    return JsonResponse(_body(404, "invalid request"), status=404)


def server_error(request) -> JsonResponse:
    return JsonResponse(_body(500, "system error"), status=500)


def is_api(request) -> bool:
    return request.path_info == "/api" or request.path_info.startswith("/api/")


@sync_and_async_middleware
def api_envelope_middleware(get_response):
    """Every answer under /api/ is the envelope (see the module's docstring)."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            return in_envelope(response) if is_api(request) else response

    else:

        def middleware(request):
            response = get_response(request)
            return in_envelope(response) if is_api(request) else response

    return middleware


def in_envelope(response):
    """`response` if it is JSON already or a success; else the envelope with its status
    and headers (Allow, Location, Retry-After...)."""
    if response.status_code < 300 or response.get("Content-Type", "").startswith(
        "application/json"
    ):
        return response
    status = response.status_code
    wrapped = JsonResponse(_body(status, _phrase(status)), status=status)
    for header, value in response.items():
        if header.lower() not in {"content-type", "content-length"}:
            wrapped[header] = value
    return wrapped


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "request refused"


class Id(serializers.IntegerField):
    """A database id: a positive 64-bit integer."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=2**63 - 1, **kwargs)


class PageInput(serializers.Serializer):
    """page 1 is the first (newest) page; size is capped so every list stays bounded."""

    page = serializers.IntegerField(min_value=1, max_value=10**6, default=1)
    size = serializers.IntegerField(min_value=1, default=20)

    def validate_size(self, size: int) -> int:
        limit = settings.RIM_PAGE_SIZE_MAX
        if size > limit:
            raise serializers.ValidationError(f"Ensure this value is at most {limit}.")
        return size


def page_bounds(data: dict) -> tuple[int, int]:
    """(offset, limit) of a validated PageInput."""
    return (data["page"] - 1) * data["size"], data["size"]


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def require_me(request, uid: int | None) -> None:
    """A field that names the acting user must name the token's user."""
    if uid is not None and uid != request.user.pk:
        raise Forbidden("you can only act as yourself")
