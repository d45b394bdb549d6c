from __future__ import annotations

from django.urls import path
from django.urls import re_path

from . import views
from .mailtrack import ClickView
from .mailtrack import OpenView

urlpatterns = [
    path("", views.newsletter),
    path("landing/", views.landing),
    # The paths of PYTRACKING_CONFIGURATION's base URLs; the token is `path`.
    re_path(r"^mailtrack/o/(?P<path>[^/]+)/?$", OpenView.as_view()),
    re_path(r"^mailtrack/c/(?P<path>[^/]+)/?$", ClickView.as_view()),
]
