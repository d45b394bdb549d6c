"""Tracking Django's and Flask-Mailman's ``EmailMessage`` objects, and the
send loop of the backends that wrap another (:class:`TrackingBackendMixin`).

Flask-Mailman is a port of Django's mail package: both libraries' messages
have the same attributes (``body``, ``content_subtype``, ``alternatives``,
``extra_headers``, ``attachments``, ``recipients()``), and their backends
the same methods (``open``, ``close``, ``send_messages``). A message is
tracked on a shallow copy, at this level rather than in MIME: so every
backend, also those of email services that read the message's attributes
instead of its MIME form, sends the tracked copy; attachments are the
message's own, untouched.
"""

from __future__ import annotations

import copy
import typing as t

from ._outgoing import Outgoing
from ._outgoing import Plan

if t.TYPE_CHECKING:
    from ..tracker import Tracker

_HTML = "text/html"
_TEXT = "text/plain"


def prepare_message(
    outgoing: Outgoing, get_tracker: t.Callable[[], Tracker], message: t.Any
) -> tuple[t.Any, Plan]:
    """The message to send in place of ``message`` (itself when nothing
    changes; else a copy) and its plan.

    :param get_tracker: Makes links; called only when a message is tracked.
    :raise MailTrackError: a control header is malformed.
    """
    alternatives = list(getattr(message, "alternatives", None) or ())
    is_html = message.content_subtype == "html"
    has_html = is_html or any(_mimetype(alt) == _HTML for alt in alternatives)
    has_text = not is_html and bool(message.body)
    plan = outgoing.plan(
        message.extra_headers,
        sender=message.from_email,
        recipients=message.recipients(),
        trackable=has_html or (has_text and outgoing.settings.track_text),
    )
    if not plan.changed:
        return message, plan
    tracked = copy.copy(message)
    tracked.extra_headers = plan.headers
    if not plan.track:
        return tracked, plan
    tracker = get_tracker()
    metadata = plan.metadata
    if is_html:
        tracked.body = outgoing.track_html(tracker, message.body, metadata)
    elif has_text:
        tracked.body = outgoing.track_text(tracker, message.body, metadata)
    if alternatives:
        tracked.alternatives = [
            _track_alternative(outgoing, tracker, alternative, metadata)
            for alternative in alternatives
        ]
    return tracked, plan


def _mimetype(alternative: t.Any) -> str:
    return str(alternative[1]).split(";", 1)[0].strip().lower()


def _track_alternative(
    outgoing: Outgoing, tracker: Tracker, alternative: t.Any, metadata: t.Any
) -> t.Any:
    content = alternative[0]
    if not isinstance(content, str):
        return alternative
    mimetype = _mimetype(alternative)
    if mimetype == _HTML:
        new = outgoing.track_html(tracker, content, metadata)
    elif mimetype == _TEXT:
        new = outgoing.track_text(tracker, content, metadata)
    else:
        return alternative
    if new is content:
        return alternative
    if hasattr(alternative, "_replace"):  # Django's EmailAlternative
        return alternative._replace(content=new)
    return (new, *alternative[1:])


class TrackingBackendMixin:
    """The body of an email backend that tracks each message and hands it
    to the backend it wraps (:attr:`backend`), on one connection.

    Every message of a call is prepared before any is sent, so a malformed
    control header stops the whole call before anything leaves. A
    message's ``email.sent`` events are journaled once the wrapped backend
    reports it sent.
    """

    #: The backend that sends (SMTP, console, an email service's...).
    backend: t.Any
    #: Tracks and records.
    outgoing: Outgoing | None

    def get_tracker(self) -> Tracker:
        """The tracker that makes the links."""
        raise NotImplementedError

    def open(self) -> t.Any:
        """Open the wrapped backend's connection."""
        return self.backend.open()

    def close(self) -> None:
        """Close the wrapped backend's connection."""
        self.backend.close()

    def __enter__(self) -> t.Any:
        try:
            self.open()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send_messages(self, email_messages: t.Sequence[t.Any]) -> int:
        """Track and send ``email_messages``; return how many were sent."""
        if not email_messages:
            return 0
        outgoing = self.outgoing
        if outgoing is None:
            return t.cast(int, self.backend.send_messages(email_messages))
        prepared = [
            prepare_message(outgoing, self.get_tracker, message)
            for message in email_messages
        ]
        if not any(plan.track for _, plan in prepared):
            return t.cast(
                int, self.backend.send_messages([message for message, _ in prepared])
            )
        backend = self.backend
        # One connection for the whole call, as the wrapped backend would
        # use; each message is handed over alone to know which were sent.
        opened = backend.open()
        sent = 0
        try:
            for message, plan in prepared:
                if backend.send_messages([message]):
                    sent += 1
                    outgoing.record(plan)
        finally:
            if opened:
                backend.close()
        return sent
