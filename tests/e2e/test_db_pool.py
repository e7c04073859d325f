"""PostgreSQL connections stay within the configured pool, whatever the load.

Under ASGI every REST request runs on a thread of its own, and persistent per-thread
connections piled up without bound (93 of PostgreSQL's 100 after 200 requests). With
the pool, the database workers of the WebSocket side and the REST requests share
RIM_DB_POOL_MAX connections per process.
"""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.e2e.conftest import (
    connected,
    create_group,
    in_thread,
    new_user,
    production_server,
)
from tests.live import POSTGRES_ADMIN_URL, api

pytestmark = [pytest.mark.e2e, pytest.mark.services]

POOL_MAX = 6
WORKERS = 2


@pytest.fixture
def pooled_server(tmp_path):
    with production_server(
        tmp_path, RIM_DB_POOL_MAX=str(POOL_MAX), RIM_DB_WORKERS=str(WORKERS)
    ) as server_and_database:
        yield server_and_database


class ConnectionWatch:
    """Samples how many server connections PostgreSQL has open to one database."""

    def __init__(self, database: str):
        self.database = database
        self.peak = 0
        self.samples = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            while not self.stopping.is_set():
                (count,) = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchone()
                self.peak = max(self.peak, count)
                self.samples += 1
                time.sleep(0.02)

    def __enter__(self) -> "ConnectionWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


async def test_1000_rest_requests_50_at_a_time_and_websocket_load_stay_within_the_pool(
    pooled_server,
):
    server, database = pooled_server
    base = server.http_url
    users = [await in_thread(new_user, base, f"p{n}") for n in range(6)]
    gid = await in_thread(create_group, base, users[0], users[1:])
    routes = [
        lambda u: api(base, f"user/get?uid={u.uid}", token=u.token),
        lambda u: api(base, "message/history", {"gid": gid, "page": 1, "size": 20}, u.token),
        lambda u: api(base, "message/chat/list", {"page": 1, "size": 20}, u.token),
        lambda u: api(base, f"group/user/get?gid={gid}", token=u.token),
    ]

    def one_request(n: int):
        return routes[n % len(routes)](users[n % len(users)])

    clients = [await connected(server.ws_url, user) for user in users[:3]]
    with ConnectionWatch(database) as watch:
        sending = asyncio.gather(
            *(send_many(client, gid, 40) for client in clients), return_exceptions=True
        )
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = await asyncio.to_thread(lambda: list(pool.map(one_request, range(1000))))
        acked = await sending
    for client in clients:
        await client.close()
    assert len(answers) == 1000
    for result in acked:
        assert not isinstance(result, BaseException), result
    assert sum(map(len, acked)) == 120
    assert watch.samples > 10
    assert 0 < watch.peak <= POOL_MAX, f"{watch.peak} connections, bound {POOL_MAX}"
    stored = await in_thread(
        lambda: api(base, "message/history", {"gid": gid, "page": 1, "size": 100}, users[0].token)
    )
    assert len(stored) == 100


async def send_many(client, gid: int, count: int) -> list[int]:
    return [(await client.send_msg(gid, f"m{n}"))["serverMsgId"] for n in range(count)]
