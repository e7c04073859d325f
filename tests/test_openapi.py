"""The OpenAPI description (/api/schema/) and its page (/api/docs/), infra/openapi.py.

The description must be valid, cover every route of the URL conf with its methods,
and say what the routes really answer: real answers of every route, successes and
refusals, are checked against it, with no field it leaves out.
"""

import copy
import json
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from chat.models import Membership
from chat.services import send_message
from infra.api import not_found
from tests.files_helpers import UPLOAD, image_bytes, multipart
from tests.rest_helpers import group_of, send

# The two routes under /api/ that describe the others rather than being described.
DESCRIBING = {SpectacularJSONAPIView, SpectacularSwaggerSplitView}
ENVELOPE = {"ok", "code", "msg", "data"}


@pytest.fixture(scope="module")
def spec() -> dict:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    return json.loads(response.content)


# The description itself


def test_the_description_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    assert spec["info"]["title"] == "rim"
    assert "docs/protocol.md" in spec["info"]["description"]


def test_the_description_is_generated_without_a_warning(tmp_path):
    # --fail-on-warn: an undescribed view, an unresolvable field or an enum naming
    # collision fails here, not in a client generator later.
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3.0")


def api_routes() -> dict[str, set[str]]:
    """Every route of the URL conf under /api/, in OpenAPI's path syntax, with the
    methods its view answers; the two describing routes aside."""
    routes = {}
    for prefix, pattern in _walk(get_resolver().url_patterns):
        route = (prefix + str(pattern.pattern)).removeprefix("^")
        if not route.startswith("api"):
            continue
        view = getattr(pattern.callback, "view_class", None)
        if view is None:
            # Function views under /api/: only the envelope's catch-all.
            assert pattern.callback is not_found, route
            continue
        if view in DESCRIBING:
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        routes[path] = {
            method
            for method in view.http_method_names
            if method not in {"head", "options"} and hasattr(view, method)
        }
    return routes


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix, pattern


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_api_route_is_described_with_its_methods(spec):
    routes = api_routes()
    described = {path: set(item) for path, item in spec["paths"].items()}
    assert described == routes
    # The walk sees what it must: the v1 routes, the v2 ones and the capability URLs.
    assert {"/api/user/login", "/api/message/react", "/api/file/{key}"} <= set(routes)
    # And each has its answer described (an undescribed view gets "No response body").
    for name, operation in operations(spec):
        assert "content" in operation["responses"]["200"], f"{name} has no description"


def test_the_describing_routes_are_not_described(spec):
    assert not {"/api/schema/", "/api/docs/"} & set(spec["paths"])


def resolve(spec, schema: dict) -> dict:
    while "$ref" in schema or "allOf" in schema:
        if "allOf" in schema:
            (schema,) = schema["allOf"]
        name = schema.get("$ref", "").removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name] if name else schema
    return schema


def json_answer(spec, operation: dict, status: str) -> dict:
    return resolve(spec, operation["responses"][status]["content"]["application/json"]["schema"])


def test_every_json_answer_is_the_envelope(spec):
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            if "application/json" not in response.get("content", {}):
                continue
            answer = json_answer(spec, operation, status)
            assert set(answer["properties"]) == ENVELOPE, (name, status)
            assert set(answer["required"]) == ENVELOPE, (name, status)
            ok = resolve(spec, answer["properties"]["ok"])
            assert ok["enum"] == [status.startswith("2")], (name, status)
            if not status.startswith("2"):
                assert resolve(spec, answer["properties"]["data"])["enum"] == [None]


def test_refusals_follow_each_route_and_its_setup(spec):
    answers = {name: set(operation["responses"]) for name, operation in operations(spec)}
    # Every route can be refused for overload; those with input for bad input.
    assert all("503" in statuses for statuses in answers.values())
    # Throttled per address (429); a body too large (413) or not JSON (415).
    assert {"200", "400", "409", "413", "415", "429", "503"} == answers["POST /api/user/create"]
    assert {"200", "400", "401", "413", "415", "429", "503"} == answers["POST /api/user/login"]
    assert {"200", "401", "503"} == answers["POST /api/user/logout"]
    assert {"200", "400", "401", "404", "429", "503"} == answers["GET /api/user/search"]
    assert {"200", "400", "401", "403", "404", "409", "413", "415", "503"} == answers[
        "POST /api/message/edit"
    ]
    assert {"200", "400", "401", "409", "413", "415", "429", "503"} == answers[
        "POST /api/file/upload"
    ]
    assert {"200", "302", "404", "503"} == answers["GET /api/file/{key}"]
    # The route's own description of a status keeps the header that comes with it.
    locked = spec["paths"]["/api/user/login"]["post"]["responses"]["429"]
    assert "locked" in locked["description"]
    assert "Retry-After" in locked["headers"]


