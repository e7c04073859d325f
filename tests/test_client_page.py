"""The web client's page carries what the client needs of the server: the recall and
edit windows, and the server's clock in its own time zone."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest


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
