"""Tracking the email an app sends, whatever sends it.

The integrations build on this framework-free part: the Flask-Mailman
backend and :class:`flask_mailtrack.flask_mail.Mail` of the Flask extension,
and :class:`flask_mailtrack.django.EmailBackend`. :class:`Outgoing` reads a
message's control headers (:data:`METADATA_HEADER`, :data:`CONTROL_HEADER`),
tracks its HTML (and text) body with a compiled template reused for every
message with the same HTML, and journals one ``email.sent`` event per
recipient once the message is sent.
"""

from __future__ import annotations

from ..events._store_backend import SENT as SENT
from ._email_message import prepare_message as prepare_message
from ._email_message import TrackingBackendMixin as TrackingBackendMixin
from ._headers import CONTROL_HEADER as CONTROL_HEADER
from ._headers import METADATA_HEADER as METADATA_HEADER
from ._outgoing import Outgoing as Outgoing
from ._outgoing import Plan as Plan
from ._settings import hash_recipient as hash_recipient
from ._settings import OutgoingSettings as OutgoingSettings
from ._settings import RECIPIENT_MODES as RECIPIENT_MODES

__all__ = [
    "CONTROL_HEADER",
    "METADATA_HEADER",
    "Outgoing",
    "OutgoingSettings",
    "Plan",
    "RECIPIENT_MODES",
    "SENT",
    "TrackingBackendMixin",
    "hash_recipient",
    "prepare_message",
]
