"""The web client's page carries what the client needs of the server: the recall and
edit windows, the server's clock in its own time zone, the upload limit and where file
URLs start."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.files_helpers import uploaded


@pytest.mark.django_db
def test_the_page_carries_the_change_windows_and_the_servers_clock(client, settings):
    settings.RIM_RECALL_WINDOW = 7.5
    settings.RIM_EDIT_WINDOW = 900.0
    settings.TIME_ZONE = "Asia/Tokyo"
    before = datetime.now(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)

    page = client.get("/").content.decode()

    body = re.search(r"<body [^>]*>", page).group(0)
    assert 'data-recall-window="7.5"' in body
    assert 'data-edit-window="900"' in body
    shown = re.search(r'data-server-time="([^"]+)"', body).group(1)
    at = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S.%f")
    assert before - timedelta(seconds=1) <= at <= before + timedelta(seconds=5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("public_url", "prefix"),
    [("", "/api/file/"), ("https://chat.example.com", "https://chat.example.com/api/file/")],
)
def test_the_page_carries_the_upload_limit_and_where_file_urls_start(
    client, alice_client, upload_sandbox, settings, public_url, prefix
):
    settings.RIM_UPLOAD_MAX = 123456
    settings.RIM_PUBLIC_URL = public_url

    body = re.search(r"<body [^>]*>", client.get("/").content.decode()).group(0)

    assert 'data-upload-max="123456"' in body
    assert f'data-file-url-prefix="{prefix}"' in body
    assert uploaded(alice_client, b"some notes", "notes.txt")["url"].startswith(prefix)
