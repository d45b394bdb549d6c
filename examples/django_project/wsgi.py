"""The WSGI application: Django, which serves the tracking views too.

Serve it with any WSGI server, e.g. ``gunicorn django_project.wsgi`` from
the ``examples`` directory.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

application = get_wsgi_application()
