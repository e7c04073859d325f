"""The REST envelope: every response is {"ok", "code", "msg", "data"}, code = HTTP status.

Views answer through `envelope`; DRF's exception handler and Django's 404/500 handlers
below turn every failure into the same shape, so a client parses one format.
"""

import logging
import math

from django.conf import settings
from django.http import Http404, JsonResponse
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
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(math.ceil(exc.wait))
    return response


def _status_and_message(exc: Exception, context: dict) -> tuple[int, str]:
    if isinstance(exc, RimError):
        return exc.status, exc.detail
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return 401, LOGIN_REQUIRED
    if isinstance(exc, exceptions.ValidationError):
        return 400, validation_message(exc.detail)
    if isinstance(exc, exceptions.ParseError):
        return 400, "malformed JSON body"
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, Http404):
        return 404, "not found"
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


def not_found(request, exception=None, **kwargs) -> JsonResponse:
    return JsonResponse(_body(404, "invalid request"), status=404)


def server_error(request) -> JsonResponse:
    return JsonResponse(_body(500, "system error"), status=500)


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
