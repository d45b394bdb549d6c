"""The framework-free core: :class:`Tracker`."""

from __future__ import annotations

import threading
import time
import typing as t
from collections.abc import Mapping
from urllib.parse import urlsplit

from ._moved import warn_deprecated
from ._urls import is_safe_target
from ._urls import strip_token
from ._urls import TokenURL
from .configuration import Configuration
from .exceptions import InvalidToken
from .exceptions import MailTrackError
from .result import TrackingResult
from .tokens import Metadata
from .tokens._payload import Payload
from .tokens._pytracking import make_fernet
from .tokens._serializer import CLICK
from .tokens._serializer import Kind
from .tokens._serializer import OPEN
from .tokens._serializer import TokenSerializer

__all__ = [
    "Metadata",
    "TokenURL",
    "Tracker",
]


class Tracker:
    """Makes and reads tracking links for one :class:`Configuration`.

    Build one per configuration and keep it: it prepares keys once. It holds
    no mutable state and is safe to share between threads.

    :param configuration: The settings; built from ``configuration_kwargs``
        when omitted, or updated with them when both are given.
    """

    def __init__(
        self, configuration: Configuration | None = None, **configuration_kwargs: t.Any
    ) -> None:
        if configuration is None:
            configuration = Configuration(**configuration_kwargs)
        elif configuration_kwargs:
            configuration = configuration.replace(**configuration_kwargs)
        #: The settings this tracker uses.
        self.configuration = configuration
        c = configuration
        # pytracking's Fernet key reads its tokens, and makes them in
        # pytracking's format (as pytracking did when it had this key).
        fernet = (
            make_fernet(c.encryption_bytestring_key)
            if c.encryption_bytestring_key
            and (c.accept_legacy_tokens or c.insecure_unsigned_tokens)
            else None
        )
        self.serializer = TokenSerializer(
            secret_keys=c.secret_keys,
            encryption_keys=c.encryption_keys,
            case_insensitive=c.case_insensitive_tokens,
            max_length=c.max_token_length,
            accept_legacy=c.accept_legacy_tokens,
            legacy_fernet=fernet,
            legacy_redirect_hosts=c.legacy_redirect_hosts,
            unsigned=c.insecure_unsigned_tokens,
            encoding=c.encoding,
        )
        self.open_base = (
            TokenURL(
                c.base_open_tracking_url,
                append_slash=c.append_slash,
                setting="base_open_tracking_url",
            )
            if c.base_open_tracking_url
            else None
        )
        self.click_base = (
            TokenURL(
                c.base_click_tracking_url,
                append_slash=c.append_slash,
                setting="base_click_tracking_url",
            )
            if c.base_click_tracking_url
            else None
        )
        defaults = dict(c.default_metadata or {})
        self._embedded_defaults = defaults if c.include_default_metadata else {}
        self._decoded_defaults = {} if c.include_default_metadata else defaults
        self._embedded_webhook = c.webhook_url if c.include_webhook_url else None
        self._max_age = c.max_age
        self._max_url_length = c.max_token_length + 2048
        self._include_webhook = c.include_webhook_url
        self._webhook = c.webhook_url
        self._loads = self.serializer.loads
        self._dumps = self.serializer.dumps

    @classmethod
    def for_configuration(cls, configuration: Configuration) -> Tracker:
        """The tracker of ``configuration``, the same one on every call.

        .. deprecated:: 0.1
            Removed in 0.2. Build ``Tracker(configuration)`` once and keep it
            (in a module, on your application object), as the middleware
            and the extension do.
        """
        warn_deprecated(
            "Tracker.for_configuration()",
            "build Tracker(configuration) once and keep it",
        )
        return _for_configuration.get(configuration)

    # -- making links ---------------------------------------------------------

    def _metadata(self, metadata: Metadata) -> Metadata:
        if metadata is not None and type(metadata) is not dict:
            if not isinstance(metadata, Mapping):
                raise TypeError("metadata must be a mapping (a dict) or None.")
            metadata = dict(metadata)
        if self._embedded_defaults:
            metadata = {**self._embedded_defaults, **(metadata or {})}
        return metadata

    def _times(self) -> tuple[int, int | None]:
        issued_at = int(time.time())
        max_age = self._max_age
        return issued_at, None if max_age is None else issued_at + max_age

    @t.overload
    def _token(self, kind: Kind, url: str | None, metadata: Metadata) -> str: ...

    @t.overload
    def _token(self, kind: Kind, url: list[str], metadata: Metadata) -> list[str]: ...

    def _token(
        self, kind: Kind, url: str | None | list[str], metadata: Metadata
    ) -> str | list[str]:
        # One URL, or a list of them for one recipient's copy (TokenSerializer.dumps).
        issued_at, expires_at = self._times()
        return self._dumps(
            kind,
            url,
            self._metadata(metadata),
            issued_at=issued_at,
            expires_at=expires_at,
            webhook_url=self._embedded_webhook,
        )

    def click_tokens(
        self, urls: t.Iterable[str], metadata: Metadata = None
    ) -> list[str]:
        """Click tokens for many URLs with the same ``metadata`` (one
        recipient's copy of an email), each as :meth:`click_token` makes it.

        The metadata is encoded once for all of them, and each URL's
        compressed form is reused from earlier calls.

        :raise MailTrackError: a URL is not a safe target (see
            :meth:`click_token`).
        """
        batch = list(urls)
        for url in batch:
            if not is_safe_target(url):
                raise _unsafe_target(url)
        return self._token(CLICK, batch, metadata)

    def open_token(self, metadata: Metadata = None) -> str:
        """A token for the open pixel, carrying ``metadata``."""
        return self._token(OPEN, None, metadata)

    def click_token(self, url: str, metadata: Metadata = None) -> str:
        """A token that redirects to ``url``, carrying ``metadata``.

        :raise MailTrackError: ``url`` is not an absolute ``http(s)`` URL with
            a host, or contains characters that could make it unsafe.
        """
        if not is_safe_target(url):
            raise _unsafe_target(url)
        return self._token(CLICK, url, metadata)

    def open_url(self, metadata: Metadata = None) -> str:
        """The pixel URL for ``metadata``, on ``base_open_tracking_url``."""
        base = self.open_base or self._base(OPEN)
        return base.prefix + self._token(OPEN, None, metadata) + base.suffix

    def click_url(self, url: str, metadata: Metadata = None) -> str:
        """The tracked URL of ``url`` for ``metadata``, on
        ``base_click_tracking_url``."""
        base = self.click_base
        if base is None or not is_safe_target(url):
            # Raises the right error.
            return self._base(CLICK).join(self.click_token(url, metadata))
        return base.prefix + self._token(CLICK, url, metadata) + base.suffix

    def _base(self, kind: Kind) -> TokenURL:
        base = self.open_base if kind == OPEN else self.click_base
        if base is None:
            raise MailTrackError(
                f"No base_{kind}_tracking_url is configured, so {kind} tracking"
                " URLs cannot be made (Tracker.{kind}_token makes bare tokens)."
            )
        return base

    # -- reading links --------------------------------------------------------

    def decode_open(
        self,
        url_or_token: str,
        *,
        request_data: dict[str, t.Any] | None = None,
        now: float | None = None,
    ) -> TrackingResult:
        """Verify an open tracking URL (or its token) and return its result.

        :param url_or_token: A full URL on ``base_open_tracking_url`` (the
            prefix is checked), or the token, with or without slashes.
        :param request_data: Attached to the result as is.
        :raise InvalidToken: for anything but a valid open token.
        """
        return self.decode(OPEN, url_or_token, request_data=request_data, now=now)

    def decode_click(
        self,
        url_or_token: str,
        *,
        request_data: dict[str, t.Any] | None = None,
        now: float | None = None,
    ) -> TrackingResult:
        """Verify a click tracking URL (or its token) and return its result;
        ``tracked_url`` is then a safe ``http(s)`` URL.

        :raise InvalidToken: for anything but a valid click token.
        """
        return self.decode(CLICK, url_or_token, request_data=request_data, now=now)

    def decode(
        self,
        kind: Kind,
        url_or_token: str,
        *,
        request_data: dict[str, t.Any] | None = None,
        now: float | None = None,
    ) -> TrackingResult:
        """Verify a token of ``kind`` (``"open"`` or ``"click"``)."""
        payload = self._loads(kind, self.token_from(kind, url_or_token), now=now)
        # The payload was just decoded, so its metadata dict is ours to give.
        return self._result(kind, payload, payload.metadata, request_data, now)

    def token_from(self, kind: Kind, url_or_token: str) -> str:
        """The token inside a tracking URL of ``kind``, or the bare token."""
        if not isinstance(url_or_token, str):
            raise InvalidToken("A token or URL must be text.", reason="format")
        if len(url_or_token) > self._max_url_length:
            raise InvalidToken("Token URL is too long.", reason="length")
        if "://" in url_or_token[:12]:
            base = self.open_base if kind == OPEN else self.click_base
            token = base.split(url_or_token) if base is not None else None
            if token is None:
                raise InvalidToken(
                    f"URL is not on this configuration's {kind} tracking base.",
                    reason="format",
                )
            return token
        return strip_token(url_or_token)

    def decode_any(
        self, url_or_token: str, kind: Kind | None = None, *, now: float | None = None
    ) -> TrackingResult:
        """Verify a tracking URL or bare token of either kind, such as a link
        copied from an email (``mailtrack decode`` reads links this way).

        A URL may be on any host: its token is the last segment of its path.
        The kind is ``kind`` when given, else that of the tracking base the
        URL is on, else both kinds are tried (a token verifies as one kind
        only).

        :param url_or_token: A tracking URL, or a token.
        :param kind: ``"open"`` or ``"click"``, when known.
        :raise InvalidToken: not a valid token (of ``kind``, when given).

        .. versionadded:: 0.1
        """
        if not isinstance(url_or_token, str):
            raise InvalidToken("A token or URL must be text.", reason="format")
        if len(url_or_token) > self._max_url_length:
            raise InvalidToken("Token URL is too long.", reason="length")
        token = url_or_token.strip()
        if "://" in token[:12]:
            if kind is None:
                kind = self._kind_of_url(token)
            segments = [part for part in urlsplit(token).path.split("/") if part]
            if not segments:
                raise InvalidToken("The URL has no token in its path.", reason="format")
            token = segments[-1]
        if kind is not None:
            return self.decode(kind, token, now=now)
        try:
            return self.decode(CLICK, token, now=now)
        except InvalidToken as click_error:
            try:
                return self.decode(OPEN, token, now=now)
            except InvalidToken as open_error:
                raise InvalidToken(
                    f"Neither a click token ({click_error}) nor an open token"
                    f" ({open_error}).",
                    reason=open_error.reason,
                ) from None

    def _kind_of_url(self, url: str) -> Kind | None:
        """The kind of the one tracking base ``url`` is on, if exactly one."""
        on_open = self.open_base is not None and self.open_base.owns(url)
        on_click = self.click_base is not None and self.click_base.owns(url)
        if on_open == on_click:  # neither, or bases that overlap
            return None
        return OPEN if on_open else CLICK

    def result(
        self,
        kind: Kind,
        payload: Payload,
        *,
        request_data: dict[str, t.Any] | None = None,
        now: float | None = None,
    ) -> TrackingResult:
        """The :class:`TrackingResult` of a verified payload."""
        return self._result(kind, payload, dict(payload.metadata), request_data, now)

    def _result(
        self,
        kind: Kind,
        payload: Payload,
        metadata: t.Any,
        request_data: dict[str, t.Any] | None,
        now: float | None,
    ) -> TrackingResult:
        if self._decoded_defaults:
            metadata = {**self._decoded_defaults, **metadata}
        is_click = kind == CLICK
        return TrackingResult(
            not is_click,
            is_click,
            payload.url if is_click else None,
            payload.webhook_url if self._include_webhook else self._webhook,
            metadata,
            request_data,
            int(time.time() if now is None else now),
            payload.issued_at,
            payload.expires_at,
            legacy=payload.legacy,
        )

    # -- deprecated: rewriting and serving take a tracker ---------------------

    def track_html(
        self, html: t.Any, metadata: Metadata = None, **options: t.Any
    ) -> t.Any:
        """Deprecated alias of :func:`flask_mailtrack.rewrite.track_html`
        ``(tracker, html, metadata, ...)``; removed in 0.2."""
        from .rewrite import track_html

        _deprecated("track_html", "flask_mailtrack.rewrite.track_html")
        return track_html(self, html, metadata, **options)

    def compile_html(self, html: str | bytes, **options: t.Any) -> t.Any:
        """Deprecated alias of :class:`flask_mailtrack.rewrite.HTMLTemplate`
        ``(tracker, html, ...)``; removed in 0.2."""
        from .rewrite import HTMLTemplate

        _deprecated("compile_html", "flask_mailtrack.rewrite.HTMLTemplate")
        return HTMLTemplate(self, html, **options)

    def track_text(self, text: str, metadata: Metadata = None, **options: t.Any) -> str:
        """Deprecated alias of :func:`flask_mailtrack.rewrite.track_text`
        ``(tracker, text, metadata, ...)``; removed in 0.2."""
        from .rewrite import track_text

        _deprecated("track_text", "flask_mailtrack.rewrite.track_text")
        return track_text(self, text, metadata, **options)

    def track_message(
        self, message: t.Any, metadata: Metadata = None, **options: t.Any
    ) -> t.Any:
        """Deprecated alias of :func:`flask_mailtrack.rewrite.track_message`
        ``(tracker, message, metadata, ...)``; removed in 0.2."""
        from .rewrite import track_message

        _deprecated("track_message", "flask_mailtrack.rewrite.track_message")
        return track_message(self, message, metadata, **options)

    def match(self, path: str) -> t.Any:
        """Deprecated alias of :func:`flask_mailtrack.web.match`
        ``(tracker, path)``; removed in 0.2."""
        from .web import match

        _deprecated("match", "flask_mailtrack.web.match")
        return match(self, path)

    def handle(self, request: t.Any, **options: t.Any) -> t.Any:
        """Deprecated alias of :func:`flask_mailtrack.web.handle_request`
        ``(tracker, request, ...)``; removed in 0.2."""
        from .web import handle_request

        _deprecated("handle", "flask_mailtrack.web.handle_request")
        return handle_request(self, request, **options)


