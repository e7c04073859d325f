"""WSGI entry point: REST, admin and the web client page without WebSockets (for a
WSGI server beside daphne, or tools that expect one). WebSockets need rimsite.asgi."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rimsite.settings")
application = get_wsgi_application()
