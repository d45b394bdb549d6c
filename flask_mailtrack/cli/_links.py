"""The commands about keys and links: ``keygen``, ``decode`` and ``track``."""

from __future__ import annotations

import email
import email.policy
import json
import secrets
import sys
import typing as t

import click

from .._isotime import format_time
from ..result import TrackingResult
from ..rewrite import track_html
from ..rewrite import track_message
from ..tokens._serializer import CLICK
from ..tokens._serializer import Kind
from ..tokens._serializer import OPEN
from ..tracker import Tracker
from ._groups import shared_command
from ._settings import CommandSettings
from ._settings import pass_settings


@shared_command("keygen")
@click.option(
    "--encryption",
    is_flag=True,
    help="Print a key for MAILTRACK_ENCRYPTION_KEY (AES-256-GCM tokens).",
)
@click.option(
    "--webhook",
    is_flag=True,
    help="Print a secret for MAILTRACK_WEBHOOK_SECRET (whsec_...).",
)
def keygen_command(encryption: bool, webhook: bool = False) -> None:
    """Print a new random key for MAILTRACK_SECRET_KEY.

    Keep the old key listed (oldest first) while links signed with it are
    still in mailboxes.
    """
    if webhook:
        from ..events import generate_secret

        click.echo(generate_secret())
        return
    key = secrets.token_urlsafe(32)
    if encryption:
        from ..tokens._encryption import KeyRing

        # Fails early, with install instructions, when cryptography is missing.
        KeyRing([key.encode("ascii")])
    click.echo(key)


@shared_command("decode")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice([OPEN, CLICK]),
    help="The kind of token; when omitted, the kind of the tracking base the"
    " URL is on, else whichever kind verifies.",
)
@pass_settings
def decode_command(settings: CommandSettings, url: str, kind: Kind | None) -> None:
    """Verify a tracking URL (or token) and print its payload as JSON."""
    result = settings.tracker.decode_any(url, kind)
    click.echo(json.dumps(_payload_json(result), indent=2, sort_keys=True))


@shared_command("track")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--metadata",
    default=None,
    metavar="JSON",
    help='Metadata of every link, a JSON object such as \'{"campaign": "spring"}\'.',
)
@pass_settings
def track_command(
    settings: CommandSettings, file: t.BinaryIO, metadata: str | None
) -> None:
    """Print FILE with its links tracked and the open pixel added.

    FILE is an HTML email, or a MIME message when its name ends in .eml
    ("-" reads HTML from standard input).
    """
    metadata_dict = _parse_metadata(metadata)
    tracker = settings.link_tracker()
    data = file.read()
    # The bytes are written as they are: a tracked email keeps its encoding.
    sys.stdout.flush()
    out = sys.stdout.buffer
    if getattr(file, "name", "").lower().endswith(".eml"):
        message = email.message_from_bytes(data, policy=email.policy.default)
        tracked = track_message(tracker, message, metadata_dict)
        out.write(tracked.as_bytes())
    else:
        # Bytes in, bytes out: the rewriter reads the charset the HTML
        # declares and leaves every other byte as it is.
        out.write(track_html(tracker, data, metadata_dict))
    out.flush()


# -- helpers -------------------------------------------------------------------


def decode_any(tracker: Tracker, url: str, kind: Kind | None = None) -> TrackingResult:
    """Deprecated: call :meth:`Tracker.decode_any
    <flask_mailtrack.Tracker.decode_any>` ``(url, kind)``; importable from
    :mod:`flask_mailtrack.cli` until 0.2."""
    return tracker.decode_any(url, kind)


def _payload_json(result: TrackingResult) -> dict[str, t.Any]:
    return {
        "kind": OPEN if result.is_open_tracking else CLICK,
        "tracked_url": result.tracked_url,
        "metadata": result.metadata,
        "issued_at": format_time(result.issued_at),
        "expires_at": format_time(result.expires_at),
        "webhook_url": result.webhook_url,
        "legacy": result.legacy,
    }


def _parse_metadata(text: str | None) -> dict[str, t.Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(
            f"not valid JSON: {e}", param_hint="--metadata"
        ) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--metadata")
    return value
