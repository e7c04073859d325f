"""Settings for rim, read from the environment.

Every value has a default that runs on a bare machine (SQLite file, in-memory channel
layer, development secret). Production sets DATABASE_URL, REDIS_URL, RIM_SECRET_KEY,
RIM_DEBUG=0 and RIM_ALLOWED_HOSTS; a non-debug run with the development key refuses
to start.
"""

import os
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


RATE = re.compile(r"^[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate ("20/min"); "0" or "off" switches the throttle off (None)."""
    raw = os.environ.get(name, default).strip().lower()
    if raw in {"0", "off"}:
        return None
    if not RATE.match(raw):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 20/min (per s, min, hour or day) or 0, got {raw!r}"
        )
    return raw


DEVELOPMENT_SECRET_KEY = "rim-development-secret-key-do-not-use-in-production"

DEBUG = env_bool("RIM_DEBUG", True)
# `manage.py serve` refuses a non-loopback RIM_HOST with DEBUG on or the development
# key unless this is set: defaults made for a laptop must not travel to a public port.
RIM_ALLOW_UNSAFE_PUBLIC = env_bool("RIM_ALLOW_UNSAFE_PUBLIC", False)
SECRET_KEY = env_str("RIM_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "RIM_SECRET_KEY must be set when RIM_DEBUG is off: refusing to run production "
        "with the development secret key."
    )