def test_a_token_is_needed_everywhere_but_to_register_log_in_and_reach_a_file(spec):
    open_routes = {
        "POST /api/user/create",
        "POST /api/user/login",
        "GET /api/file/{key}",
        "GET /api/file/{key}/thumb",
        "GET /api/file/{key}/info",
    }
    assert spec["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "UUID"}
    }
    for name, operation in operations(spec):
        needs_token = {"bearer": []} in operation.get("security", [])
        assert needs_token is (name not in open_routes), name
        if name != "POST /api/user/login":  # a wrong password is its own 401
            assert ("401" in operation["responses"]) is needs_token, name


def test_messages_are_described_with_their_v2_fields(spec):
    history = spec["paths"]["/api/message/history"]["post"]
    entries = resolve(spec, json_answer(spec, history, "200")["properties"]["data"])
    entry = resolve(spec, entries["items"])
    assert set(entry["properties"]) == {"group", "msg", "user", "unread"}
    message = resolve(spec, entry["properties"]["msg"])
    fields = message["properties"]
    assert {"recalled", "editTime", "replyTo", "reactions"} <= set(fields)
    assert fields["recalled"]["type"] == "boolean"
    assert fields["editTime"]["nullable"] is True
    assert fields["replyTo"] == {
        "type": "integer",
        "nullable": True,
        "description": "the message replied to",
    }
    reaction = resolve(spec, fields["reactions"]["items"])
    assert set(reaction["required"]) == {"emoji", "count", "mine"}


def test_the_upload_is_multipart_and_a_download_binary_or_a_redirect(spec):
    upload_body = spec["paths"]["/api/file/upload"]["post"]["requestBody"]["content"]
    form = resolve(spec, upload_body["multipart/form-data"]["schema"])
    assert form["properties"]["file"]["format"] == "binary"
    download = spec["paths"]["/api/file/{key}"]["get"]["responses"]
    assert download["200"]["content"]["*/*"]["schema"] == {"type": "string", "format": "binary"}
    assert "Location" in download["302"]["headers"]


# Real answers against the description


def strict(spec: dict) -> dict:
    """The description with every object closed: an answer carrying a field it does
    not describe fails."""
    closed = copy.deepcopy(spec)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(closed["components"])
    return closed


