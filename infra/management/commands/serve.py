"""`manage.py serve`: one daphne process on rim's ports, with limits from settings.

It refuses to listen beyond loopback with the laptop defaults (DEBUG on, or the
development secret key): those must not travel to a public port by accident.
"""

import logging

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from infra import monitoring
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
        refuse_unsafe_public_host(host)
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


def refuse_unsafe_public_host(host: str) -> None:
    """CommandError when `host` is not loopback and the settings are the development
    ones, unless RIM_ALLOW_UNSAFE_PUBLIC says that this is meant."""
    if is_loopback(host) or settings.RIM_ALLOW_UNSAFE_PUBLIC:
        return
    unsafe = []
    if settings.DEBUG:
        unsafe.append("RIM_DEBUG is on (error pages show code and settings)")
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        unsafe.append("RIM_SECRET_KEY is the development key (anyone can sign as this server)")
    if unsafe:
        raise CommandError(
            f"refusing to serve on RIM_HOST={host}, which is not a loopback address, "
            f"because {' and '.join(unsafe)}. Set RIM_DEBUG=0 and RIM_SECRET_KEY to a "
            "secret of your own, or RIM_ALLOW_UNSAFE_PUBLIC=1 to serve like this anyway."
        )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; any other name or address may face a network."""
    return host.lower() == "localhost" or monitoring.is_loopback(host.strip("[]"))