ALLOWED_HOSTS = env_list("RIM_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
# Browser origins allowed to open a WebSocket besides ALLOWED_HOSTS (e.g. rim's React
# client served from another port: "http://localhost:3000").
RIM_ALLOWED_ORIGINS = env_list("RIM_ALLOWED_ORIGINS", [])
CSRF_TRUSTED_ORIGINS = env_list("RIM_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "infra",
    "accounts",
    "files",
    "chat",
]

MIDDLEWARE = [
    # First: probes and scrapers call the process by its address, which
    # ALLOWED_HOSTS does not list, and over plain HTTP (infra.monitoring).
    "infra.monitoring.MonitoringEndpoints",
    "infra.monitoring.CountRestRequests",
    # Outside Django's own: it sees every answer under /api/, also those they build.
    "infra.api.api_envelope_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rimsite.urls"
ASGI_APPLICATION = "rimsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """A DATABASES entry for `url`, tuned for an async server.

    SQLite: WAL journal and IMMEDIATE transactions, so concurrent writers queue on the
    busy timeout instead of failing with "database is locked" on lock upgrade.
    PostgreSQL: a bounded pool of connections per process (psycopg's pool), shared by
    the WebSocket side's database workers (each holds one) and the REST requests
    (each borrows one for its duration). Under ASGI every request runs on a thread of
    its own, and persistent per-thread connections (CONN_MAX_AGE) pile up without
    bound (Django ticket #33497); with the pool nothing opens a connection outside it.
    """
    if url.startswith(("postgres://", "postgresql://")):
        config = dj_database_url.parse(url, conn_max_age=0)
        config["OPTIONS"] = {
            "pool": {
                "min_size": env_int("RIM_DB_POOL_MIN", 2),
                "max_size": env_int("RIM_DB_POOL_MAX", 16),
                # Seconds a request waits for a free connection before it is refused
                # (503 in the REST envelope, server_error on the WebSocket).
                "timeout": env_float("RIM_DB_POOL_TIMEOUT", 10.0),
            }
        }
        # The pool checks a connection before lending it (one empty round trip): after
        # PostgreSQL restarts, the connections it holds are dead, and the first use of
        # each would fail its request or event.
        config["CONN_HEALTH_CHECKS"] = True
        config["TEST"] = {"NAME": f"test_rim_{os.getpid()}"}
        return config
    config = dj_database_url.parse(url, conn_max_age=env_int("RIM_CONN_MAX_AGE", 600))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("RIM_SQLITE_TIMEOUT", 20),
            # NORMAL in WAL mode is durable against a killed process (the promise of
            # "durable before ack"); FULL also survives power loss, at an fsync per commit.
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                f"PRAGMA synchronous={env_str('RIM_SQLITE_SYNCHRONOUS', 'NORMAL')};"
            ),
        }
        # A file (not Django's shared in-memory database) so that tests with threads
        # exercise the real locking; one per test process so that runs never collide.
        config["TEST"] = {
            "NAME": str(Path(tempfile.gettempdir()) / f"rim-test-{os.getpid()}.sqlite3")
        }
    return config


DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))
}
# Database workers of the WebSocket side (infra.dbworkers): each holds a connection and
# runs one transaction at a time. SQLite has a single writer anyway.
_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# PostgreSQL: 12, so that a dozen groups commit at once (their flushes grouped); each
# holds one of the pool's connections.
RIM_DB_WORKERS = env_int("RIM_DB_WORKERS", 1 if _SQLITE else 12)
_POOL_MAX = None if _SQLITE else DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
if _POOL_MAX is not None and _POOL_MAX <= RIM_DB_WORKERS:
    raise ImproperlyConfigured(
        "RIM_DB_POOL_MAX must be above RIM_DB_WORKERS: each worker holds a connection, "
        "and REST requests need the rest."
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Django's default hashers unless set; tests and benchmarks use a fast one so that
# setting up hundreds of users does not dominate them. Never weaken it in production.
# The default hashes on the process's password thread (infra.passwords), so that a
# storm of logins cannot take the event loop's CPU; the others only verify old hashes.
PASSWORD_HASHERS = env_list("RIM_PASSWORD_HASHERS", []) or [
    "infra.passwords.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Password hashes one process may have waiting or running on its password thread;
# a login or registration beyond that is answered 503 at once.
RIM_PASSWORD_QUEUE = env_int("RIM_PASSWORD_QUEUE", 16)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REDIS_URL = os.environ.get("REDIS_URL", "")
# Seconds any one channel-layer operation may take before it is given up (a hung Redis
# delays live pushes, never acks), and how many published events may wait for the
# layer before the oldest are dropped (connections repair them from the database).
RIM_LAYER_TIMEOUT = env_float("RIM_LAYER_TIMEOUT", 5.0)
RIM_PUBLISH_BUFFER = env_int("RIM_PUBLISH_BUFFER", 10_000)
# Pending pushes one connection may have queued before the layer drops (gap repair
# then fills the hole from the database), and how long layer group membership lives.
# daphne closes every WebSocket after a day (--websocket_timeout), well inside this.
RIM_LAYER_CAPACITY = env_int("RIM_LAYER_CAPACITY", 1000)
RIM_LAYER_GROUP_EXPIRY = env_int("RIM_LAYER_GROUP_EXPIRY", 2 * 86400)
# pubsub: measured 3-6x the pushes/s of core on the same machine, and it scales with
# processes (benchmarks/SCALEOUT.md); core is kept for deployments that want its
# per-channel capacity and Redis-side group expiry.
RIM_CHANNEL_LAYER = env_str("RIM_CHANNEL_LAYER", "pubsub")
# Key/channel prefix in Redis: separate deployments (or test runs) sharing one Redis.
RIM_LAYER_PREFIX = env_str("RIM_LAYER_PREFIX", "rim")
if _test_worker := os.environ.get("PYTEST_XDIST_WORKER"):
    # The processes of one parallel test run have their own databases but the same
    # ids in them: on one prefix, one's pushes would reach another's connections.
    RIM_LAYER_PREFIX = f"{RIM_LAYER_PREFIX}-{_test_worker}"
if REDIS_URL:
    from redis.exceptions import ConnectionError as RedisConnectionError

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": {
                "core": "infra.layers.RetryingRedisChannelLayer",
                "pubsub": "infra.layers.RimPubSubLayer",
            }[RIM_CHANNEL_LAYER],
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # Retry a command once on a fresh connection: after Redis
                        # restarts, every pooled connection is dead and would otherwise
                        # fail its next command.
                        "retry_on_error": [RedisConnectionError],
                        # redis-py 8 reads with a 5 s socket timeout by default, exactly
                        # the core layer's BZPOPMIN timeout: an idle receive then raised
                        # TimeoutError and closed the WebSocket (1011). Stay above it.
                        "socket_timeout": 15,
                    }
                ],
                "prefix": RIM_LAYER_PREFIX,
            },
        }
    }
    CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] = RIM_LAYER_CAPACITY
    if RIM_CHANNEL_LAYER == "core":
        CHANNEL_LAYERS["default"]["CONFIG"].update(group_expiry=RIM_LAYER_GROUP_EXPIRY, expiry=60)
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "infra.layers.ProcessChannelLayer",
            "CONFIG": {
                "capacity": RIM_LAYER_CAPACITY,
                "group_expiry": RIM_LAYER_GROUP_EXPIRY,
            },
        }
    }

# The cache holds the REST throttles' state (infra.throttling, accounts.lockout): in
# Redis when there is one, so that every process counts the same requests; in process
# memory otherwise (one process). A short socket timeout: a hung Redis must not hang
# logins (throttles then let requests through, see infra.throttling).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{RIM_LAYER_PREFIX}:cache",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # Above Django's 300, which would forget throttled addresses under attack.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "infra.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # No OPTIONS metadata: DRF would answer it outside the envelope. OPTIONS is a 405.
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_SCHEMA_CLASS": "infra.openapi.RimAutoSchema",
}

# The OpenAPI description at /api/schema/ and its page at /api/docs/ (infra.openapi).
SPECTACULAR_SETTINGS = {
    "TITLE": "rim",
    "VERSION": "2",
    "DESCRIPTION": (
        "rim's REST API. The wire contract, the WebSocket protocol included, is "
        "docs/protocol.md in rim's repository; this description follows it.\n\n"
        'Every answer is the envelope `{"ok", "code", "msg", "data"}` with `code` '
        "the HTTP status: `data` is the payload on success; on a refusal `ok` is false, "
        "`msg` says why and `data` is null. That holds under `/api/` also for routes that "
        "do not exist (404) and for unexpected failures (500, logged). Only two routes "
        "answer something else: this description (`/api/schema/`, JSON) and its page "
        "(`/api/docs/`, HTML); and a file's download answers the file itself.\n\n"
        "Every route but `user/create`, `user/login` and the downloads needs "
        "`Authorization: Bearer <token>` (a token from `user/login`). Ids are JSON "
        "numbers; times are strings `YYYY-MM-DD HH:MM:SS` in the server's time zone."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    # Public, and blind to any Authorization header (a stale one must not hide it).
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/",
    # In the URL conf's order (users, friends, groups, messages, files), not by path.
    "SORT_OPERATIONS": False,
    "ENUM_NAME_OVERRIDES": {"FriendAnswerEnum": "accounts.serializers.FriendAnswerInput.ANSWERS"},
    # The page's scripts and styles come from drf-spectacular-sidecar, served by rim.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Requests per client address (infra.clientaddr) to the costly open routes, and to
# the search routes, which would otherwise enumerate accounts.
RIM_THROTTLE_RATES = {
    "login": env_rate("RIM_THROTTLE_LOGIN", "20/min"),
    "register": env_rate("RIM_THROTTLE_REGISTER", "20/hour"),
    "search": env_rate("RIM_THROTTLE_SEARCH", "60/min"),
}
# Failed logins in a row after which an account is locked, for how many seconds the
# first time (each further failure doubles it), and the longest lock.
RIM_LOGIN_FAILURES = env_int("RIM_LOGIN_FAILURES", 5)
RIM_LOGIN_LOCKOUT = env_int("RIM_LOGIN_LOCKOUT", 30)
RIM_LOGIN_LOCKOUT_MAX = env_int("RIM_LOGIN_LOCKOUT_MAX", 900)

# rim's protocol limits (docs/protocol.md).
RIM_TOKEN_TTL = env_int("RIM_TOKEN_TTL", 86400)
RIM_MAX_CONTENT = env_int("RIM_MAX_CONTENT", 65536)
RIM_MAX_FRAME = env_int("RIM_MAX_FRAME", 4 * RIM_MAX_CONTENT)
# The largest request body parsed (an upload's file parts aside); a larger REST body
# is answered 413 before it is read. Room for a content at its limit even if JSON
# escapes every byte of it (6 bytes each).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("RIM_MAX_BODY", max(2**20, 8 * RIM_MAX_CONTENT))
RIM_IDLE_TIMEOUT = env_float("RIM_IDLE_TIMEOUT", 120.0)
RIM_SYNC_LIMIT = env_int("RIM_SYNC_LIMIT", 100)
RIM_RATE_LIMIT = env_float("RIM_RATE_LIMIT", 50.0)
RIM_RATE_BURST = env_int("RIM_RATE_BURST", 100)
RIM_PAGE_SIZE_MAX = env_int("RIM_PAGE_SIZE_MAX", 100)
# Seconds between two tail checks of a logged-in connection (on its Heart): its session
# is re-validated and what the layer lost at a group's tail is repaired.
RIM_TAIL_CHECK_INTERVAL = env_float("RIM_TAIL_CHECK_INTERVAL", 30.0)
# Seconds a connection may stay open without a successful Login.
RIM_LOGIN_TIMEOUT = env_float("RIM_LOGIN_TIMEOUT", 30.0)
# WebSocket connections one client address may hold open in one process (0: no cap).
RIM_MAX_CONNECTIONS_PER_IP = env_int("RIM_MAX_CONNECTIONS_PER_IP", 50)
# Proxies whose X-Forwarded-For is believed (their own addresses), e.g. "127.0.0.1".
RIM_TRUSTED_PROXIES = frozenset(env_list("RIM_TRUSTED_PROXIES", []))
# /metrics answers loopback clients, and others that send this as a Bearer token
# (unset: nobody else). Long enough that guessing it over the network is hopeless.
RIM_METRICS_TOKEN = env_str("RIM_METRICS_TOKEN", "")
_METRICS_TOKEN_MIN_LENGTH = 16
if RIM_METRICS_TOKEN and len(RIM_METRICS_TOKEN) < _METRICS_TOKEN_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"RIM_METRICS_TOKEN must be at least {_METRICS_TOKEN_MIN_LENGTH} characters long"
    )
# Seconds /readyz waits for the database and for Redis (keep it below the probe's own
# timeout).
RIM_READY_TIMEOUT = env_float("RIM_READY_TIMEOUT", 2.0)
# v2 conversation rules (PROTOCOL.md §6): seconds after sending that a sender may recall
# or edit, and seconds without a connection before a user is shown offline.
RIM_RECALL_WINDOW = env_float("RIM_RECALL_WINDOW", 120.0)
RIM_EDIT_WINDOW = env_float("RIM_EDIT_WINDOW", 900.0)
RIM_PRESENCE_GRACE = env_float("RIM_PRESENCE_GRACE", 30.0)
# Message search (chat/services/search.py) ranks the newest RIM_SEARCH_DEPTH matches of a
# query, and reads the newest RIM_SEARCH_SCAN messages of the caller's groups when they
# hold no more (or the query's words are too short for the index): a query's work stays
# bounded however common its words are.
RIM_SEARCH_DEPTH = env_int("RIM_SEARCH_DEPTH", 200)
RIM_SEARCH_SCAN = env_int("RIM_SEARCH_SCAN", 10000)
# SQLite: seconds between two batches of new messages added to the search index (a
# search first adds those not indexed yet itself).
RIM_SEARCH_INDEX_INTERVAL = env_float("RIM_SEARCH_INDEX_INTERVAL", 1.0)

# rim's server (manage.py serve): bytes a WebSocket may have waiting to be sent before it
# is closed with 4004 (a client that does not read), seconds it then has to read them
# before it is cut off, and seconds a SIGTERM may take to finish what is in flight.
RIM_WS_BACKLOG_MAX = env_int("RIM_WS_BACKLOG_MAX", 4 * 1024 * 1024)
RIM_WS_BACKLOG_GRACE = env_float("RIM_WS_BACKLOG_GRACE", 10.0)
RIM_SHUTDOWN_TIMEOUT = env_float("RIM_SHUTDOWN_TIMEOUT", 10.0)

# Uploaded files (the files app, PROTOCOL.md §6.3). Bytes of one upload, bytes one user
# may have stored in all, uploads per user and period (DRF's rate syntax, "" for none),
# and pixels of an image (over all its frames): beyond that it is refused as a bomb.
RIM_UPLOAD_MAX = env_int("RIM_UPLOAD_MAX", 10 * 1024 * 1024)
RIM_UPLOAD_QUOTA = env_int("RIM_UPLOAD_QUOTA", 1024 * 1024 * 1024)
RIM_UPLOAD_RATE = env_str("RIM_UPLOAD_RATE", "30/min") or None
RIM_IMAGE_MAX_PIXELS = env_int("RIM_IMAGE_MAX_PIXELS", 50_000_000)
# Room in an upload's body beyond the file: multipart boundaries and part headers.
RIM_MULTIPART_ALLOWANCE = 64 * 1024
# The largest HTTP request body `manage.py serve` takes at all: a longer one is refused
# (413) before it is read, since daphne would otherwise buffer it whole first.
RIM_MAX_REQUEST_BODY = env_int(
    "RIM_MAX_REQUEST_BODY",
    max(RIM_UPLOAD_MAX + RIM_MULTIPART_ALLOWANCE, DATA_UPLOAD_MAX_MEMORY_SIZE),
)
# The server's public origin ("https://chat.example.com"): file URLs are absolute on it.
# Unset, they are paths ("/api/file/<key>"), for clients served by this server.
RIM_PUBLIC_URL = env_str("RIM_PUBLIC_URL", "").rstrip("/")
# Where files are stored: a directory (the embedded default), or an S3-compatible
# bucket when RIM_S3_BUCKET is set (several hosts). Downloads from S3 are redirects to
# URLs signed for RIM_S3_URL_EXPIRE seconds.
RIM_MEDIA_ROOT = Path(env_str("RIM_MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
RIM_S3_BUCKET = env_str("RIM_S3_BUCKET", "")
RIM_S3_URL_EXPIRE = env_int("RIM_S3_URL_EXPIRE", 300)


def upload_storage() -> dict:
    """The STORAGES entry where uploads go."""
    if not RIM_S3_BUCKET:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": RIM_MEDIA_ROOT,
                "file_permissions_mode": 0o600,
                "directory_permissions_mode": 0o700,
            },
        }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": RIM_S3_BUCKET,
            "endpoint_url": env_str("RIM_S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("RIM_S3_ACCESS_KEY", "") or None,
            "secret_key": env_str("RIM_S3_SECRET_KEY", "") or None,
            "region_name": env_str("RIM_S3_REGION", "") or None,
            # "path" for most self-hosted S3 servers (MinIO, Ceph); default: boto's choice.
            "addressing_style": env_str("RIM_S3_ADDRESSING_STYLE", "") or None,
            "signature_version": "s3v4",
            "querystring_auth": True,
            "querystring_expire": RIM_S3_URL_EXPIRE,
            "file_overwrite": False,
            "default_acl": None,
        },
    }


STORAGES = {
    "default": upload_storage(),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Where `manage.py serve` listens: the main port and rim's hard-coded WebSocket port.
RIM_HOST = env_str("RIM_HOST", "127.0.0.1")
RIM_PORT = env_int("RIM_PORT", 8000)
RIM_COMPAT_PORT = env_int("RIM_COMPAT_PORT", 3012)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("RIM_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only for `collectstatic`; WhiteNoise serves straight from STATICFILES_DIRS otherwise.
STATIC_ROOT = os.environ.get("RIM_STATIC_ROOT") or None
# Serve straight from STATICFILES_DIRS: no collectstatic step before `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

if not DEBUG:
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("RIM_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("RIM_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("RIM_SSL_REDIRECT", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("RIM_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("RIM_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("RIM_HSTS_PRELOAD", False)

# plain: one readable line per record; json: one JSON object per line, for a log
# collector (infra.logformat).
RIM_LOG_FORMAT = env_str("RIM_LOG_FORMAT", "plain")
if RIM_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"RIM_LOG_FORMAT must be plain or json, got {RIM_LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "infra.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": RIM_LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Replaces Django's own console handler, which would print every line twice.
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "rim": {"level": env_str("RIM_LOG_LEVEL", "INFO"), "propagate": True},
    },
}
