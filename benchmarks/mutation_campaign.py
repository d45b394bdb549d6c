"""Mutation campaign: a million altered tracking tokens through the WSGI app.

Valid open and click tokens are made in every mode (signed, encrypted,
case-insensitive signed and encrypted, pytracking Fernet and plain tokens
read with ``accept_legacy_tokens``), then altered: bit flips, truncations,
insertions, base64 alphabet swaps, case changes, splices of two tokens,
appended ``=``/whitespace/slashes, and tokens sent to the other kind's path.
Each altered token is requested through :class:`TrackingMiddleware`
in-process, and the answer is classified:

- **5xx**: any server error (must be 0);
- **redirects**: a 302 for an altered token (must be 0), except for plain
  pytracking tokens, which anyone can write: those are unauthenticated by
  design, so they are counted apart and must only redirect to
  ``legacy_redirect_hosts``;
- **accepted forgeries**: an altered token accepted with a payload (target,
  metadata) that was never issued (must be 0).

An alteration that gives back a valid token (the seed itself after
canonicalisation, as a case change of a case-insensitive token does, or
another seed, as a splice of two tokens with a common prefix can) is drawn
again, so every counted mutation is a token that was never issued.

Usage::

    python benchmarks/mutation_campaign.py              # 1,000,000 mutations
    python benchmarks/mutation_campaign.py -n 20000 --seed 7

``tests/fuzz/test_mutation_campaign.py`` runs 20,000 in CI.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import random
import sys
import time
import typing as t

from flask_mailtrack import Configuration
from flask_mailtrack import Tracker
from flask_mailtrack import TrackingMiddleware

SECRET = "campaign-secret-key-0123456789abcdef"
ENCRYPTION_KEY = "campaign-encryption-key-012345678"
# A fixed Fernet key, so that runs are reproducible.
FERNET_KEY = base64.urlsafe_b64encode(bytes(range(32)))
HOST = "https://t.example.com"
OPEN_PATH = "/mt/o/"
CLICK_PATH = "/mt/c/"
LEGACY_HOST = "legacy.example.com"
TARGETS = (
    "https://www.example.com/products/item?id=42&utm_source=newsletter",
    "https://shop.example.org/p/123",
    f"https://{LEGACY_HOST}/landing?x=1",
)
METADATA = (
    {"recipient": "alice@example.com", "campaign": "spring"},
    {"recipient": "bob@example.com", "campaign": "spring", "variant": "b"},
    {},
)


def token_modes(
    secret: str, encryption_key: str, fernet_key: bytes, legacy_host: str
) -> dict[str, dict[str, t.Any]]:
    """The ways a tracker reads tokens, by name: the configuration keywords
    of each (besides the base URLs). ``tests/fuzz/test_properties.py`` fuzzes
    the same modes with its own keys.

    :param secret: The signing key.
    :param encryption_key: The key of encrypted tokens.
    :param fernet_key: The Fernet key of pytracking's encrypted tokens.
    :param legacy_host: The one host that unsigned pytracking tokens may
        redirect to.
    """
    return {
        "signed": {"secret_key": secret},
        "encrypted": {"encryption_key": encryption_key},
        "signed-ci": {"secret_key": secret, "case_insensitive_tokens": True},
        "encrypted-ci": {
            "encryption_key": encryption_key,
            "case_insensitive_tokens": True,
        },
        "legacy": {
            "secret_key": secret,
            "accept_legacy_tokens": True,
            "encryption_bytestring_key": fernet_key,
            "legacy_redirect_hosts": [legacy_host],
        },
    }


MODES = token_modes(SECRET, ENCRYPTION_KEY, FERNET_KEY, LEGACY_HOST)

#: The URL-safe base64 alphabet of tokens.
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_SWAPS = {"-": "+", "_": "/", "+": "-", "/": "_"}
_APPENDIX = ("=", "==", "===", " ", "\t", "\n", "\r\n", "%20", "/", "//x", "\x00")
_INSERTS = B64_ALPHABET + "=+/.%~ \t\n\x00\x7f\u00e9\u2028\ufeff\U0001f600"


def _fernet_token(data: dict[str, t.Any]) -> str:
    from cryptography.fernet import Fernet

    return Fernet(FERNET_KEY).encrypt(json.dumps(data).encode()).decode("ascii")


def plain_token(data: dict[str, t.Any]) -> str:
    """An unsigned pytracking token: the JSON of ``data`` in base64."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode("ascii")


@dataclasses.dataclass
class Seed:
    """A valid token and what it decodes to."""

    mode: str
    kind: str
    token: str
    #: Unauthenticated pytracking token (forgeable by design).
    plain: bool = False


@dataclasses.dataclass
class ModeReport:
    mutations: int = 0
    server_errors: int = 0
    redirects: int = 0
    accepted: int = 0
    forgeries: int = 0
    #: Altered plain pytracking tokens that were accepted (by design).
    plain_accepted: int = 0
    #: ... of which redirected outside legacy_redirect_hosts (must be 0).
    plain_bad_redirects: int = 0
    by_status: dict[int, int] = dataclasses.field(default_factory=dict)
    #: The first few accepted altered tokens: (operation, kind, seed, token).
    accepted_samples: list[tuple[str, str, str, str]] = dataclasses.field(
        default_factory=list
    )


