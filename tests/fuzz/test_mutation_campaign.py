"""The bounded CI run of ``benchmarks/mutation_campaign.py``: 20,000 altered
tokens in every mode through :class:`~flask_mailtrack.TrackingMiddleware`
inside werkzeug's ``LintMiddleware``. The full run (1,000,000) is
``python benchmarks/mutation_campaign.py``.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

pytest.importorskip("cryptography")

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import mutation_campaign  # noqa: E402


@pytest.fixture(scope="module")
def report() -> mutation_campaign.Report:
    return mutation_campaign.run(20_000, seed=20260, lint=True)


def test_every_mode_is_mutated(report: mutation_campaign.Report) -> None:
    assert report.total.mutations == 20_000
    assert set(report.modes) == set(mutation_campaign.MODES)
    for mode in report.modes.values():
        # Both answers of a refused token occur: the pixel and the 404.
        assert mode.mutations > 1000
        assert mode.by_status.get(404, 0) > 0


def test_no_server_error(report: mutation_campaign.Report) -> None:
    assert report.total.server_errors == 0, report.total.by_status


def test_no_redirect_and_no_forgery(report: mutation_campaign.Report) -> None:
    total = report.total
    assert total.redirects == 0
    assert total.accepted == 0
    assert total.forgeries == 0


def test_plain_legacy_tokens_redirect_only_to_allowed_hosts(
    report: mutation_campaign.Report,
) -> None:
    # Plain pytracking tokens are unauthenticated: altered ones may be read,
    # which is why they only ever redirect to legacy_redirect_hosts.
    assert report.modes["legacy"].plain_accepted > 0
    assert report.total.plain_bad_redirects == 0
