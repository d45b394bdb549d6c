"""Reading tokens made by pytracking 0.2.2, for a migration window.

pytracking tokens are padded URL-safe base64 of a JSON object
(``{"url": ..., "metadata": ..., "webhook": ...}``), either in the clear
(anyone can forge one) or Fernet-encrypted. They carry no open/click
context and no issue time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import typing as t

from ..exceptions import InvalidToken
from ..exceptions import MailTrackError
from ._payload import Payload

_PADDED_B64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_KEYS = frozenset(("url", "metadata", "webhook"))

if t.TYPE_CHECKING:
    from cryptography.fernet import Fernet


def make_fernet(key: bytes | str) -> Fernet:
    """A Fernet instance for pytracking's ``encryption_bytestring_key``."""
    try:
        from cryptography.fernet import Fernet
    except ImportError:  # pragma: no cover - depends on the environment
        raise MailTrackError(
            "Fernet tokens need the 'cryptography' package:"
            " pip install 'flask-mailtrack[crypto]'."
        ) from None
    try:
        return Fernet(key)
    except (ValueError, TypeError, binascii.Error) as e:
        raise MailTrackError(f"Invalid Fernet key: {e}") from None


def dumps_unsigned(
    payload: Payload, *, encoding: str = "utf-8", fernet: Fernet | None = None
) -> str:
    """Make a pytracking token: plain (unsigned: for compatibility only), or
    Fernet-encrypted with ``fernet``, as pytracking made them when it had an
    ``encryption_bytestring_key``."""
    data: dict[str, t.Any] = {}
    if payload.url is not None:
        data["url"] = payload.url
    if payload.metadata:
        data["metadata"] = dict(payload.metadata)
    if payload.webhook_url is not None:
        data["webhook"] = payload.webhook_url
    try:
        raw = json.dumps(data, allow_nan=False).encode(encoding)
    except (TypeError, ValueError) as e:
        raise MailTrackError(f"Metadata must be JSON-serializable: {e}") from e
    if fernet is not None:
        return fernet.encrypt(raw).decode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def loads(
    token: str, *, fernet: Fernet | None, encoding: str = "utf-8"
) -> tuple[Payload, bool]:
    """Decode a pytracking token; return the payload and whether it was
    authenticated (Fernet) rather than plain."""
    if _PADDED_B64.fullmatch(token) is None or len(token) % 4:
        raise InvalidToken("Not a pytracking token.", reason="legacy")
    try:
        decoded = base64.urlsafe_b64decode(token)
    except (binascii.Error, ValueError):
        raise InvalidToken("Malformed pytracking token.", reason="legacy") from None
    # The character before the padding has unused low bits, so several texts
    # decode to the same bytes. pytracking and Fernet write the canonical
    # one; refusing the others means a changed character never passes.
    if base64.urlsafe_b64encode(decoded) != token.encode("ascii"):
        raise InvalidToken("Malformed pytracking token.", reason="legacy")
    issued_at = None
    authenticated = False
    if token.startswith("gAAAAA"):
        if fernet is None:
            raise InvalidToken(
                "Encrypted pytracking token, but no encryption_bytestring_key.",
                reason="legacy",
            )
        from cryptography.fernet import InvalidToken as FernetInvalidToken

        try:
            raw = fernet.decrypt(token.encode("ascii"))
            issued_at = fernet.extract_timestamp(token.encode("ascii"))
        except FernetInvalidToken:
            raise InvalidToken(
                "pytracking token could not be decrypted.", reason="signature"
            ) from None
        authenticated = True
    else:
        raw = decoded
    try:
        data = json.loads(raw.decode(encoding))
    except (ValueError, LookupError, RecursionError):
        # Deeply nested JSON ("[[[[...") raises RecursionError, not
        # ValueError; a plain token is attacker-made, so it must be caught.
        raise InvalidToken("Malformed pytracking token.", reason="legacy") from None
    if (
        not isinstance(data, dict)
        or not data.keys() <= _KEYS
        or not isinstance(data.get("url", ""), str)
        or not isinstance(data.get("webhook", ""), str)
        or not isinstance(data.get("metadata", {}), dict)
    ):
        raise InvalidToken("Malformed pytracking token.", reason="legacy")
    payload = Payload(
        url=data.get("url"),
        metadata=data.get("metadata") or {},
        issued_at=issued_at,
        # Anyone can write a plain token, so its webhook URL is not honoured
        # (it would let anyone make the server post to any address); the
        # configured webhook_url is used instead.
        webhook_url=data.get("webhook") if authenticated else None,
        legacy=True,
    )
    return payload, authenticated
