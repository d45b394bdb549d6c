"""Tracking links: how long they are and how fast they are made and read.

flask_mailtrack and pytracking 0.2.2 side by side, in one process, on the
reference link of ``../shared/bench/reference.json``:

- length of click and open tracking URLs: ours signed, encrypted and
  case-insensitive, with and without the webhook URL inside, against
  pytracking's plain (unsigned) and Fernet tokens (targets: signed click URL
  at most 200 characters, encrypted at most 250);
- the same lengths for other realistic links (a long URL with many query
  parameters, tiny, unicode and no metadata), so that compactness is not
  specific to one payload;
- calls per second of the pytracking function API (``get_click_tracking_url``
  and ``get_click_tracking_result`` with a configuration object, the way
  pytracking is used), signed against pytracking's unsigned tokens (target:
  at least 2x each way), encrypted against Fernet, and the same through
  :class:`~flask_mailtrack.Tracker` methods.

Times are the best of several interleaved repeats (see ``_common.compare``).

Run: ``python benchmarks/bench_tokens.py``
"""

from __future__ import annotations

import pathlib
import sys
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import pytracking  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from flask_mailtrack import Configuration  # noqa: E402
from flask_mailtrack import get_click_tracking_result  # noqa: E402
from flask_mailtrack import get_click_tracking_url  # noqa: E402
from flask_mailtrack import get_open_tracking_result  # noqa: E402
from flask_mailtrack import get_open_tracking_url  # noqa: E402
from flask_mailtrack import Tracker  # noqa: E402

ENCRYPTION_KEY = "benchmark-encryption-key-0123456789"

#: Other realistic links, to check that compactness is not one payload's.
OTHER_LINKS: dict[str, tuple[str, dict[str, t.Any] | None]] = {
    "long URL, many query params": (
        "https://shop.example.org/en-us/collections/running-shoes/trail"
        "?color=blue&size=42&width=wide&sort=price_asc&page=3&per_page=48"
        "&utm_source=newsletter&utm_medium=email&utm_campaign=autumn_2026"
        "&utm_content=hero_button&utm_term=trail+running",
        {"subscriber_id": "8f14e45f-ceea-467f-a0e6-7b5c3d2a1f09", "list_id": 17},
    ),
    "tiny metadata": ("https://example.com/", {"u": 7}),
    "unicode metadata": (
        "https://www.example.de/angebote/sommer",
        {"name": "Jürgen Müller", "city": "Köln", "note": "größte Auswahl ☀️"},
    ),
    "no metadata": ("https://blog.example.net/2026/05/release-notes", None),
}


def _theirs(reference: dict[str, t.Any], **kwargs: t.Any) -> t.Any:
    return pytracking.Configuration(
        base_open_tracking_url=reference["base_open_tracking_url"],
        base_click_tracking_url=reference["base_click_tracking_url"],
        **kwargs,
    )


def _ours(reference: dict[str, t.Any], **kwargs: t.Any) -> Configuration:
    return Configuration(
        base_open_tracking_url=reference["base_open_tracking_url"],
        base_click_tracking_url=reference["base_click_tracking_url"],
        **kwargs,
    )


