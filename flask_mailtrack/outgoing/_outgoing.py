"""The framework-free part of tracking outgoing mail: :class:`Outgoing`.

The integrations (Flask-Mailman, Flask-Mail, Django) each turn their
message object into the few things this module works on: the extra headers,
the HTML and text bodies, the sender and the recipients. :class:`Outgoing`
reads the control headers, makes the metadata, tracks the bodies with a
compiled template reused for every recipient of the same HTML, and makes
and journals the ``email.sent`` events once a message is sent.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
import typing as t

from .._isotime import format_time
from ..configuration import Configuration
from ..events._store_backend import SENT
from ..result import _new_event_id
from ..result import EVENT_SCHEMA_VERSION
from ..rewrite import HTMLTemplate
from ..rewrite import track_text
from ._headers import address_of
from ._headers import new_message_id
from ._headers import read_controls
from ._settings import OutgoingSettings

if t.TYPE_CHECKING:
    from ..tracker import Tracker

logger = logging.getLogger("flask_mailtrack.outgoing")

#: The type of the events of sent email.

#: Compiled templates kept: the HTML bodies of the mailings in progress.
_TEMPLATES = 32


class EventJournal(t.Protocol):
    """Where sent events go: a :class:`~flask_mailtrack.events.Journal`."""

    def append(self, body: bytes) -> bool: ...


class Plan(t.NamedTuple):
    """What to do with one message, from its headers."""

    #: The headers to send: without the control headers, with the
    #: ``Message-ID`` when the message is tracked.
    headers: dict[str, t.Any]
    #: Whether the bodies are tracked and the send recorded.
    track: bool
    #: Whether anything differs from the message as given.
    changed: bool
    #: The metadata of the message's links.
    metadata: dict[str, t.Any]
    #: The recipients' addresses (To, Cc and Bcc).
    recipients: tuple[str, ...]


class Outgoing:
    """Tracks outgoing messages for one configuration and records them.

    Thread-safe; build one per app (or per Django settings) and keep it: it
    keeps the compiled templates of the last HTML bodies it tracked.

    :param configuration: Gives the default metadata and the webhook URL of
        the events.
    :param settings: What to track and record.
    :param journal: Where the ``email.sent`` events are appended (the
        events pipeline's journal); ``None`` records nothing.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        configuration: Configuration,
        settings: OutgoingSettings,
        *,
        journal: EventJournal | None = None,
    ) -> None:
        self.configuration = configuration
        self.settings = settings
        self.journal = journal
        self._defaults = dict(configuration.default_metadata or {})
        self._templates: collections.OrderedDict[
            tuple[int, bytes], tuple[Tracker, HTMLTemplate]
        ] = collections.OrderedDict()
        self._lock = threading.Lock()
        # The body last tracked (kept alive here, so compared by identity).
        self._last: tuple[str, Tracker, HTMLTemplate] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings!r}>"

    # -- one message ------------------------------------------------------------

    def plan(
        self,
        headers: t.Mapping[str, t.Any] | None,
        *,
        sender: str | tuple[str, str] | None,
        recipients: t.Iterable[str | tuple[str, str]],
        message_id: str | None = None,
        trackable: bool = True,
    ) -> Plan:
        """Read the control headers of a message and decide.

        :param headers: The message's extra headers.
        :param sender: Its sender, for the domain of a new ``Message-ID``.
        :param recipients: Everyone it goes to.
        :param message_id: Its ``Message-ID`` when the library made one
            (Flask-Mail); else the headers' one, else a new one is added.
        :param trackable: Whether it has a part to track (an HTML part, or a
            text part with ``track_text``).
        :raise MailTrackError: a control header is malformed.
        """
        controls = read_controls(headers)
        headers = controls.headers
        track = self.settings.enabled and controls.track and trackable
        # One per person: an address in both To and Cc gets one message.
        addresses = tuple(
            dict.fromkeys(address_of(recipient).lower() for recipient in recipients)
        )
        if not track:
            return Plan(headers, False, controls.found, {}, addresses)
        message_id = controls.message_id or message_id
        if message_id is None:
            message_id = new_message_id(sender)
            headers["Message-ID"] = message_id
        metadata = dict(controls.metadata)
        metadata["message_id"] = message_id
        if len(addresses) == 1:
            # A copy for several recipients carries no one's address: its
            # links are the same for all of them.
            recipient = self.settings.recipient_value(addresses[0])
            if recipient is not None:
                metadata["recipient"] = recipient
        return Plan(headers, True, True, metadata, addresses)

    def track_html(self, tracker: Tracker, html: str, metadata: t.Any) -> str:
        """``html`` tracked for ``metadata``, from a template compiled once
        for every message with the same HTML body."""
        return t.cast(str, self.template(tracker, html).render(metadata))

    def track_text(self, tracker: Tracker, text: str, metadata: t.Any) -> str:
        """``text`` with its links tracked, when ``track_text`` is set."""
        if not self.settings.track_text:
            return text
        return track_text(tracker, text, metadata)

    def template(self, tracker: Tracker, html: str) -> HTMLTemplate:
        """The compiled template of ``html`` for ``tracker``, from the cache
        (the last 32 bodies) or compiled now."""
        last = self._last
        if last is not None and last[0] is html and last[1] is tracker:
            # A bulk send hands the same body to every message: no hash.
            return last[2]
        template = self._template(tracker, html)
        self._last = (html, tracker, template)
        return template

    def _template(self, tracker: Tracker, html: str) -> HTMLTemplate:
        digest = hashlib.blake2b(
            html.encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()
        key = (id(tracker), digest)
        with self._lock:
            entry = self._templates.get(key)
            if entry is not None and entry[0] is tracker:
                self._templates.move_to_end(key)
                return entry[1]
        template = HTMLTemplate(tracker, html)
        with self._lock:
            # The entry keeps its tracker alive: its id is not reused.
            self._templates[key] = (tracker, template)
            while len(self._templates) > _TEMPLATES:
                self._templates.popitem(last=False)
        return template

    # -- after the send -------------------------------------------------------------

    def sent_events(
        self, plan: Plan, now: float | None = None
    ) -> list[dict[str, t.Any]]:
        """The ``email.sent`` events of a tracked message: one per recipient,
        schema 1, each with the links' metadata (and, when the settings ask,
        that recipient's address or its hash)."""
        if not plan.track:
            return []
        timestamp = int(time.time() if now is None else now)
        occurred_at = format_time(timestamp)
        base = {**self._defaults, **plan.metadata}
        base.pop("recipient", None)
        events = []
        for address in plan.recipients:
            metadata = dict(base)
            recipient = self.settings.recipient_value(address)
            if recipient is not None:
                metadata["recipient"] = recipient
            events.append(
                {
                    "schema": EVENT_SCHEMA_VERSION,
                    "id": _new_event_id(),
                    "type": SENT,
                    "occurred_at": occurred_at,
                    "issued_at": occurred_at,
                    "expires_at": None,
                    "is_open_tracking": False,
                    "is_click_tracking": False,
                    "tracked_url": None,
                    "webhook_url": self.configuration.webhook_url,
                    "metadata": metadata,
                    "request_data": None,
                    "timestamp": timestamp,
                    "machine": None,
                    "machine_reasons": [],
                    "legacy": False,
                }
            )
        return events

    def record(self, plan: Plan) -> int:
        """Journal the ``email.sent`` events of a message that was sent: one
        append each, no database or network call. A journal that fails is
        logged, never raised: the message is already on its way.

        :return: How many events were kept.
        """
        journal = self.journal
        if journal is None or not plan.track:
            return 0
        # Imported here: the events package loads the sinks' libraries.
        from ..events._encoding import encode_event

        kept = 0
        for event in self.sent_events(plan):
            try:
                kept += journal.append(encode_event(event))
            except Exception:
                logger.exception("Could not journal the sent event %s.", event["id"])
        return kept
