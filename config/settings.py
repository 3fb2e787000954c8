"""Relais settings: one file, driven by environment variables.

Embedded default (no server needed): SQLite in WAL mode and Celery on kombu's filesystem transport,
both under ``RELAIS_DATA_DIR``. Scale-out: set ``DATABASE_URL`` (postgres://...) and
``RELAIS_BROKER_URL`` (redis://...). See docs/operations.md.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("RELAIS_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use the operator's key, or create one per installation and keep it in the data folder."""
    if key := os.environ.get("RELAIS_SECRET_KEY"):
        return key
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_flag("RELAIS_DEBUG")
ALLOWED_HOSTS = os.environ.get("RELAIS_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    origin for origin in os.environ.get("RELAIS_CSRF_TRUSTED_ORIGINS", "").split(",") if origin
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "relais.core",
    "relais.accounts",
    "relais.connectors",
    "relais.pipeline",
    "relais.inbox",
    "relais.sandbox",
    "relais.listening",
    "relais.publishing",
    "relais.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "relais.accounts.context_processors.workspace",
            ],
        },
    },
]

SQLITE_PATH = DATA_DIR / "relais.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the write
    # lock up front so concurrent writers wait (busy timeout) instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

if os.environ.get("RELAIS_BEHIND_TLS_PROXY") == "1":
    # The proxy in front terminates HTTPS and says so; only set this when it always sets (or
    # strips) the header, else a client could claim https itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "root"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "relais" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
# Files are served from the finders until `collectstatic` fills this; WhiteNoise wants it to exist.
STATIC_ROOT.mkdir(exist_ok=True)
# Front-end libraries come from npm (package.json) and are served by the app itself: no CDN.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/htmx-ext-sse", NODE_MODULES / "htmx-ext-sse" / "dist"),
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie for its POSTs
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Celery. The filesystem transport keeps queues as folders of message files: no broker server,
# survives a restart, and several local processes can share it. Redis replaces it at scale.
CELERY_BROKER_URL = os.environ.get("RELAIS_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = DATA_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_queue_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
        # The transport polls its folder; the default 1 s caps a worker near one task a second.
        "polling_interval": 0.1,
    }
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("RELAIS_QUEUE", "relais")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-batch leaves the batch to be redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _env_flag("RELAIS_TASKS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

RELAIS: dict[str, Any] = {
    # How often the beat drives periodic work, in seconds.
    "SANDBOX_TICK_SECONDS": float(os.environ.get("RELAIS_SANDBOX_TICK_SECONDS", "2")),
    "PIPELINE_SWEEP_SECONDS": float(os.environ.get("RELAIS_PIPELINE_SWEEP_SECONDS", "10")),
    "PIPELINE_BATCH_SIZE": int(os.environ.get("RELAIS_PIPELINE_BATCH_SIZE", "500")),
    # How often Mastodon accounts and feeds are fetched (Bluesky streams; see connectors/).
    "POLL_SECONDS": float(os.environ.get("RELAIS_POLL_SECONDS", "60")),
    # A reply whose parent has not arrived after this long is routed on its own.
    "ORPHAN_GRACE_SECONDS": float(os.environ.get("RELAIS_ORPHAN_GRACE_SECONDS", "60")),
    # Webhooks and chat URLs may target private addresses (receivers on the deployment's own
    # network). Off by default: a workspace member could otherwise make the server call its
    # database or a cloud metadata service.
    "ALLOW_PRIVATE_DESTINATIONS": os.environ.get("RELAIS_ALLOW_PRIVATE_DESTINATIONS", "") == "1",
    # Meta's webhooks (/hooks/meta/): the app secret signs every event, the verify token is the
    # one typed in the app dashboard. Without the secret every event is refused.
    "FACEBOOK_APP_SECRET": os.environ.get("RELAIS_FACEBOOK_APP_SECRET", ""),
    "FACEBOOK_VERIFY_TOKEN": os.environ.get("RELAIS_FACEBOOK_VERIFY_TOKEN", ""),
    # Facebook Login: the deployment's Meta app (a workspace may type its own on the form), and
    # where Meta's Graph API and login dialog are (empty: Meta's own; the version from the
    # connector's default unless set).
    "FACEBOOK_APP_ID": os.environ.get("RELAIS_FACEBOOK_APP_ID", ""),
    "FACEBOOK_GRAPH_BASE": os.environ.get("RELAIS_FACEBOOK_GRAPH_BASE", ""),
    "FACEBOOK_GRAPH_VERSION": os.environ.get("RELAIS_FACEBOOK_GRAPH_VERSION", ""),
    "FACEBOOK_DIALOG_BASE": os.environ.get("RELAIS_FACEBOOK_DIALOG_BASE", ""),
    # The address the internet reaches this server at (https://relais.example.com): networks
    # that fetch a post's image themselves (Instagram) get it from a signed address under it.
    "PUBLIC_URL": os.environ.get("RELAIS_PUBLIC_URL", "").rstrip("/"),
    # Bluesky (atproto OAuth) client keys, served over https: JSON private JWKs (EC P-256), or
    # the path of a file holding them; the first signs new sessions. Empty: a public client.
    # See docs/connectors.md (Bluesky, client keys).
    "BLUESKY_CLIENT_KEYS": os.environ.get("RELAIS_BLUESKY_CLIENT_KEYS", ""),
    # The Mastodon API version Mastodon.py assumes (servers are never asked theirs; an
    # account's own `api_version` setting wins): x.y.z.
    "MASTODON_API_VERSION": os.environ.get("RELAIS_MASTODON_API_VERSION", "4.5.0"),
    # A workspace's X API spending per month, in US dollars, until an admin sets its own.
    "X_MONTHLY_BUDGET_USD": float(os.environ.get("RELAIS_X_MONTHLY_BUDGET_USD", "25")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("RELAIS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # These log each request's full URL at INFO or DEBUG; webhook and chat URLs carry tokens
        # in their path or credentials, so request lines are never logged.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "apprise": {"level": "WARNING"},
    },
}
