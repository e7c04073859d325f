"""`python -m tests.services`: exit 0 if PostgreSQL and Redis answer, else say which
does not (make test then skips that stack locally and fails in CI)."""

import sys

import psycopg
import redis

from tests.live import POSTGRES_ADMIN_URL, REDIS_URL


def unreachable() -> list[str]:
    problems = []
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL at {POSTGRES_ADMIN_URL}: {exc}".strip())
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {REDIS_URL}: {exc}")
    return problems


if __name__ == "__main__":
    problems = unreachable()
    for problem in problems:
        print(f"unreachable: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
