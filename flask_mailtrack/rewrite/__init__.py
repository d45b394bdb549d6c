"""Rewriting email: HTML, plain text and whole MIME messages.

Each function takes a :class:`LinkMaker` (a :class:`~flask_mailtrack.Tracker`,
or anything else that makes click and open tokens) and changes only the links
it tracks and the pixel it adds; every other byte is kept. Which links are
tracked is decided by :class:`LinkPolicy`, the same way in every part.
"""

from __future__ import annotations

from ._html import HTMLInput as HTMLInput
from ._html import HTMLTemplate as HTMLTemplate
from ._html import OPT_OUT_ATTRIBUTE as OPT_OUT_ATTRIBUTE
from ._html import PIXEL_ATTRIBUTES as PIXEL_ATTRIBUTES
from ._html import track_html as track_html
from ._link_maker import LinkMaker as LinkMaker
from ._links import add_query_params as add_query_params
from ._links import has_merge_tag as has_merge_tag
from ._links import LinkPolicy as LinkPolicy
from ._mime import MessageType as MessageType
from ._mime import track_message as track_message
from ._text import track_text as track_text

__all__ = [
    "HTMLInput",
    "HTMLTemplate",
    "LinkMaker",
    "LinkPolicy",
    "MessageType",
    "OPT_OUT_ATTRIBUTE",
    "PIXEL_ATTRIBUTES",
    "add_query_params",
    "has_merge_tag",
    "track_html",
    "track_message",
    "track_text",
]
