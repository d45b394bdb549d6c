"""
Flask-Mail
==========

:class:`Mail` is Flask-Mail's ``Mail`` that tracks what it sends: change
one import, ``from flask_mail import Mail`` to
``from flask_mailtrack.flask_mail import Mail``, and with
``MAILTRACK_TRACK_OUTGOING`` every :class:`flask_mail.Message` sent with
``mail.send()``, ``mail.send_message()`` or a connection of
``mail.connect()`` has its HTML (and, with ``MAILTRACK_TRACK_TEXT``, its
text body) tracked, and is recorded once per recipient as an
``email.sent`` event.

Flask-Mail makes its connections in ``Mail.connect()``; this subclass
returns a :class:`Connection` that tracks each message before Flask-Mail's
own ``Connection.send`` sends it. Nothing of Flask-Mail is patched.

Flask-Mail is imported by this module only.

.. versionadded:: 0.2
"""

from __future__ import annotations

import copy
import typing as t

import flask_mail
from flask import current_app

from .extension._state import MailTrackState

if t.TYPE_CHECKING:
    from .outgoing import Plan

__all__ = ["Connection", "Mail"]


class Mail(flask_mail.Mail):
    """Flask-Mail's ``Mail``, whose connections track what they send (see
    :class:`Connection`). Set up :class:`~flask_mailtrack.MailTrack` on the
    same app, in any order.

    .. versionadded:: 0.2
    """

    def connect(self) -> Connection:
        """Open a connection to the mail host, as Flask-Mail does."""
        app = getattr(self, "app", None) or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            mail_state = app.extensions["mail"]
        except KeyError as err:
            raise RuntimeError(
                "The current application was not configured with Flask-Mail"
            ) from err
        state = app.extensions.get("mailtrack")
        return Connection(mail_state, state)


class Connection(flask_mail.Connection):
    """Flask-Mail's ``Connection``: it sends a tracked copy of each message
    (the message given is not changed) and, once the mail host took it,
    journals its ``email.sent`` events. The control headers
    (``X-Mailtrack-Metadata``, ``X-Mailtrack``) are removed from
    ``extra_headers`` before it leaves, tracked or not.

    :param mail: Flask-Mail's state of the app.
    :param state: The app's :class:`~flask_mailtrack.extension.MailTrackState`;
        ``None`` sends untracked.

    .. versionadded:: 0.2
    """

    def __init__(self, mail: t.Any, state: MailTrackState | None = None) -> None:
        super().__init__(mail)
        self.mailtrack = state

    def send(
        self,
        message: flask_mail.Message,
        envelope_from: str | tuple[str, str] | None = None,
    ) -> None:
        """Track ``message`` and send it (see Flask-Mail's
        ``Connection.send``).

        :raise MailTrackError: a control header is malformed; nothing is
            sent.
        """
        message, plan = self.prepare(message)
        super().send(message, envelope_from)
        if plan is not None and self.host is not None and self.mailtrack is not None:
            # Not with MAIL_SUPPRESS_SEND (TESTING): nothing was sent.
            t.cast(t.Any, self.mailtrack.outgoing).record(plan)

    def prepare(
        self, message: flask_mail.Message
    ) -> tuple[flask_mail.Message, Plan | None]:
        """The message to send in place of ``message`` (itself when
        nothing changes) and its plan."""
        state = self.mailtrack
        outgoing = state.outgoing if state is not None else None
        if outgoing is None:
            return message, None
        has_text = bool(message.body)
        plan = outgoing.plan(
            message.extra_headers,
            sender=message.sender,
            recipients=message.send_to,
            message_id=message.msgId,
            trackable=bool(message.html) or (has_text and outgoing.settings.track_text),
        )
        if not plan.changed:
            return message, plan
        tracked = copy.copy(message)
        tracked.extra_headers = plan.headers or None
        if not plan.track:
            return tracked, plan
        tracker = t.cast(MailTrackState, state).sending_tracker()
        metadata = plan.metadata
        tracked.alts = dict(message.alts)
        if message.html:
            tracked.html = outgoing.track_html(tracker, message.html, metadata)
        if has_text:
            tracked.body = outgoing.track_text(
                tracker, t.cast(str, message.body), metadata
            )
        return tracked, plan