@dataclasses.dataclass
class Report:
    modes: dict[str, ModeReport]
    seconds: float

    @property
    def total(self) -> ModeReport:
        total = ModeReport()
        for report in self.modes.values():
            for field in dataclasses.fields(ModeReport):
                if field.name == "accepted_samples":
                    total.accepted_samples.extend(report.accepted_samples)
                elif field.name == "by_status":
                    for status, count in report.by_status.items():
                        total.by_status[status] = total.by_status.get(status, 0) + count
                else:
                    value = getattr(total, field.name) + getattr(report, field.name)
                    setattr(total, field.name, value)
        return total

    @property
    def failures(self) -> int:
        """5xx + redirects + forgeries + plain redirects outside the hosts."""
        total = self.total
        return (
            total.server_errors
            + total.redirects
            + total.forgeries
            + total.plain_bad_redirects
        )


def make_trackers() -> dict[str, Tracker]:
    bases = {
        "base_open_tracking_url": HOST + OPEN_PATH,
        "base_click_tracking_url": HOST + CLICK_PATH,
    }
    return {name: Tracker(Configuration(**bases, **kw)) for name, kw in MODES.items()}


def make_seeds(trackers: dict[str, Tracker]) -> list[Seed]:
    seeds = []
    for mode, tracker in trackers.items():
        for metadata in METADATA:
            seeds.append(Seed(mode, "open", tracker.open_token(metadata)))
            for url in TARGETS:
                seeds.append(Seed(mode, "click", tracker.click_token(url, metadata)))
        if mode == "legacy":
            for metadata in METADATA:
                seeds.append(Seed(mode, "open", _fernet_token({"metadata": metadata})))
                seeds.append(
                    Seed(mode, "open", plain_token({"metadata": metadata}), plain=True)
                )
                for url in TARGETS:
                    data = {"url": url, "metadata": metadata}
                    seeds.append(Seed(mode, "click", _fernet_token(data)))
                    if LEGACY_HOST in url:
                        seeds.append(Seed(mode, "click", plain_token(data), plain=True))
    return seeds


def _canonical(token: str) -> str:
    # Case-insensitive tokens (markers 3 and 4) are read lower-cased, and
    # surrounding slashes are not part of a token in a path.
    token = token.strip("/")
    return token.lower() if token[:1] in ("3", "4") else token


class Mutator:
    """Draws altered tokens from the seeds with one random generator."""

    def __init__(self, seeds: list[Seed], rng: random.Random) -> None:
        self.seeds = seeds
        self.rng = rng
        self.issued = {(s.kind, _canonical(s.token)) for s in seeds}
        self.operations: list[t.Callable[[Seed], tuple[str, str]]] = [
            self.bit_flip,
            self.truncate,
            self.insert,
            self.alphabet_swap,
            self.case_change,
            self.splice,
            self.append,
            self.wrong_kind,
            self.several,
        ]

    def mutate(self, seed: Seed) -> tuple[str, str, str]:
        """``(operation, kind, token)``: a token that is none of the seeds
        (a splice of two tokens with a common prefix can give back the
        other one)."""
        while True:
            operation = self.rng.choice(self.operations)
            kind, token = operation(seed)
            if (kind, _canonical(token)) not in self.issued:
                return operation.__name__, kind, token

    def bit_flip(self, seed: Seed) -> tuple[str, str]:
        chars = list(seed.token)
        index = self.rng.randrange(len(chars))
        flipped = ord(chars[index]) ^ (1 << self.rng.randrange(7))
        chars[index] = chr(flipped)
        return seed.kind, "".join(chars)

    def truncate(self, seed: Seed) -> tuple[str, str]:
        token = seed.token
        if self.rng.random() < 0.5:
            return seed.kind, token[: self.rng.randrange(len(token))]
        return seed.kind, token[self.rng.randrange(1, len(token)) :]

    def insert(self, seed: Seed) -> tuple[str, str]:
        token = seed.token
        index = self.rng.randrange(len(token) + 1)
        return seed.kind, token[:index] + self.rng.choice(_INSERTS) + token[index:]

    def alphabet_swap(self, seed: Seed) -> tuple[str, str]:
        chars = list(seed.token)
        index = self.rng.randrange(len(chars))
        char = chars[index]
        if char in _SWAPS and self.rng.random() < 0.5:
            chars[index] = _SWAPS[char]
        else:
            alphabet = _B32 if seed.token[:1] in ("3", "4") else B64_ALPHABET
            chars[index] = self.rng.choice(alphabet)
        return seed.kind, "".join(chars)

    def case_change(self, seed: Seed) -> tuple[str, str]:
        chars = list(seed.token)
        for _ in range(self.rng.randint(1, 3)):
            index = self.rng.randrange(len(chars))
            chars[index] = chars[index].swapcase()
        return seed.kind, "".join(chars)

    def splice(self, seed: Seed) -> tuple[str, str]:
        other = self.rng.choice(self.seeds).token
        cut = self.rng.randrange(1, len(seed.token))
        return seed.kind, seed.token[:cut] + other[self.rng.randrange(len(other)) :]

    def append(self, seed: Seed) -> tuple[str, str]:
        return seed.kind, seed.token + self.rng.choice(_APPENDIX)

    def wrong_kind(self, seed: Seed) -> tuple[str, str]:
        return ("click" if seed.kind == "open" else "open"), seed.token

    def several(self, seed: Seed) -> tuple[str, str]:
        kind, token = seed.kind, seed.token
        for _ in range(self.rng.randint(2, 4)):
            operation = self.rng.choice(self.operations[:7])
            # Truncations and splices need two characters to cut between.
            token = token if len(token) >= 2 else token + "AA"
            kind, token = operation(dataclasses.replace(seed, token=token))
        return kind, token


