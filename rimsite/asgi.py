"""One ASGI application for HTTP (REST, admin, web client) and WebSocket (rim's
protocol at /ws and /), served by daphne on every configured port."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rimsite.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Browsers must come from an allowed host or origin (no cross-site WebSockets);
    clients that send no Origin at all (rim's native clients, load generators) are not
    browsers and authenticate with their token like any other."""

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def websocket_application():
    allowed = [*settings.ALLOWED_HOSTS, *settings.RIM_ALLOWED_ORIGINS]
    return BrowserOriginValidator(URLRouter(websocket_urlpatterns), allowed)


application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application()})
