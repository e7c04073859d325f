"""The OpenAPI description of the REST API (drf-spectacular), envelope included.

A view's method carries one `route(...)` decorator: a summary, its input (a JSON `body`
or a `query` serializer), the payload of its answer (`data`, which the envelope wraps)
and the refusals that only its own rules make (`errors`). RimAutoSchema adds the
refusals that follow from how the view is set up, so that none is forgotten: 400 where
there is input to validate, 401 where a token is needed, 413 and 415 where there is a
body (too large, not JSON), 429 where a throttle counts, and 503 everywhere (no database
connection free in time, infra.api). Every answer is the envelope of infra.api: a
success carries the payload in `data`, a refusal is `Error`.

rimsite/urls.py serves the description at /api/schema/ (made once per process, see
OncePerProcess) and its page at /api/docs/.
"""

import threading
from typing import NamedTuple

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers


def constant(help_text: str, **schema) -> serializers.Field:
    """A field whose one possible value `schema` names: {"type": ..., "enum": [value]}.
    Under allOf: drf-spectacular's enum hook would make a bare enum a component."""
    field_class = type("Constant", (serializers.Field,), {})
    return extend_schema_field({"allOf": [schema]})(field_class)(help_text=help_text)


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        "example": "2026-01-31 23:59:59",
    }
)
class Time(serializers.CharField):
    """A time as the API writes it: "YYYY-MM-DD HH:MM:SS" in the server's time zone."""


class ErrorSerializer(serializers.Serializer):
    """A refusal, in the envelope: `msg` says why."""

    ok = constant("false", type="boolean", enum=[False])
    code = serializers.IntegerField(min_value=400, max_value=599, help_text="the HTTP status")
    msg = serializers.CharField(help_text="why, in a sentence for people")
    data = constant("null", type="object", nullable=True, enum=[None])


class SuccessSerializer(serializers.Serializer):
    ok = constant("true", type="boolean", enum=[True])
    code = constant("the HTTP status", type="integer", enum=[200])
    msg = constant("null", type="string", nullable=True, enum=[None])


class Scalar(NamedTuple):
    """A payload that is one JSON value (an id, a token, `true`), and the name of its
    envelope's component ("<name>Response")."""

    name: str
    field: serializers.Field


DONE = Scalar("Done", serializers.BooleanField(help_text="always true"))
NEW_ID = Scalar("NewId", serializers.IntegerField(help_text="the id of what was created"))

_envelopes: dict[str, tuple[object, type[serializers.Serializer]]] = {}


def enveloped(data) -> type[serializers.Serializer]:
    """The envelope of a success whose `data` is `data`: a Scalar, a serializer class,
    or a serializer with many=True (a list). One class per payload, named after it."""
    name, identity, field = _payload(data)
    known = _envelopes.get(name)
    if known is None:
        envelope = type(f"{name}Response", (SuccessSerializer,), {"data": field})
        known = _envelopes[name] = identity, envelope
    if known[0] is not identity:
        raise ValueError(f"two different payloads are named {name!r}")
    return known[1]


def _payload(data) -> tuple[str, object, serializers.Field]:
    if isinstance(data, Scalar):
        return data.name, data, data.field
    data = force_instance(data)
    if isinstance(data, serializers.ListSerializer):
        return f"{_name(data.child)}List", type(data.child), data
    return _name(data), type(data), data


def _name(serializer: serializers.Serializer) -> str:
    return type(serializer).__name__.removesuffix("Serializer")


def refusal(status: int, why: str) -> OpenApiResponse:
    example = OpenApiExample("Refusal", value=refused(status, why))
    return OpenApiResponse(ErrorSerializer, description=why, examples=[example])


def refused(status: int, why: str) -> dict:
    """An example of the envelope of a refusal."""
    return {"ok": False, "code": status, "msg": why, "data": None}


def route(summary: str, *, data, body=None, query=None, errors=None, description=None):
    """The schema of one REST route answering in the envelope.

    body: the serializer of its JSON body; query: the serializer of its query
    parameters; data: its payload (see `enveloped`); errors: {status: when} for the
    refusals of the route's own rules (the others come from RimAutoSchema)."""
    return extend_schema(
        summary=summary,
        description=description,
        request=body,
        parameters=[query] if query else None,
        responses={
            200: OpenApiResponse(enveloped(data), description="success"),
            **{status: refusal(status, why) for status, why in (errors or {}).items()},
        },
    )


class RimAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with rim's operation ids (the view's name) and the
    refusals that every route of a kind can answer."""

    def get_operation_id(self) -> str:
        name = type(self.view).__name__
        return name[0].lower() + name[1:]

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None:
            # The route's own descriptions win over the generic ones, keeping their headers.
            setup = self._setup_refusals(operation)
            for status, response in operation["responses"].items():
                if "headers" in setup.get(status, {}):
                    response.setdefault("headers", setup[status]["headers"])
            responses = {**setup, **operation["responses"]}
            operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _setup_refusals(self, operation: dict) -> dict:
        has_body = "requestBody" in operation
        has_query = any(p["in"] == "query" for p in operation.get("parameters", []))
        refusals = {}
        if has_body or has_query:
            refusals["400"] = self._refusal(400, "invalid input: `msg` names the field")
        if self.view.get_authenticators():
            refusals["401"] = self._refusal(
                401, "login required", {"WWW-Authenticate": 'Bearer realm="api"'}
            )
        if has_body:
            refusals["413"] = self._refusal(413, "the request body is over the server's limit")
            refusals["415"] = self._refusal(415, "the body is not of the media type above")
        if self.view.get_throttles():
            refusals["429"] = self._refusal(
                429,
                "too many requests: try again later",
                {"Retry-After": "seconds after which the request may succeed"},
            )
        refusals["503"] = self._refusal(
            503, "server busy; try again", {"Retry-After": "seconds, when the server knows"}
        )
        return refusals

    def _refusal(self, status: int, why: str, headers: dict[str, str] | None = None) -> dict:
        """What refusal(status, why) makes, for a response of drf-spectacular's output."""
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        example = {"Refusal": {"value": refused(status, why)}}
        response = {
            "description": why,
            "content": {"application/json": {"schema": error, "examples": example}},
        }
        if headers:
            response["headers"] = {
                name: {"schema": {"type": "string"}, "description": meaning}
                for name, meaning in headers.items()
            }
        return response


class OncePerProcess(SchemaGenerator):
    """drf-spectacular's generator, run once per process: the description does not change
    while it runs. drf-spectacular makes it anew for every request, which costs CPU on a
    route that anyone may call, and two first requests at once fail (its extensions load
    lazily, and not thread-safely)."""

    lock = threading.Lock()
    schema: dict | None = None

    def get_schema(self, request=None, public=False) -> dict:
        with self.lock:
            if OncePerProcess.schema is None:
                OncePerProcess.schema = super().get_schema(request, public)
            return OncePerProcess.schema
