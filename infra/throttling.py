"""Requests per client address to the REST routes that are costly or that enumerate.

A view names its `throttle_scope` ("login", "register", "search") and lists
AddressRateThrottle in `throttle_classes`; the scope's rate is RIM_THROTTLE_RATES
(from the environment, None: no limit). Counts are kept per client address as
infra.clientaddr tells it (X-Forwarded-For only from RIM_TRUSTED_PROXIES), in Django's
cache: Redis when configured, so every process counts the same requests. An answer
over the rate is DRF's Throttled, which infra.api turns into the envelope's 429 with
Retry-After.

When the cache cannot be reached (Redis down), requests are let through and a warning
is logged: a Redis outage must not lock every user out of logging in.
"""

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

from infra.clientaddr import request_address

log = logging.getLogger("rim.throttling")

# What a cache call raises when its Redis is down or hung.
CACHE_UNAVAILABLE = (RedisError, OSError)


class AddressRateThrottle(ScopedRateThrottle):
    def get_rate(self):
        return settings.RIM_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request_address(request)}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_UNAVAILABLE as exc:
            log.warning("event=throttle_unavailable scope=%s error=%r", self.scope, exc)
            return True