class Described:
    """Calls to the routes, each answer checked against the description: its status
    must be one the route lists, and its JSON body what the description says."""

    def __init__(self, spec: dict):
        self.spec = strict(spec)

    def call(self, client, route: str, body=None, *, expect: int = 200):
        """`route` is "METHOD /path"; `body` the query of a GET, else the JSON body.
        Returns the envelope's data."""
        method, path = route.split(" ", 1)
        if method == "GET":
            response = client.get(path, body)
        else:
            response = client.post(path, body, format="json")
        return self.check(response, route, expect=expect)

    def check(self, response, route: str, *, expect: int = 200):
        assert response.status_code == expect, response.content[:300]
        method, path = route.split(" ", 1)
        responses = self.spec["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{route} answered {status}, which it does not list"
        content = responses[status].get("content", {})
        if "application/json" not in content:
            return None  # a download's bytes, or its redirect
        assert response["Content-Type"] == "application/json", route
        body = json.loads(response.content)
        schema = {"allOf": [content["application/json"]["schema"]], **self.spec}
        errors = [error.message for error in OAS30Validator(schema).iter_errors(body)]
        assert not errors, f"{route} {status}: {errors} in {body}"
        return body["data"]


@pytest.fixture(scope="module")
def described(spec) -> Described:
    return Described(spec)


def test_account_answers_match(api_client, client_for, described, bob, token_for):
    call = described.call
    new = {"name": "Ann", "account": "ann", "password": "secret-pw", "email": "a@x.org"}
    ann_id = call(api_client, "POST /api/user/create", new)
    call(api_client, "POST /api/user/create", new, expect=409)
    call(api_client, "POST /api/user/create", {}, expect=400)
    login = {"account": "ann", "password": "secret-pw"}
    token = call(api_client, "POST /api/user/login", login)
    call(api_client, "POST /api/user/login", {**login, "password": "wrong-pw"}, expect=401)

    ann = api_client
    ann.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert call(ann, "GET /api/user/get", {"uid": ann_id})["email"] == "a@x.org"
    call(ann, "GET /api/user/get", {"uid": 10**9}, expect=404)
    call(ann, "GET /api/user/get", {"uid": "x"}, expect=400)
    call(ann, "GET /api/user/token", {"token": token})
    call(ann, "GET /api/user/token", {"token": token_for(bob)}, expect=403)
    call(ann, "GET /api/user/search", {"account": "bob"})
    call(ann, "GET /api/user/search", {"account": "nobody"}, expect=404)

    call(ann, "POST /api/friend/add", {"fid": bob.pk})
    call(ann, "POST /api/friend/add", {"fid": 10**9}, expect=404)
    bobs = client_for(bob)
    requests = call(bobs, "GET /api/friend/list", {"status": 0})
    assert [user["id"] for user in requests] == [ann_id]
    answer = {"fid": ann_id, "status": 1}
    call(bobs, "POST /api/friend/status/modify", answer)
    call(bobs, "POST /api/friend/status/modify", answer, expect=404)  # answered already

    call(ann, "POST /api/user/logout")
    call(ann, "POST /api/user/logout", expect=401)


def test_refusals_of_the_setup_match(api_client, alice, settings, described):
    not_json = api_client.post("/api/user/login", "account=alice", content_type="text/plain")
    described.check(not_json, "POST /api/user/login", expect=415)
    settings.RIM_LOGIN_FAILURES = 1
    wrong = {"account": "alice", "password": "wrong-pw"}
    described.call(api_client, "POST /api/user/login", wrong, expect=401)
    locked = api_client.post("/api/user/login", wrong, format="json")
    described.check(locked, "POST /api/user/login", expect=429)
    assert int(locked["Retry-After"]) > 0


def test_group_answers_match(alice, bob, carol, client_for, described):
    call = described.call
    alices, bobs, carols = client_for(alice), client_for(bob), client_for(carol)
    body = {"group": {"name": "team"}, "users": [{"uid": bob.pk, "role": 1}]}
    gid = call(alices, "POST /api/group/create", body)
    as_bob = {"group": {"name": "x", "creatorUid": bob.pk}}
    call(alices, "POST /api/group/create", as_bob, expect=403)
    unknown = {"group": {"name": "x"}, "users": [{"uid": 10**9}]}
    call(alices, "POST /api/group/create", unknown, expect=404)

    rename = {"id": gid, "name": "renamed"}
    call(alices, "POST /api/group/update", rename)
    call(bobs, "POST /api/group/update", rename, expect=403)  # bob is no admin
    assert [group["name"] for group in call(alices, "GET /api/group/get")] == ["renamed"]
    call(alices, "GET /api/group/get", {"uid": bob.pk}, expect=403)

    call(alices, "GET /api/group/user/get", {"gid": gid})
    call(carols, "GET /api/group/user/get", {"gid": gid}, expect=403)
    call(alices, "POST /api/group/user/change", {"gid": gid, "uids": [carol.pk], "opType": 1})
    unknown = {"gid": gid, "uids": [10**9], "opType": 1}
    call(alices, "POST /api/group/user/change", unknown, expect=404)


def test_message_answers_match(alice, bob, carol, client_for, described):
    call = described.call
    group = group_of(alice, bob)
    first = send(alice, group, "hello")
    send(bob, group, "hi")
    alices, bobs, carols = client_for(alice), client_for(bob), client_for(carol)
    change = {"gid": group.pk, "msgId": first.pk}

    reaction = {**change, "emoji": "👍"}
    assert call(bobs, "POST /api/message/react", reaction) == {"on": True}
    edit = {**change, "content": "hello again"}
    call(alices, "POST /api/message/edit", edit)
    call(bobs, "POST /api/message/edit", edit, expect=403)
    call(alices, "POST /api/message/edit", {**edit, "msgId": 10**9}, expect=404)

    listed = call(alices, "POST /api/message/chat/list", {"uid": alice.pk})
    assert listed[0]["unread"] == 1
    call(alices, "POST /api/message/chat/list", {"uid": bob.pk}, expect=403)
    edited = call(bobs, "POST /api/message/history", {"gid": group.pk})[0]["msg"]
    assert edited["editTime"] is not None
    assert edited["reactions"] == [{"emoji": "👍", "count": 1, "mine": True}]
    call(carols, "POST /api/message/history", {"gid": group.pk}, expect=403)
    call(alices, "POST /api/message/history", {}, expect=400)
    call(alices, "POST /api/message/group/read", {"gid": group.pk, "uid": alice.pk})

    call(alices, "POST /api/message/recall", change)
    call(carols, "POST /api/message/recall", change, expect=403)
    call(alices, "POST /api/message/edit", edit, expect=409)
    call(bobs, "POST /api/message/react", {**change, "emoji": "🎉"}, expect=409)
    recalled = call(bobs, "POST /api/message/history", {"gid": group.pk})[0]["msg"]
    assert recalled["recalled"] is True

    present = call(alices, "GET /api/user/presence", {"uids": f"{bob.pk},{carol.pk}"})
    assert [entry["uid"] for entry in present] == [bob.pk]  # carol shares no group
    call(alices, "GET /api/user/presence", {"uids": "x"}, expect=400)


def test_a_reply_is_described(alice, bob, client_for, described):
    group = group_of(alice, bob)
    first = send(alice, group)
    send_message(
        sender_id=bob.pk,
        gid=group.pk,
        kind="Text",
        content="re",
        client_msg_id="reply-1",
        reply_to=first.pk,
    )
    history = described.call(client_for(alice), "POST /api/message/history", {"gid": group.pk})
    assert history[1]["msg"]["replyTo"] == first.pk


def upload(client, data: bytes, name: str, content_type: str):
    body, multipart_type = multipart([("file", name, data, content_type)])
    return client.post(UPLOAD, data=body, content_type=multipart_type)


def test_file_answers_match(file_storage, alice, client_for, described, settings):
    check = described.check
    alices = client_for(alice)
    file = check(upload(alices, image_bytes(), "red.png", "image/png"), "POST /api/file/upload")
    page = upload(alices, b"<html></html>", "page.html", "text/html")
    check(page, "POST /api/file/upload", expect=415)
    settings.RIM_UPLOAD_QUOTA = 1
    full = upload(alices, image_bytes(), "red.png", "image/png")
    check(full, "POST /api/file/upload", expect=409)

    # The bytes from a directory, a redirect to a presigned URL from object storage.
    expect = 302 if file_storage.name == "s3" else 200
    check(alices.get(file["url"]), "GET /api/file/{key}", expect=expect)
    check(alices.get(file["thumbUrl"]), "GET /api/file/{key}/thumb", expect=expect)
    check(alices.get("/api/file/nothing-here"), "GET /api/file/{key}", expect=404)
    info = check(alices.get(file["url"] + "/info"), "GET /api/file/{key}/info")
    assert info == file
    check(alices.get("/api/file/nothing-here/info"), "GET /api/file/{key}/info", expect=404)


def test_the_description_ignores_a_stale_token_and_refuses_in_the_envelope(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer 00000000-0000-0000-0000-000000000000")
    assert api_client.get("/api/schema/").status_code == 200
    assert api_client.get("/api/docs/").status_code == 200
    refused = api_client.post("/api/schema/")
    assert refused.status_code == 405
    assert json.loads(refused.content)["code"] == 405


# The page


class Assets(HTMLParser):
    """The URLs a page loads (scripts, style sheets, icons, images) and whether it has
    inline scripts or styles."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self.policy = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"script", "img"} and attrs.get("src"):
            self.urls.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag in {"script", "style"}:
            self.inline.append(tag)
        elif tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy":
            self.policy = attrs["content"]
        if "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(f"{tag} attribute")


def test_the_page_loads_everything_from_rim_itself(api_client):
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = Assets()
    page.feed(response.content.decode())
    assert len(page.urls) >= 5, page.urls  # icon, style sheet, two bundles, its script
    assert not page.inline, page.inline
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        asset = api_client.get(url)
        assert asset.status_code == 200, url
        if url.startswith("/api/docs/"):
            script = asset.content.decode()
            assert asset["Content-Type"] == "application/javascript"
            assert 'url: "/api/schema/"' in script
    # The same policy as the web client's page: nothing from elsewhere, nothing inline.
    directives = dict(part.strip().split(" ", 1) for part in page.policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"


def test_every_file_the_style_sheet_names_is_inline_data(api_client):
    page = Assets()
    page.feed(api_client.get("/api/docs/").content.decode())
    (sheet,) = [url for url in page.urls if url.endswith(".css")]
    style = b"".join(api_client.get(sheet).streaming_content).decode()
    named = re.findall(r"url\(\s*['\"]?([^'\")]+)", style)
    assert named
    assert all(url.startswith("data:") for url in named), named


def test_the_members_of_a_group_are_described_with_their_role(spec):
    members = spec["paths"]["/api/group/user/get"]["get"]
    listed = json_answer(spec, members, "200")["properties"]["data"]
    member = resolve(spec, listed["items"])
    assert resolve(spec, member["properties"]["role"])["enum"] == [
        Membership.MEMBER,
        Membership.ADMIN,
    ]
