"""Rewriting email: HTML, plain text and whole MIME messages.

Each function takes a tracker (anything that makes click tokens and URLs,
see :class:`~flask_mailtrack.Tracker`) and changes only the links it tracks
and the pixel it adds; every other byte is kept.
"""

from __future__ import annotations

from ._html import HTMLInput as HTMLInput
from ._html import HTMLTemplate as HTMLTemplate
from ._html import OPT_OUT_ATTRIBUTE as OPT_OUT_ATTRIBUTE
from ._html import PIXEL_ATTRIBUTES as PIXEL_ATTRIBUTES
from ._html import track_html as track_html
from ._mime import MessageType as MessageType
from ._mime import track_message as track_message
from ._text import track_text as track_text

__all__ = [
    "HTMLInput",
    "HTMLTemplate",
    "MessageType",
    "OPT_OUT_ATTRIBUTE",
    "PIXEL_ATTRIBUTES",
    "track_html",
    "track_message",
    "track_text",
]