def _app(tracker: Tracker, lint: bool) -> t.Any:
    def fallback(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not tracking"]

    app: t.Any = TrackingMiddleware(fallback, tracker=tracker)
    if lint:
        from werkzeug.middleware.lint import LintMiddleware

        app = LintMiddleware(app)
    return app


def run(total: int = 1_000_000, *, seed: int = 1, lint: bool = False) -> Report:
    """Send ``total`` altered tokens, spread over the modes, and classify
    the answers."""
    from werkzeug.test import EnvironBuilder

    rng = random.Random(seed)
    trackers = make_trackers()
    seeds = make_seeds(trackers)
    # What each mode issued: an accepted token must decode to one of these.
    genuine: dict[str, set[tuple[t.Any, ...]]] = {mode: set() for mode in MODES}
    for s in seeds:
        result = trackers[s.mode].decode(s.kind, s.token)  # type: ignore[arg-type]
        genuine[s.mode].add(
            (s.kind, result.tracked_url, json.dumps(result.metadata, sort_keys=True))
        )
    apps = {mode: _app(tracker, lint) for mode, tracker in trackers.items()}
    template = EnvironBuilder(
        path="/", headers={"User-Agent": "Mozilla/5.0 campaign"}
    ).get_environ()
    mutator = Mutator(seeds, rng)
    reports = {mode: ModeReport() for mode in MODES}
    status_line: list[str] = []

    def start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
        status_line.append(status)
        status_line.append(dict(headers).get("Location", ""))
        return lambda data: None

    started = time.perf_counter()
    for _ in range(total):
        s = rng.choice(seeds)
        operation, kind, token = mutator.mutate(s)
        report = reports[s.mode]
        report.mutations += 1
        environ = dict(template)
        path = (OPEN_PATH if kind == "open" else CLICK_PATH) + token
        # As a server hands it on: the raw bytes of the path, latin-1 decoded.
        environ["PATH_INFO"] = path.encode("utf-8", "surrogatepass").decode("latin-1")
        status_line.clear()
        body = apps[s.mode](environ, start_response)
        for _chunk in body:
            pass
        if hasattr(body, "close"):
            body.close()
        code = int(status_line[0][:3])
        report.by_status[code] = report.by_status.get(code, 0) + 1
        if code >= 500:
            report.server_errors += 1
        result = environ.get("mailtrack.result")
        if result is None:
            if 300 <= code < 400:
                report.redirects += 1  # a redirect without a result: a bug
            continue
        if s.plain:
            report.plain_accepted += 1
            if code == 302 and f"://{LEGACY_HOST}/" not in status_line[1]:
                report.plain_bad_redirects += 1
            continue
        report.accepted += 1
        if len(report.accepted_samples) < 5:
            report.accepted_samples.append((operation, kind, s.token, token))
        if 300 <= code < 400:
            report.redirects += 1
        found = (kind, result.tracked_url, json.dumps(result.metadata, sort_keys=True))
        if found not in genuine[s.mode]:
            report.forgeries += 1
    return Report(reports, time.perf_counter() - started)


def print_report(report: Report) -> None:
    header = (
        "mode",
        "mutations",
        "5xx",
        "redirects",
        "accepted",
        "forgeries",
        "plain legacy accepted",
        "plain redirects off-list",
        "statuses",
    )
    rows = []
    for mode, r in [*report.modes.items(), ("total", report.total)]:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(r.by_status.items()))
        rows.append(
            (
                mode,
                f"{r.mutations:,}",
                str(r.server_errors),
                str(r.redirects),
                str(r.accepted),
                str(r.forgeries),
                str(r.plain_accepted),
                str(r.plain_bad_redirects),
                statuses,
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    total = report.total.mutations
    print(
        f"\n{total:,} mutations in {report.seconds:.1f} s:"
        f" {total / report.seconds:,.0f} requests/s through TrackingMiddleware"
        " (one process, one thread)."
    )
    print("Result:", "PASS" if report.failures == 0 else f"FAIL ({report.failures})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--mutations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lint", action="store_true", help="wrap the app in werkzeug's LintMiddleware"
    )
    args = parser.parse_args(argv)
    report = run(args.mutations, seed=args.seed, lint=args.lint)
    print_report(report)
    return 0 if report.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
