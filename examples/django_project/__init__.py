"""A minimal Django project that serves its tracking links with
:mod:`flask_mailtrack.django`'s views, pytracking's views moved over by
changing their import (see :mod:`django_project.urls`).

Run it from the ``examples`` directory, with Django's server::

    cd examples
    python -m django_project.manage runserver 127.0.0.1:8000 --noreload

or with any WSGI server::

    cd examples
    gunicorn django_project.wsgi

then open http://127.0.0.1:8000/ (the sample email: the pixel loads, an open
is logged) and click its link (a click is logged, the landing page shows).
Set ``MAILTRACK_BASE_URL`` when the server is reached on another address.

The views are one way; :class:`~flask_mailtrack.TrackingMiddleware` around
:func:`django.core.wsgi.get_wsgi_application` is the other (the tests wrap
this project in it too), which needs no URL patterns.
"""
