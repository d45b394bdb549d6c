"""pytracking's one-shot webhook: :func:`send_webhook`."""

from __future__ import annotations

import typing as t

from ..configuration import Configuration
from ..exceptions import MailTrackError
from ..result import TrackingResult
from ._encoding import encode_event
from ._signatures import decode_secret
from ._signatures import SecretInput
from ._signatures import signature_headers
from ._transport import SocketTransport


class WebhookResponse(t.NamedTuple):
    """What :func:`send_webhook` got back."""

    #: The HTTP status code.
    status_code: int

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300


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
    :return: The response; ``.status_code`` is the HTTP status.
    :raise MailTrackError: no webhook URL, or not an http(s) URL.
    :raise OSError: the connection failed or timed out.
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
    transport = SocketTransport(settings.webhook_timeout_seconds)
    try:
        return WebhookResponse(transport.post(url, body, headers))
    finally:
        transport.close()
