"""A minimal Django project served behind :class:`~flask_mailtrack.TrackingMiddleware`.

Django knows nothing about tracking here: the middleware wraps Django's WSGI
application (see :mod:`django_project.wsgi`) and answers the tracking paths
before Django sees them. Run it from the ``examples`` directory::

    cd examples
    python -m django_project.manage runserver 127.0.0.1:8000 --noreload

``runserver`` serves Django's own handler, not ``wsgi.application``, so use
a WSGI server to get tracking too::

    cd examples
    gunicorn django_project.wsgi

then open http://127.0.0.1:8000/ (the sample email: the pixel loads, an open
is logged) and click its link (a click is logged, the landing page shows).
"""
