"""The dashboard's pages and JSON endpoints at two million stored events,
on PostgreSQL and on SQLite: the time of each answer through Flask's test
client (the app, the store and the database; no HTTP server).

- ``/stats/campaigns.json``: every campaign and all mail, from the rollups;
- ``/stats/campaign.json`` of one campaign and of all mail, for each range
  (``1h`` reads the last hour's events, the others the rollups);
- ``/stats/recipient.json`` of one event (an index);
- the pages built from the same figures: ``/stats`` (the overview), a
  campaign's page (``24h`` and ``all``) and a recipient's timeline.

Target: every answer under 300 ms. The events are those of
``bench_postgres.py`` (its loader, through the store's own write path): a
recipient among 200,000, a campaign among 8, one click in four, one hit in
five from a machine, 60 days up to now. Each figure is the best of five
answers after one to warm the caches, wall time, on whatever else the
machine is doing.

Run: ``TEST_MAILTRACK_POSTGRES_URL=postgresql://... python
benchmarks/bench_dashboard.py [--events N] [--url URL] [--skip-sqlite]``;
the tables go into a schema of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import bench_postgres  # noqa: E402
import psycopg  # noqa: E402
from flask import Flask  # noqa: E402
from flask_mailtrack.server import close_app  # noqa: E402
from flask_mailtrack.server import create_app  # noqa: E402
from flask_mailtrack.server import get_server_state  # noqa: E402

TARGET_MS = 300
CAMPAIGN = "spring-3"
RANGES = ("1h", "24h", "7d", "30d", "all")


def make_app(database: str, scratch: str) -> Flask:
    """A demo server (the stats open) on ``database``."""
    settings = {
        "MAILTRACK_SECRET_KEY": "bench-dashboard-secret-key-0123456789",
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_JOURNAL": os.path.join(scratch, f"journal-{time.time_ns()}"),
    }
    return create_app(settings, demo=True, environ={})


def endpoints(app: Flask) -> list[str]:
    event_id = get_server_state(app).store.events(limit=1)[0]["id"]
    urls = ["/stats/campaigns.json"]
    for name in RANGES:
        urls.append(f"/stats/campaign.json?campaign={CAMPAIGN}&range={name}")
        urls.append(f"/stats/campaign.json?range={name}")
    urls.append(f"/stats/recipient.json?event={event_id}")
    urls.append("/stats")
    urls.append(f"/stats/campaign?campaign={CAMPAIGN}&range=24h")
    urls.append(f"/stats/campaign?campaign={CAMPAIGN}&range=all")
    urls.append(f"/stats/recipient?event={event_id}")
    return urls


def time_endpoint(app: Flask, url: str) -> float:
    client = app.test_client()

    def get() -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    get()  # caches warm, as on a dashboard in use
    return _common.best_seconds(get, number=1, repeat=5)


def bench(name: str, app: Flask, count: int, url: str | None = None) -> None:
    store = get_server_state(app).store
    seconds = bench_postgres.load(store, count)
    print(f"\n{name}: {count:,} events loaded in {seconds:,.0f} s")
    if url is not None:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    for url in endpoints(app):
        ms = time_endpoint(app, url) * 1000
        verdict = "ok" if ms < TARGET_MS else "OVER"
        print(f"  {ms:8.1f} ms  {verdict:<4}  {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TEST_MAILTRACK_POSTGRES_URL"))
    parser.add_argument("--events", type=int, default=bench_postgres.STORED_EVENTS)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if not args.url and not args.skip_postgres:
        parser.error("give --url or set TEST_MAILTRACK_POSTGRES_URL")
    print(f"Target: every answer under {TARGET_MS} ms; best of 5.")
    schemas = bench_postgres.Schema(args.url) if args.url else None
    scratch = tempfile.mkdtemp(prefix="bench-dashboard-")
    apps = []
    try:
        if schemas is not None and not args.skip_postgres:
            url = schemas.url()
            apps.append(make_app(url, scratch))
            bench("PostgreSQL", apps[-1], args.events, url)
        if not args.skip_sqlite:
            apps.append(make_app(os.path.join(scratch, "m.sqlite3"), scratch))
            bench("SQLite", apps[-1], args.events)
    finally:
        for app in apps:
            close_app(app, timeout=0)
        if schemas is not None:
            schemas.drop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
