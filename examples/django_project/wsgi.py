"""The WSGI application: Django, with tracking in front.

Serve it with any WSGI server, e.g. ``gunicorn django_project.wsgi`` from
the ``examples`` directory.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from flask_mailtrack import TrackingMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

# Django is set up first: the tracker reads its settings.
_django = get_wsgi_application()

from .mailtrack import tracker  # noqa: E402

application = TrackingMiddleware(_django, tracker=tracker)