class _TrackerCache:
    """Trackers by configuration object, for callers that are handed a
    :class:`Configuration` on every call instead of keeping a tracker.

    Bounded: beyond ``size`` entries the oldest is dropped. Each entry keeps
    its configuration alive, so the ``id`` it is found by is never reused
    while it is cached. Thread-safe.

    :param size: How many trackers to keep.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[t.Hashable, tuple[Configuration, Tracker]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        configuration: Configuration,
        overrides: t.Mapping[str, t.Any] | None = None,
    ) -> Tracker:
        """The tracker of ``configuration`` with ``overrides`` applied (see
        :meth:`Configuration.replace`), built on the first call.

        :param configuration: The settings, compared by identity.
        :param overrides: Changed fields, compared by their ``repr``.
        """
        key: t.Hashable = (
            (id(configuration), repr(sorted(overrides.items())))
            if overrides
            else id(configuration)
        )
        entry = self._entries.get(key)
        if entry is not None and entry[0] is configuration:
            return entry[1]
        tracker = Tracker(configuration, **(overrides or {}))
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (configuration, tracker)
        return tracker


# Only for the deprecated Tracker.for_configuration.
_for_configuration = _TrackerCache(64)


def _deprecated(method: str, replacement: str) -> None:
    warn_deprecated(
        f"Tracker.{method}()", f"call {replacement}(tracker, ...) instead", stacklevel=3
    )


def _unsafe_target(url: object) -> MailTrackError:
    return MailTrackError(
        f"Refusing to track {url!r}: only absolute http(s) URLs with a"
        " host and no control characters, userinfo or backslashes can"
        " be click targets."
    )
