"""Settings as text (environment variables) read into values: booleans,
numbers, lists and JSON for :class:`~flask_mailtrack.Configuration`'s
fields, and the errors that name a setting that does not exist.

Every error is a :class:`~flask_mailtrack.ConfigurationError`.
"""

from __future__ import annotations

import difflib
import json
import math
import typing as t

from .exceptions import ConfigurationError
from .exceptions import UnknownSettingError

#: Text read as true, and as false, in a boolean setting (lower case).
TRUE_WORDS = frozenset(("1", "true", "yes", "on"))
FALSE_WORDS = frozenset(("0", "false", "no", "off"))
_BOOLS = {
    **dict.fromkeys(TRUE_WORDS, True),
    **dict.fromkeys(FALSE_WORDS, False),
}


def parse_bool(value: object, *, name: str, default: bool = False) -> bool:
    """A boolean setting, from a bool (a Flask config) or text (an
    environment variable): ``1/true/yes/on`` or ``0/false/no/off``, any case.

    Other text is refused rather than read as false, so that a typo never
    silently switches a setting off.

    :param name: The setting, for the error message.
    :param default: The value of ``None`` and of empty text (a variable set
        to nothing).
    :raise ConfigurationError: text that is neither true nor false.
    """
    if value is None:
        return default
    if not isinstance(value, str):
        return bool(value)
    text = value.strip().lower()
    if not text:
        return default
    try:
        return _BOOLS[text]
    except KeyError:
        raise ConfigurationError(
            f"{name} must be true or false (1/0, yes/no, on/off), not {value!r}."
        ) from None


BOOL_FIELDS = frozenset(
    (
        "include_webhook_url",
        "include_default_metadata",
        "append_slash",
        "case_insensitive_tokens",
        "accept_legacy_tokens",
        "insecure_unsigned_tokens",
        "anonymize_ip",
        "pixel_on_invalid_token",
    )
)
_INT_FIELDS = frozenset(("max_age", "max_token_length", "trusted_proxies"))
_FLOAT_FIELDS = frozenset(("webhook_timeout_seconds", "click_scan_seconds"))
_LIST_FIELDS = frozenset(("legacy_redirect_hosts", "untracked_url_patterns"))
_KEY_FIELDS = frozenset(("secret_key", "encryption_key"))


def convert_text(name: str, value: str) -> t.Any:
    """Convert a text setting (from the environment) to its field's type."""
    text = value.strip()
    try:
        if name in BOOL_FIELDS:
            return parse_bool(text, name=name)
        if name in _INT_FIELDS:
            return None if text.lower() in ("", "none") else int(text)
        if name in _FLOAT_FIELDS:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError("not a finite number")
            return number
        if name in _LIST_FIELDS:
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if name == "default_metadata":
            loaded = json.loads(text) if text else None
            if loaded is not None and not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            return loaded
        if name in _KEY_FIELDS and text.startswith("["):
            return json.loads(text)
    except ValueError as e:
        raise ConfigurationError(
            f"Invalid value for setting {name!r}: {value!r}"
        ) from e
    return value if value else None


def unknown_setting(
    name: str, known: t.Iterable[str], owner: str = "flask_mailtrack"
) -> UnknownSettingError:
    message = f"Unknown {owner} setting {name!r}."
    message += did_you_mean(name, known, " Did you mean {!r}?")
    return UnknownSettingError(message)


def did_you_mean(name: str, known: t.Iterable[str], template: str) -> str:
    """``template`` filled with the known name closest to ``name``, or
    ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return template.format(close[0]) if close else ""
