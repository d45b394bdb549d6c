"""Settings of the example project: only what a page and the tracking need."""

from __future__ import annotations

import os

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
# Tracking links are signed with SECRET_KEY; a key listed in
# SECRET_KEY_FALLBACKS (comma-separated here) still verifies the links it
# signed, so rotating the key keeps sent email working.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-only-change-me-in-production"
)
SECRET_KEY_FALLBACKS = [
    key for key in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",") if key
]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True

#: Where mail clients reach this server; tracking links are made on it.
BASE_URL = os.environ.get("MAILTRACK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# flask_mailtrack.Configuration keywords, under the name pytracking read
# them from (flask_mailtrack.django.get_configuration_from_settings).
PYTRACKING_CONFIGURATION = {
    "base_open_tracking_url": BASE_URL + "/mailtrack/o/",
    "base_click_tracking_url": BASE_URL + "/mailtrack/c/",
    # Behind one reverse proxy (nginx), trust the address it writes only:
    # MAILTRACK_TRUSTED_PROXIES=1, and MAILTRACK_PROXY_HEADER=X-Real-IP for
    # `proxy_set_header X-Real-IP $remote_addr`.
    "trusted_proxies": int(os.environ.get("MAILTRACK_TRUSTED_PROXIES", "0")),
    "proxy_header": os.environ.get("MAILTRACK_PROXY_HEADER", "X-Forwarded-For"),
}

LOGGING = {
    "version": 1,
    # Keep the loggers configured before Django (flask_mailtrack's).
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_project": {"handlers": ["console"], "level": "INFO"}},
}
