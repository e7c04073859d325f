"""Failed logins per account, with a lock that doubles after every further failure.

After RIM_LOGIN_FAILURES failed logins in a row, an account is locked for
RIM_LOGIN_LOCKOUT seconds; every failure after that locks it twice as long as the one
before, up to RIM_LOGIN_LOCKOUT_MAX. A successful login forgets the failures; a day
without one forgets them too. While locked, a login is refused (429, with the seconds
left) without its password being checked, so guessing costs the guesser time and the
server no CPU. The account name is counted as typed, whether or not it exists, so the
answers tell nothing about which accounts exist.

The counts live in Django's cache (Redis when configured: shared by every process).
The failure count is one atomic counter, so failures that arrive at once on several
processes are all counted. When the cache is unreachable, logins are neither counted
nor refused (a warning is logged), like the address throttles of infra.throttling.
"""

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from infra.errors import RateLimited
from infra.throttling import CACHE_UNAVAILABLE

log = logging.getLogger("rim.lockout")

# Seconds without a failure after which an account's failures are forgotten.
FAILURE_MEMORY = 86400


def clock() -> float:
    return time.time()


def _keys(account: str) -> tuple[str, str]:
    """(failure count, lock) cache keys; hashed: an account may hold any character."""
    digest = hashlib.sha256(account.encode()).hexdigest()
    return f"login-failures:{digest}", f"login-locked:{digest}"


def refuse_if_locked(account: str) -> None:
    """RateLimited (with retry_after) while `account` is locked."""
    try:
        until = cache.get(_keys(account)[1])
    except CACHE_UNAVAILABLE as exc:
        log.warning("event=lockout_unavailable error=%r", exc)
        return
    left = (until or 0) - clock()
    if left > 0:
        seconds = math.ceil(left)
        raise RateLimited(
            f"too many failed logins: this account is locked for {seconds} more seconds",
            retry_after=seconds,
        )


def login_failed(account: str) -> None:
    """Count a failure; from the RIM_LOGIN_FAILURES-th on, lock the account."""
    failures_key, lock_key = _keys(account)
    try:
        beyond = _count_failure(failures_key) - settings.RIM_LOGIN_FAILURES
        if beyond >= 0:
            seconds = lock_seconds(beyond)
            cache.set(lock_key, clock() + seconds, math.ceil(seconds))
    except CACHE_UNAVAILABLE as exc:
        log.warning("event=lockout_unavailable error=%r", exc)


def _count_failure(key: str) -> int:
    """The failure count after this one."""
    if cache.add(key, 1, FAILURE_MEMORY):
        return 1
    try:
        failures = cache.incr(key)
    except ValueError:  # it expired between add and incr: this failure starts anew
        cache.set(key, 1, FAILURE_MEMORY)
        return 1
    cache.touch(key, FAILURE_MEMORY)
    return failures


def lock_seconds(beyond: int) -> int:
    """The lock after the `beyond`-th failure past the allowed ones (0: the first)."""
    # Past 32 doublings any sane maximum is reached; the cap keeps the number small.
    return min(settings.RIM_LOGIN_LOCKOUT_MAX, settings.RIM_LOGIN_LOCKOUT * 2 ** min(beyond, 32))


def login_succeeded(account: str) -> None:
    try:
        cache.delete_many(_keys(account))
    except CACHE_UNAVAILABLE as exc:
        log.warning("event=lockout_unavailable error=%r", exc)
