"""The Django example project (examples/django_project), set up once for the
Django tests: Django's settings can be configured once per process."""

from __future__ import annotations

import contextlib
import pathlib
import sys
import typing as t

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
#: The base URL of the project's links (its settings' default).
BASE = "http://127.0.0.1:8000"


@contextlib.contextmanager
def example_project() -> t.Iterator[None]:
    """Set up the example project for the tests of a module: ``examples`` on
    ``sys.path`` and ``DJANGO_SETTINGS_MODULE`` while they run."""
    django = pytest.importorskip("django")
    from django.conf import settings

    if settings.configured and settings.ROOT_URLCONF != "django_project.urls":
        pytest.skip("Django is already configured for another project here.")
    sys.path.insert(0, str(EXAMPLES))
    patch = pytest.MonkeyPatch()
    patch.setenv("DJANGO_SETTINGS_MODULE", "django_project.settings")
    # A real key: the example's fallback is a placeholder, which warns.
    patch.setenv("DJANGO_SECRET_KEY", "django-example-test-secret-key-0123456789")
    try:
        django.setup()
        yield
    finally:
        sys.path.remove(str(EXAMPLES))
        patch.undo()
