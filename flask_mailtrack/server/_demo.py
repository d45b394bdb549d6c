"""The demo pages of ``mailtrack serve --demo``: ``/`` shows a sample
newsletter tracked with the server's own links, the live list of its events
and the stats; ``/demo/email`` is the newsletter, ``/demo/landing/<slug>``
the pages its links lead to. Without demo mode ``/`` says what the server is
and the other pages answer 404.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import abort
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
        )

    @app.get("/demo/email")
    def demo_email() -> t.Any:
        if not current_state().demo:
            abort(404)
        reader = request.args.get("r", "reader")[:32]
        articles = [
            {
                "title": title,
                "text": text,
                "url": url_for("demo_landing", slug=slug, _external=True),
            }
            for slug, title, text in DEMO_ARTICLES
        ]
        return render_template(
            "mailtrack/demo_email.html",
            articles=articles,
            metadata={"campaign": "demo", "recipient": reader},
        )

    @app.get("/demo/landing/<slug>")
    def demo_landing(slug: str) -> t.Any:
        titles = {s: title for s, title, _ in DEMO_ARTICLES}
        if not current_state().demo or slug not in titles:
            abort(404)
        return render_template("mailtrack/demo_landing.html", title=titles[slug])
