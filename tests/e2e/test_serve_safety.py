"""`manage.py serve` refuses to listen beyond loopback with the development defaults
(issue 11, item 8): DEBUG on, or the development secret key. The real command in a
subprocess: it exits non-zero with a message that says what to set, and starts with
RIM_ALLOW_UNSAFE_PUBLIC=1 or with RIM_DEBUG=0 and a secret key of one's own. The
servers that do start listen on 0.0.0.0 and are only ever spoken to on 127.0.0.1."""

import os
import subprocess
import sys

import pytest

from infra.management.commands.serve import is_loopback
from tests.e2e.conftest import server_pool
from tests.live import ROOT, api, free_port

pytestmark = pytest.mark.e2e

OWN_KEY = "a-secret-key-of-this-test-only-0123456789-abcdefghijklmnopqrstuvwxyz"


def serve(**env: str) -> subprocess.CompletedProcess:
    """`manage.py serve` as an operator would start it; it must exit by itself."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RIM_", "DJANGO_"))}
    environment.update(RIM_PORT=str(free_port()), RIM_COMPAT_PORT="0", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "chat.example.com"])
def test_debug_on_a_public_host_refuses_to_start(host):
    done = serve(RIM_HOST=host)
    assert done.returncode != 0
    assert f"refusing to serve on RIM_HOST={host}" in done.stderr
    assert "RIM_DEBUG is on" in done.stderr
    assert "RIM_SECRET_KEY is the development key" in done.stderr
    assert "RIM_ALLOW_UNSAFE_PUBLIC=1" in done.stderr


def test_debug_with_a_real_key_on_a_public_host_still_refuses():
    done = serve(RIM_HOST="0.0.0.0", RIM_SECRET_KEY=OWN_KEY)
    assert done.returncode != 0
    assert "RIM_DEBUG is on" in done.stderr
    assert "development key" not in done.stderr


def test_no_debug_with_the_development_key_refuses_anywhere():
    """settings.py already refuses this pair, on loopback too."""
    done = serve(RIM_HOST="0.0.0.0", RIM_DEBUG="0")
    assert done.returncode != 0
    assert "RIM_SECRET_KEY must be set when RIM_DEBUG is off" in done.stderr


@pytest.mark.parametrize(
    "public_env",
    [
        {"RIM_ALLOW_UNSAFE_PUBLIC": "1"},
        {"RIM_DEBUG": "0", "RIM_SECRET_KEY": OWN_KEY},
    ],
    ids=["opt-in", "production settings"],
)
def test_a_public_host_starts_when_meant_or_safe(tmp_path, public_env):
    with server_pool(tmp_path) as pool:
        server = pool.new("public", {"RIM_HOST": "0.0.0.0", **public_env}).start()
        assert api(
            server.http_url, "user/create", {"name": "P", "account": "p", "password": "pw-123"}
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_which_hosts_count_as_loopback(host, loopback):
    """Every other end-to-end test starts the development defaults on 127.0.0.1."""
    assert is_loopback(host) is loopback
