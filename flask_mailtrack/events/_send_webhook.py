"""pytracking's one-shot webhook: :func:`send_webhook`."""

from __future__ import annotations

import dataclasses
import email.message
import json
import typing as t
import urllib.parse

from werkzeug.datastructures import Headers

from ..configuration import Configuration
from ..exceptions import MailTrackError
from ..exceptions import WebhookDeliveryError
from ..result import TrackingResult
from ._encoding import encode_event
from ._signatures import decode_secret
from ._signatures import SecretInput
from ._signatures import signature_headers
from ._transport import Transport
from ._transport import Unreachable

#: Bytes of an answer's body that :func:`send_webhook` keeps.
MAX_BODY_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class WebhookResponse:
    """The answer :func:`send_webhook` got: what pytracking's callers read
    from the ``requests.Response`` it returned.

    .. versionchanged:: 0.1
        Has the answer's ``headers``, ``content``, ``text`` and ``json()``,
        and :meth:`raise_for_status`, besides ``status_code`` and ``ok``.
    """

    #: The HTTP status code.
    status_code: int
    #: The answer's headers; names are case-insensitive.
    headers: Headers = dataclasses.field(default_factory=Headers)
    #: The body, as bytes: at most its first :data:`MAX_BODY_BYTES` (1 MiB).
    content: bytes = b""
    #: The URL posted to.
    url: str = ""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx.

        ``requests`` said ``ok`` below 400, but it followed redirects; a
        webhook's 3xx is not followed, so the event was not accepted.
        """
        return 200 <= self.status_code < 300

    @property
    def encoding(self) -> str:
        """The ``charset`` of the ``Content-Type`` header, else UTF-8."""
        message = email.message.Message()
        message["Content-Type"] = self.headers.get("Content-Type", "")
        return message.get_content_charset() or "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes
        replaced)."""
        try:
            return self.content.decode(self.encoding, "replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", "replace")

    def json(self, **kwargs: t.Any) -> t.Any:
        """The body parsed as JSON, as ``requests.Response.json()`` does.

        :param kwargs: Passed to :func:`json.loads`.
        :raise json.JSONDecodeError: the body is not JSON (a
            :exc:`ValueError`).
        """
        return json.loads(self.content, **kwargs)

    def raise_for_status(self) -> None:
        """Raise :exc:`~flask_mailtrack.exceptions.WebhookDeliveryError`
        unless :attr:`ok`, as ``requests`` does.

        :raise WebhookDeliveryError: with this response as ``response``.
        """
        if not self.ok:
            raise WebhookDeliveryError(
                f"The webhook on {_host(self.url)} answered {self.status_code}.",
                response=self,
            )


def _host(url: str) -> str:
    """The host of ``url``, for messages: never its credentials."""
    return repr(urllib.parse.urlsplit(url).hostname or "")


def send_webhook(
    tracking_result: TrackingResult,
    configuration: Configuration | None = None,
    *,
    secret: SecretInput | None = None,
    **kwargs: t.Any,
) -> WebhookResponse:
    """Post one event to its webhook now, once, and return the response.

    pytracking's function, kept for code moving over: the request is made in
    the calling thread with no retry. Prefer :class:`WebhookSender`, which
    neither blocks the request nor loses events. Unlike pytracking's, the
    body is the full event (schema 1, a superset of pytracking's body) and
    the request is signed when ``secret`` is given.

    The URL is ``tracking_result.webhook_url``: it comes from the token only
    when ``include_webhook_url`` is set, and tokens are authenticated, so
    nobody else can choose where it points.

    :param tracking_result: The event to post.
    :param configuration: Gives ``webhook_timeout_seconds`` (and the URL when
        the result has none); ``kwargs`` override its fields.
    :param secret: A ``whsec_...`` secret to sign the request with.
    :return: The answer: ``status_code``, ``ok``, ``headers``, ``text``,
        ``json()`` as on a ``requests.Response``. An error status is
        returned, not raised (:meth:`WebhookResponse.raise_for_status`
        raises it).
    :raise MailTrackError: no webhook URL, or not an http(s) URL.
    :raise WebhookDeliveryError: no answer: the connection failed or timed
        out, or the answer was not HTTP. Also an :exc:`OSError`.
    """
    settings = configuration if configuration is not None else Configuration()
    if kwargs:
        settings = settings.replace(**kwargs)
    url = tracking_result.webhook_url or settings.webhook_url
    if not url:
        raise MailTrackError("This result has no webhook_url to send to.")
    body = encode_event(tracking_result.to_json_dict())
    headers: dict[str, str] = {}
    if secret is not None:
        headers = signature_headers(
            decode_secret(secret), tracking_result.event_id, body
        )
    transport = Transport(settings.webhook_timeout_seconds)
    try:
        answer = transport.exchange(url, body, headers, limit=MAX_BODY_BYTES)
    except Unreachable as e:
        raise WebhookDeliveryError(
            f"The webhook on {_host(url)} could not be reached: {e}"
        ) from (e.__cause__ or e)
    finally:
        transport.close()
    return WebhookResponse(answer.status, Headers(answer.headers), answer.body, url)
