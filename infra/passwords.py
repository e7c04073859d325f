"""Password hashing on one low-priority thread per process, with a bounded queue.

A login or a registration costs one PBKDF2 hash, a fraction of a second of CPU by
design. Django runs every HTTP request on a thread of its own, so a storm of logins
became as many hashing threads, and the event loop thread that serves every WebSocket
of the process got its share of the cores: acks slowed from about 1 ms to 90 ms and
more. Here every hash of the process runs on one thread at the lowest scheduling
priority (Linux: nice 19 for that thread alone), one after the other. hashlib releases
the GIL while it hashes, so the event loop keeps its core and the hashes use what the
loop leaves. At most RIM_PASSWORD_QUEUE hashes wait or run; beyond that the request
is refused at once (ServerBusy: 503 with Retry-After) instead of queueing for ever.
"""

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth import hashers

from infra.errors import ServerBusy

log = logging.getLogger("rim.passwords")

LOWEST_PRIORITY = 19
# Seconds a refused client is told to wait: a queue of hashes drains in a few seconds.
RETRY_AFTER = 2
BUSY = "the server is busy checking passwords: try again in a moment"


def lower_this_threads_priority() -> None:
    """Nice 19 for the calling thread only (Linux schedules threads one by one; on
    other systems the thread id is no process id, so nothing is changed there)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError as exc:
        log.warning("event=password_thread_priority_unchanged error=%s", exc)


class PasswordThread:
    """One worker thread and a count of the hashes given to it."""

    def __init__(self):
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="rim-passwords",
            initializer=lower_this_threads_priority,
        )
        self._lock = threading.Lock()
        self._pending = 0

    def run(self, function, *args):
        """function(*args) on the password thread; the caller waits for its result.
        ServerBusy when RIM_PASSWORD_QUEUE hashes are already waiting or running."""
        with self._lock:
            if self._pending >= settings.RIM_PASSWORD_QUEUE:
                raise ServerBusy(BUSY, retry_after=RETRY_AFTER)
            self._pending += 1
        try:
            future = self._executor.submit(self._counted, function, *args)
        except BaseException:
            self._done()
            raise
        return future.result()

    def _counted(self, function, *args):
        # Counted off before the caller wakes up, so that its next call finds room.
        try:
            return function(*args)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1


password_thread = PasswordThread()


class PBKDF2PasswordHasher(hashers.PBKDF2PasswordHasher):
    """Django's default hasher (same algorithm name, so stored hashes keep working),
    hashing on the password thread. Checking a password hashes too (verify, and the
    dummy hash for an unknown account, both call encode)."""

    def encode(self, password, salt, iterations=None):
        return password_thread.run(super().encode, password, salt, iterations)
