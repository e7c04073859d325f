"""The OpenAPI description from a real `manage.py serve` process: the first requests
for it, arriving together, all get it (infra.openapi.OncePerProcess), and one process
answers it the same to every later request."""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import DaphneServer

pytestmark = pytest.mark.e2e

REQUESTS = 6


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def test_first_requests_at_once_all_get_the_description(tmp_path):
    with DaphneServer(tmp_path) as server:
        url = f"{server.http_url}/api/schema/"
        with ThreadPoolExecutor(REQUESTS) as pool:
            answers = list(pool.map(fetch, [url] * REQUESTS))
        later = fetch(url)
    assert {status for status, _ in answers} == {200}
    assert {body for _, body in answers} == {later[1]}
    assert "/api/message/history" in json.loads(later[1])["paths"]
