"""Tracking tokens: the payload, its binary layout, and how it is signed or
encrypted and made URL-safe.

Standard library and ``cryptography`` (imported when an encryption key is
used) only; nothing here knows about URLs
beyond the target check, requests or email.
"""

from __future__ import annotations

from ._encryption import KeyRing as KeyRing
from ._payload import MAX_BODY_SIZE as MAX_BODY_SIZE
from ._payload import Metadata as Metadata
from ._payload import Payload as Payload
from ._serializer import CLICK as CLICK
from ._serializer import Kind as Kind
from ._serializer import MAX_TOKEN_LENGTH as MAX_TOKEN_LENGTH
from ._serializer import OPEN as OPEN
from ._serializer import TokenSerializer as TokenSerializer
from ._signing import SigningKeyRing as SigningKeyRing

__all__ = [
    "CLICK",
    "Kind",
    "KeyRing",
    "MAX_BODY_SIZE",
    "MAX_TOKEN_LENGTH",
    "Metadata",
    "OPEN",
    "Payload",
    "SigningKeyRing",
    "TokenSerializer",
]
