"""The Python peer of ``bench/run``: Django + Django REST framework + djangorestframework-api-key.

A deliberately lean project, so that the comparison is with the least such a server does: no
middleware, no sessions, no ``django.contrib.auth`` user, JSON only, persistent database
connections (one per gunicorn thread), and no metering at all. It reads CraftDesk's own
``projects`` table in the database the benchmark made (``CRAFTDESK_PEER_DATABASE_URL``:
``sqlite:////abs/path.db`` or ``postgresql://user@host:port/name``), so both servers return the
same rows; its keys are djangorestframework-api-key keys of a workspace (``peer.models``).
"""

import os
from urllib.parse import unquote, urlsplit


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]),
                "CONN_MAX_AGE": None}
    if parts.scheme in ("postgresql", "postgres"):
        return {
            "ENGINE": "django.db.backends.postgresql",  # psycopg 3
            "NAME": unquote(parts.path[1:]),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": None,
        }
    raise RuntimeError(f"CRAFTDESK_PEER_DATABASE_URL: unsupported scheme {parts.scheme!r}")


SECRET_KEY = "bench-peer-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["rest_framework", "rest_framework_api_key", "peer"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "peer.urls"
WSGI_APPLICATION = "peer.wsgi.application"
DATABASES = {"default": _database(os.environ["CRAFTDESK_PEER_DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PERMISSION_CLASSES": ["peer.permissions.HasWorkspaceAPIKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
