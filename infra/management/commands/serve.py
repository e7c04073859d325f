"""`manage.py serve`: one daphne process on rim's ports, with limits from settings."""

import logging

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand

from infra.server import RimServer

log = logging.getLogger("rim.serve")

LISTEN_BACKLOG = 1024


class RimCommandLine(CommandLineInterface):
    server_class = RimServer


class Command(BaseCommand):
    help = "Serve HTTP and WebSocket with daphne on RIM_HOST:RIM_PORT and RIM_COMPAT_PORT."

    def add_arguments(self, parser):
        parser.add_argument("--verbosity-daphne", type=int, default=1)

    def handle(self, *args, **options):
        host = settings.RIM_HOST
        ports = [settings.RIM_PORT]
        if settings.RIM_COMPAT_PORT and settings.RIM_COMPAT_PORT != settings.RIM_PORT:
            ports.append(settings.RIM_COMPAT_PORT)
        endpoints = []
        for port in ports:
            # Twisted's default listen backlog (50) resets clients in a reconnect storm.
            endpoints += [
                "-e",
                f"tcp:port={port}:interface={_twisted_host(host)}:backlog={LISTEN_BACKLOG}",
            ]
        # A log record, not a print: with RIM_LOG_FORMAT=json every line is JSON.
        log.info("event=serving listen=%s", ",".join(f"{host}:{port}" for port in ports))
        RimCommandLine().run(
            [
                *endpoints,
                # A frame over the limit closes that socket with 1009, nothing else.
                "--websocket-max-message-size",
                str(settings.RIM_MAX_FRAME),
                "--websocket-max-frame-size",
                str(settings.RIM_MAX_FRAME),
                # The access log would print query strings (GET /api/user/token?token=).
                "--access-log",
                "/dev/null",
                "--verbosity",
                str(options["verbosity_daphne"]),
                "rimsite.asgi:application",
            ]
        )


def _twisted_host(host: str) -> str:
    # Twisted endpoint strings escape the colons of IPv6 addresses.
    return host.replace(":", r"\:")