def main() -> None:
    reference = _common.load_reference()
    url = reference["url"]
    metadata = reference["metadata"]
    webhook = reference["webhook_url"]
    fernet_key = Fernet.generate_key()

    theirs_plain = _theirs(reference)
    theirs_fernet = _theirs(reference, encryption_bytestring_key=fernet_key)
    theirs_webhook = _theirs(reference, webhook_url=webhook, include_webhook_url=True)
    signed = _ours(reference, secret_key=_common.SECRET)
    encrypted = _ours(reference, encryption_key=ENCRYPTION_KEY)
    signed_ci = signed.replace(case_insensitive_tokens=True)
    encrypted_ci = encrypted.replace(case_insensitive_tokens=True)
    signed_webhook = signed.replace(webhook_url=webhook, include_webhook_url=True)
    encrypted_webhook = encrypted.replace(webhook_url=webhook, include_webhook_url=True)

    def click_length(configuration: t.Any, link: str, meta: t.Any) -> int:
        if isinstance(configuration, Configuration):
            return len(get_click_tracking_url(link, meta, configuration))
        return len(pytracking.get_click_tracking_url(link, meta, configuration))

    def open_length(configuration: t.Any, meta: t.Any) -> int:
        if isinstance(configuration, Configuration):
            return len(get_open_tracking_url(meta, configuration))
        return len(pytracking.get_open_tracking_url(meta, configuration))

    # -- lengths of the reference link ---------------------------------------
    ours_rows = [
        ("signed", signed, "plain", theirs_plain, 200),
        ("encrypted", encrypted, "Fernet", theirs_fernet, 250),
        ("signed, case-insensitive", signed_ci, "plain", theirs_plain, None),
        ("encrypted, case-insensitive", encrypted_ci, "Fernet", theirs_fernet, None),
        ("signed + webhook", signed_webhook, "plain + webhook", theirs_webhook, None),
        (
            "encrypted + webhook",
            encrypted_webhook,
            "plain + webhook",
            theirs_webhook,
            None,
        ),
    ]
    rows = []
    for name, ours, their_name, theirs, target in ours_rows:
        mine = click_length(ours, url, metadata)
        their = click_length(theirs, url, metadata)
        verdict = "" if target is None else ("ok" if mine <= target else "MISSED")
        rows.append(
            [
                name,
                mine,
                f"{their_name}: {their}",
                their / mine,
                "" if target is None else f"<= {target} {verdict}",
            ]
        )
    _common.print_table(
        "Click URL length, reference link (characters; ratio = pytracking / ours)",
        ["flask_mailtrack", "length", "pytracking 0.2.2", "ratio", "target"],
        rows,
    )

    rows = []
    for name, ours, their_name, theirs in [
        ("signed", signed, "plain", theirs_plain),
        ("encrypted", encrypted, "Fernet", theirs_fernet),
        ("signed, case-insensitive", signed_ci, "plain", theirs_plain),
        ("signed + webhook", signed_webhook, "plain + webhook", theirs_webhook),
    ]:
        mine = open_length(ours, metadata)
        their = open_length(theirs, metadata)
        rows.append([name, mine, f"{their_name}: {their}", their / mine])
    _common.print_table(
        "Open URL length, reference metadata (characters)",
        ["flask_mailtrack", "length", "pytracking 0.2.2", "ratio"],
        rows,
    )

    rows = []
    for name, (link, meta) in OTHER_LINKS.items():
        plain = click_length(theirs_plain, link, meta)
        fernet = click_length(theirs_fernet, link, meta)
        ours_signed = click_length(signed, link, meta)
        ours_encrypted = click_length(encrypted, link, meta)
        rows.append(
            [
                name,
                len(link),
                ours_signed,
                plain,
                plain / ours_signed,
                ours_encrypted,
                fernet,
                fernet / ours_encrypted,
            ]
        )
    _common.print_table(
        "Click URL length, other links (characters)",
        [
            "link",
            "URL",
            "signed",
            "plain",
            "ratio",
            "encrypted",
            "Fernet",
            "ratio",
        ],
        rows,
    )

    # -- speed ----------------------------------------------------------------
    signed_url = get_click_tracking_url(url, metadata, signed)
    encrypted_url = get_click_tracking_url(url, metadata, encrypted)
    signed_open = get_open_tracking_url(metadata, signed)
    plain_url = pytracking.get_click_tracking_url(url, metadata, theirs_plain)
    fernet_url = pytracking.get_click_tracking_url(url, metadata, theirs_fernet)
    plain_open = pytracking.get_open_tracking_url(metadata, theirs_plain)
    signed_tracker = Tracker(signed)
    encrypted_tracker = Tracker(encrypted)
    assert get_click_tracking_result(signed_url, None, signed).tracked_url == url
    assert pytracking.get_click_tracking_result(plain_url, None, theirs_plain)

    cases: list[tuple[str, t.Callable[[], object], t.Callable[[], object], str]] = [
        (
            "get_click_tracking_url: signed vs plain",
            lambda: get_click_tracking_url(url, metadata, signed),
            lambda: pytracking.get_click_tracking_url(url, metadata, theirs_plain),
            ">= 2",
        ),
        (
            "get_click_tracking_result: signed vs plain",
            lambda: get_click_tracking_result(signed_url, None, signed),
            lambda: pytracking.get_click_tracking_result(plain_url, None, theirs_plain),
            ">= 2",
        ),
        (
            "get_click_tracking_url: encrypted vs Fernet",
            lambda: get_click_tracking_url(url, metadata, encrypted),
            lambda: pytracking.get_click_tracking_url(url, metadata, theirs_fernet),
            "",
        ),
        (
            "get_click_tracking_result: encrypted vs Fernet",
            lambda: get_click_tracking_result(encrypted_url, None, encrypted),
            lambda: pytracking.get_click_tracking_result(
                fernet_url, None, theirs_fernet
            ),
            "",
        ),
        (
            "get_open_tracking_url: signed vs plain",
            lambda: get_open_tracking_url(metadata, signed),
            lambda: pytracking.get_open_tracking_url(metadata, theirs_plain),
            "",
        ),
        (
            "get_open_tracking_result: signed vs plain",
            lambda: get_open_tracking_result(signed_open, None, signed),
            lambda: pytracking.get_open_tracking_result(plain_open, None, theirs_plain),
            "",
        ),
        (
            "Tracker.click_url: signed vs plain",
            lambda: signed_tracker.click_url(url, metadata),
            lambda: pytracking.get_click_tracking_url(url, metadata, theirs_plain),
            "",
        ),
        (
            "Tracker.decode_click: signed vs plain",
            lambda: signed_tracker.decode_click(signed_url),
            lambda: pytracking.get_click_tracking_result(plain_url, None, theirs_plain),
            "",
        ),
        (
            "Tracker.click_url: encrypted vs Fernet",
            lambda: encrypted_tracker.click_url(url, metadata),
            lambda: pytracking.get_click_tracking_url(url, metadata, theirs_fernet),
            "",
        ),
        (
            "Tracker.decode_click: encrypted vs Fernet",
            lambda: encrypted_tracker.decode_click(encrypted_url),
            lambda: pytracking.get_click_tracking_result(
                fernet_url, None, theirs_fernet
            ),
            "",
        ),
    ]

    # The rows above repeat one URL and one metadata dict, so flask_mailtrack
    # finds both compressed sections in its cache. These rows use a new
    # recipient (and a new URL) on every call, and decode a different token
    # each time, as a real send and a real stream of clicks would.
    counter = iter(range(10**9))

    def recipient() -> dict[str, t.Any]:
        return {**metadata, "customer_id": next(counter)}

    def new_url() -> str:
        return f"{url}&n={next(counter)}"

    pool = 20_000
    signed_urls = [
        get_click_tracking_url(url, recipient(), signed) for _ in range(pool)
    ]
    plain_urls = [
        pytracking.get_click_tracking_url(url, recipient(), theirs_plain)
        for _ in range(pool)
    ]
    ours_cycle = iter(signed_urls * 1000)
    theirs_cycle = iter(plain_urls * 1000)
    cases += [
        (
            "get_click_tracking_url: signed vs plain, new recipient each call",
            lambda: get_click_tracking_url(url, recipient(), signed),
            lambda: pytracking.get_click_tracking_url(url, recipient(), theirs_plain),
            ">= 2",
        ),
        (
            "get_click_tracking_url: same, new URL and recipient each call",
            lambda: get_click_tracking_url(new_url(), recipient(), signed),
            lambda: pytracking.get_click_tracking_url(
                new_url(), recipient(), theirs_plain
            ),
            ">= 2",
        ),
        (
            "get_click_tracking_result: signed vs plain, a new token each call",
            lambda: get_click_tracking_result(next(ours_cycle), None, signed),
            lambda: pytracking.get_click_tracking_result(
                next(theirs_cycle), None, theirs_plain
            ),
            ">= 2",
        ),
    ]
    rows = []
    for name, ours_call, theirs_call, target in cases:
        ours_seconds, theirs_seconds = _common.compare(ours_call, theirs_call, rounds=4)
        ratio = theirs_seconds / ours_seconds
        verdict = ""
        if target:
            verdict = f"{target} {'ok' if ratio >= 2 else 'MISSED'}"
        rows.append(
            [
                name,
                _common.per_second(ours_seconds),
                _common.per_second(theirs_seconds),
                ratio,
                verdict,
            ]
        )
    _common.print_table(
        "Speed, reference link (calls per second; ratio = ours / pytracking)",
        ["operation", "flask_mailtrack", "pytracking 0.2.2", "ratio", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
