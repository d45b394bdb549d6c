"""Tracking what Flask-Mailman sends: :class:`MailmanBackend`.

With ``MAILTRACK_TRACK_OUTGOING``, :meth:`MailTrack.init_app
<flask_mailtrack.MailTrack.init_app>` puts this backend in front of the one
Flask-Mailman is configured with (``MAIL_BACKEND``): in Flask-Mailman's
state when ``Mail`` was set up first, else in ``MAIL_BACKEND`` for
``Mail.init_app`` to read, so the order of the two ``init_app`` calls does
not matter. Flask-Mailman is not imported: it builds backends through the
callable it is given, and this backend only calls the one it wraps.
"""

from __future__ import annotations

import functools
import importlib.util
import typing as t

from flask import current_app
from flask import Flask

from ..outgoing import TrackingBackendMixin

if t.TYPE_CHECKING:
    from ..tracker import Tracker
    from ._state import MailTrackState


class MailmanBackend(TrackingBackendMixin):
    """A Flask-Mailman email backend that tracks every message and sends it
    through the backend it wraps, on one connection per call.

    Flask-Mailman makes it as it makes any backend
    (``mail.get_connection()``, ``EmailMessage.send()``, ``send_mail``,
    ``send_mass_mail``), with the arguments of the wrapped one.

    :param state: The app's :class:`~flask_mailtrack.extension.MailTrackState`.
    :param wrapped: The wrapped backend: a name Flask-Mailman knows
        (``"smtp"``, a dotted path) or a class.
    :param mailman: Flask-Mailman's state (given by Flask-Mailman).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        state: MailTrackState,
        wrapped: t.Any,
        mailman: t.Any = None,
        fail_silently: bool = False,
        **kwargs: t.Any,
    ) -> None:
        if mailman is None:
            mailman = current_app.extensions["mailman"]
        self.state = state
        self.mailman = mailman
        self.fail_silently = fail_silently
        self.outgoing = state.outgoing
        backend_class = mailman.import_backend(wrapped)
        self.backend = backend_class(
            mailman=mailman, fail_silently=fail_silently, **kwargs
        )

    def get_tracker(self) -> Tracker:
        """Links on ``MAILTRACK_BASE_URL`` (else the request's host)."""
        return self.state.sending_tracker()


def wrap_mailman(app: Flask, state: MailTrackState) -> bool:
    """Put :class:`MailmanBackend` in front of the app's Flask-Mailman
    backend; return whether it was done (not without Flask-Mailman)."""
    mailman = app.extensions.get("mailman")
    if mailman is not None:
        if not _is_wrapped(mailman.backend):
            mailman.backend = functools.partial(MailmanBackend, state, mailman.backend)
        return True
    if importlib.util.find_spec("flask_mailman") is None:
        return False
    wrapped = app.config.get("MAIL_BACKEND")
    if not _is_wrapped(wrapped):
        # Flask-Mailman's own default, which it cannot apply to a backend
        # that is set.
        wrapped = wrapped or ("locmem" if app.testing else "smtp")
        app.config["MAIL_BACKEND"] = functools.partial(MailmanBackend, state, wrapped)
    return True


def _is_wrapped(backend: object) -> bool:
    return isinstance(backend, functools.partial) and backend.func is MailmanBackend
