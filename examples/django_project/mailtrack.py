"""The project's tracking: the configuration and the tracker that makes
links (in views, Celery tasks, management commands...), and the views that
serve them, with pytracking's hooks."""

from __future__ import annotations

import logging

from django.http import HttpRequest
from flask_mailtrack import InvalidToken
from flask_mailtrack import Tracker
from flask_mailtrack import TrackingResult
from flask_mailtrack.django import ClickTrackingView
from flask_mailtrack.django import get_configuration_from_settings
from flask_mailtrack.django import OpenTrackingView

logger = logging.getLogger("django_project")

#: settings.PYTRACKING_CONFIGURATION, signed with settings.SECRET_KEY.
configuration = get_configuration_from_settings()
tracker = Tracker(configuration)


class OpenView(OpenTrackingView):
    """The pixel; each open is logged."""

    def notify_tracking_event(self, tracking_result: TrackingResult) -> None:
        logger.info(
            "open %s machine=%s", tracking_result.metadata, tracking_result.machine
        )

    def notify_decoding_error(
        self, exception: InvalidToken, request: HttpRequest
    ) -> None:
        logger.warning("refused open token: %s", exception.reason)


class ClickView(ClickTrackingView):
    """The redirect; each click is logged."""

    def notify_tracking_event(self, tracking_result: TrackingResult) -> None:
        logger.info(
            "click %s -> %s", tracking_result.metadata, tracking_result.tracked_url
        )

    def notify_decoding_error(
        self, exception: InvalidToken, request: HttpRequest
    ) -> None:
        logger.warning("refused click token: %s", exception.reason)
