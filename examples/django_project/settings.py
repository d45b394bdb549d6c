"""Settings of the example project: only what a page and the tracking need."""

from __future__ import annotations

import os

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True

#: Where mail clients reach this server; tracking links are made on it.
BASE_URL = os.environ.get("MAILTRACK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Every MAILTRACK_* setting becomes a flask_mailtrack Configuration parameter
# (see django_project.mailtrack).
MAILTRACK_SECRET_KEY = os.environ.get(
    "MAILTRACK_SECRET_KEY", "example-only-mailtrack-key-change-me"
)
MAILTRACK_BASE_OPEN_TRACKING_URL = BASE_URL + "/mailtrack/o/"
MAILTRACK_BASE_CLICK_TRACKING_URL = BASE_URL + "/mailtrack/c/"
# Behind one reverse proxy (nginx), trust its X-Forwarded-For entry only.
MAILTRACK_TRUSTED_PROXIES = int(os.environ.get("MAILTRACK_TRUSTED_PROXIES", "0"))

LOGGING = {
    "version": 1,
    # Keep the loggers configured before Django (flask_mailtrack's).
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_project": {"handlers": ["console"], "level": "INFO"}},
}
