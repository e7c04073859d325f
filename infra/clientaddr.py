"""The address a request or connection comes from, for per-address limits.

The peer's own address, unless that peer is a proxy named in RIM_TRUSTED_PROXIES: then
the nearest address in X-Forwarded-For that is not one of those proxies (a client can
write anything into the header, but only the part that the trusted proxies appended
is theirs to vouch for).
"""

from django.conf import settings


def client_address(scope: dict) -> str:
    """From an ASGI scope (WebSocket or HTTP)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if peer not in settings.RIM_TRUSTED_PROXIES:
        return peer
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            return nearest_untrusted(peer, value.decode("latin-1"))
    return peer


def request_address(request) -> str:
    """From a Django request."""
    peer = request.META.get("REMOTE_ADDR") or "unknown"
    if peer not in settings.RIM_TRUSTED_PROXIES:
        return peer
    return nearest_untrusted(peer, request.META.get("HTTP_X_FORWARDED_FOR", ""))


def nearest_untrusted(peer: str, forwarded_for: str) -> str:
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in settings.RIM_TRUSTED_PROXIES:
            return hop
    return hops[0] if hops else peer
