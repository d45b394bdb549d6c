"""The demo pages of ``mailtrack serve --demo``: ``/`` shows a sample
newsletter tracked with the server's own links, the live list of its events
and the stats; ``/demo/email`` is the newsletter, ``/demo/landing/<slug>``
the pages its links lead to. Without demo mode ``/`` says what the server is
and the other pages answer 404.

The newsletter's links are signed redirects, so their targets must not come
from the request: a forged ``Host`` header would get a link that redirects
anywhere. They lead to the demo root (:attr:`ServerState.demo_root
<flask_mailtrack.server._state.ServerState.demo_root>`), or to the
request's host only when Flask's ``TRUSTED_HOSTS`` has checked it.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import abort
from flask import current_app
from flask import Flask
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from ._state import current_state

#: The demo newsletter's articles: slug, title, text.
DEMO_ARTICLES = (
    ("spring-sale", "The spring sale is on", "Everything in the shop, 20% off."),
    ("new-arrivals", "New arrivals", "Linen shirts, straw hats, canvas bags."),
    ("journal", "From the journal", "How our linen is woven, from field to shirt."),
)


def add_demo_routes(app: Flask) -> None:
    """Add ``/`` and the demo pages to the server ``app``."""

    @app.get("/")
    def index() -> t.Any:
        if not current_state().demo:
            return Response(
                "flask_mailtrack tracking server.\n",
                content_type="text/plain; charset=utf-8",
            )
        return render_template(
            "mailtrack/demo.html",
            reader=secrets.token_hex(4),
            generated_secret=current_state().generated_secret,
            has_root=_demo_root() is not None,
        )

    @app.get("/demo/email")
    def demo_email() -> t.Any:
        if not current_state().demo:
            abort(404)
        root = _demo_root()
        if root is None:
            abort(400, _NO_ROOT)
        reader = request.args.get("r", "reader")[:32]
        articles = [
            {"title": title, "text": text, "url": root + _app_path(slug=slug)}
            for slug, title, text in DEMO_ARTICLES
        ]
        return render_template(
            "mailtrack/demo_email.html",
            articles=articles,
            unsubscribe_url=root + "/#unsubscribe",
            metadata={"campaign": "demo", "recipient": reader},
        )

    @app.get("/demo/landing/<slug>")
    def demo_landing(slug: str) -> t.Any:
        titles = {s: title for s, title, _ in DEMO_ARTICLES}
        if not current_state().demo or slug not in titles:
            abort(404)
        return render_template("mailtrack/demo_landing.html", title=titles[slug])


_NO_ROOT = (
    "The demo makes its links on MAILTRACK_BASE_URL, which is not set, and"
    " cannot trust the Host header of the request: set MAILTRACK_BASE_URL to"
    " the URL browsers reach this server at (or Flask's TRUSTED_HOSTS)."
)


def _demo_root() -> str | None:
    """The root URL the demo's articles link to, without a trailing slash:
    the fixed one, else the request's when ``TRUSTED_HOSTS`` has checked
    its host, else ``None``."""
    root = current_state().demo_root
    if root is not None:
        return root
    if current_app.config.get("TRUSTED_HOSTS"):
        # request.host raises a 400 for a host not in the list.
        return f"{request.scheme}://{request.host}{request.script_root}"
    return None


def _app_path(**values: t.Any) -> str:
    """The path of the landing page below the app's root (without the
    script root, which the demo root already ends with)."""
    path = url_for("demo_landing", **values)
    return path[len(request.script_root) :]
