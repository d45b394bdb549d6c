"""The stats pages of the standalone server."""

from __future__ import annotations

import base64
import typing as t

SECRET = "review-secret-key-0123456789abcdef"


def test_stats_basic_auth_compares_the_password(tmp_path: t.Any) -> None:
    from flask_mailtrack.server import create_app

    app = create_app(
        {
            "MAILTRACK_SECRET_KEY": SECRET,
            "MAILTRACK_DATABASE": str(tmp_path / "events.sqlite3"),
            "MAILTRACK_STATS_PASSWORD": "pässwörd",
        }
    )
    client = app.test_client()

    def get(user: str, password: str) -> int:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": "Basic " + credentials}
        return client.get("/stats.json", headers=headers).status_code

    assert get("anyone", "pässwörd") == 200
    for wrong in ("", "pässwörd ", "pässwör", "PÄSSWÖRD", "x" * 10000):
        assert get("anyone", wrong) == 401
    assert client.get("/stats.json").status_code == 401
