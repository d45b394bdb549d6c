"""The project's tracker, built from the ``MAILTRACK_*`` Django settings, and
the receivers that log its events."""

from __future__ import annotations

import logging
import typing as t

from django.conf import settings
from flask_mailtrack import Configuration
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import Tracker
from flask_mailtrack import tracking_failed
from flask_mailtrack import TrackingResult

logger = logging.getLogger("django_project")

configuration = Configuration.from_mapping(
    {name: getattr(settings, name) for name in dir(settings)}
)
#: Makes links in views (and in Celery tasks, management commands...).
tracker = Tracker(configuration)


@email_opened.connect
def log_open(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("open %s machine=%s", result.metadata, result.machine)


@link_clicked.connect
def log_click(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("click %s -> %s", result.metadata, result.tracked_url)


@tracking_failed.connect
def log_failure(sender: object, reason: str, kind: str, **extra: t.Any) -> None:
    logger.warning("refused %s token: %s", kind, reason)
