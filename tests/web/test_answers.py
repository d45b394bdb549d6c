"""The answers a tracking request gets: redirects with a safe Location, a
pixel no cache keeps."""

from __future__ import annotations

import pytest

from _apps import mt_middleware


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://例え.jp/パス?q=値", id="iri"),
        pytest.param("https://x.example/a b", id="space"),
        pytest.param('https://x.example/"><script>alert(1)</script>', id="markup"),
        pytest.param("https://x.example/%0d%0aSet-Cookie:%20a=b", id="escaped-crlf"),
        pytest.param("https://x.example/\u00e9\u00ff", id="latin-1"),
    ],
)
def test_location_header_is_ascii_without_line_breaks(target: str) -> None:
    tracker, client = mt_middleware()
    response = client.get(tracker.click_url(target)[len("https://t.example.com") :])
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.isascii()
    assert not any(c in location for c in "\r\n\x00 ")
    assert "Set-Cookie" not in response.headers
    assert "<script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain"),
        pytest.param({"If-None-Match": "*"}, id="if-none-match"),
        pytest.param(
            {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, id="if-modified"
        ),
        pytest.param({"Range": "bytes=0-1"}, id="range"),
        pytest.param({"Accept-Encoding": "gzip"}, id="gzip"),
    ],
)
def test_pixel_is_never_cached_or_varied(headers: dict[str, str]) -> None:
    from flask_mailtrack.web import TRACKING_PIXEL

    tracker, client = mt_middleware()
    for path in (tracker.open_url()[len("https://t.example.com") :], "/mt/o/bad"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert response.get_data() == TRACKING_PIXEL
        assert "no-store" in response.headers["Cache-Control"]
        for name in ("ETag", "Last-Modified", "Vary", "Set-Cookie", "Content-Range"):
            assert name not in response.headers
