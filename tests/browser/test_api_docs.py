"""The API's page (/api/docs/) in Chromium, under its own Content-Security-Policy: every
request it makes goes to rim, nothing is blocked, and a route can be tried from it."""

import json
import urllib.request
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIDE

pytestmark = pytest.mark.browser

# Blocked loads and inline code show as console errors; none is expected.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) =>
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));
"""


@pytest.fixture
def docs(browser, server):
    """The page, opened without bypassing its policy; (page, requested URLs, problems)."""
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: problems.append(f"{error.name}: {error.message}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.add_init_script(REPORT_VIOLATIONS)
    page.goto(f"{server.http_url}/api/docs/")
    yield page, requested, problems
    context.close()


def operation_count(server) -> int:
    with urllib.request.urlopen(f"{server.http_url}/api/schema/", timeout=10) as answer:
        paths = json.load(answer)["paths"]
    return sum(len(item) for item in paths.values())


def test_the_page_shows_every_route_and_loads_only_from_rim(docs, server):
    page, requested, problems = docs
    expect(page.locator(".opblock")).to_have_count(operation_count(server))
    expect(page.locator(".info .title")).to_contain_text("rim")
    page.locator(".opblock-summary", has_text="/api/message/history").click()
    # Its answer's example: the envelope around messages with their v2 fields.
    expect(page.locator(".opblock.is-open")).to_contain_text('"replyTo"')
    origin = urlsplit(server.http_url).netloc
    assert {urlsplit(url).netloc for url in requested} == {origin}, requested
    assert any(url.endswith("/api/schema/") for url in requested)
    assert not problems, problems


def test_a_route_can_be_tried_from_the_page(docs):
    page, _, problems = docs
    create = page.locator(".opblock", has_text="/api/user/create")
    create.locator(".opblock-summary").click()
    create.get_by_role("button", name="Try it out").click()
    account = "docs-reader"
    body = {"name": "Reader", "account": account, "password": "secret-pw"}
    create.locator("textarea.body-param__text").fill(json.dumps(body))
    create.get_by_role("button", name="Execute").click()
    answer = create.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_have_text("200")
    expect(answer.locator(".response-col_description")).to_contain_text('"ok": true')
    assert not problems, problems
