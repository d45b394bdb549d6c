"""Serving: requests per second through TrackingMiddleware.

In-process WSGI calls (no network, no server), one run, on the reference
link and metadata of ``../shared/bench/reference.json``:

- the pixel through :class:`~flask_mailtrack.TrackingMiddleware` against the
  floor of any werkzeug-based handler: an app that builds a ``Request`` and
  returns the same pixel as a werkzeug ``Response`` with the same headers,
  with no token work (target: at least 0.5 of the floor's rate);
- the same pixel from pytracking 0.2.2's Django ``OpenTrackingView`` served
  by Django's WSGI handler (target: at least 3 times faster);
- the same for clicks (floor: a werkzeug redirect ``Response``;
  pytracking's ``ClickTrackingView``);
- both again with the handler's answer made a werkzeug ``Response``, as
  the Flask blueprint serves it: the middleware writes its answer (a fixed
  status, header list and body) to the server directly, which skips the
  header copying and checks a ``Response`` repeats on every request, so
  these rows show what that saves;
- a bare WSGI callable returning constant bytes, for context;
- the cost of the machine-traffic rules, and of the ``crawler-user-agents``
  expression on a user agent seen for the first time.

pytracking's links are its default unsigned tokens; ours are signed
(HMAC-SHA256), which is more work per request.

Each figure is the best of many short (~2 ms) runs, interleaved, because
on a shared machine long runs are preempted and return to cold caches, which
makes the figures swing from run to run (see :func:`short_windows`). The
load average is printed with the figures.

Run: ``python benchmarks/bench_wsgi.py``
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import time
import types
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import crawleruseragents  # noqa: E402
import django  # noqa: E402
import pytracking  # noqa: E402
from _wsgi import caller  # noqa: E402
from _wsgi import CHROME  # noqa: E402
from _wsgi import CLIENT_IP  # noqa: E402
from _wsgi import cycling_caller  # noqa: E402
from _wsgi import environ_for  # noqa: E402
from _wsgi import WSGIApp  # noqa: E402
from django.conf import settings  # noqa: E402
from flask_mailtrack import Configuration  # noqa: E402
from flask_mailtrack import TrackingMiddleware  # noqa: E402
from flask_mailtrack import traffic as machine  # noqa: E402
from flask_mailtrack.web import handle_request  # noqa: E402
from flask_mailtrack.web import PIXEL_HEADERS  # noqa: E402
from flask_mailtrack.web import read_hit  # noqa: E402
from flask_mailtrack.web import Routes  # noqa: E402
from flask_mailtrack.web import TRACKING_PIXEL  # noqa: E402
from flask_mailtrack.web._wsgi import WSGIHeaders  # noqa: E402
from werkzeug.utils import redirect  # noqa: E402
from werkzeug.wrappers import Request  # noqa: E402
from werkzeug.wrappers import Response  # noqa: E402

# -- the floors ------------------------------------------------------------------


def bare_app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", "43")])
    return [TRACKING_PIXEL]


def pixel_floor(environ: dict[str, t.Any], start_response: t.Any) -> t.Iterable[bytes]:
    Request(environ)
    response = Response(TRACKING_PIXEL, headers=PIXEL_HEADERS)
    return response(environ, start_response)


def redirect_floor(target: str) -> WSGIApp:
    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Iterable[bytes]:
        Request(environ)
        response = redirect(target, 302)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    return app


def through_response(tracker: t.Any) -> WSGIApp:
    """The handler with its answer made a werkzeug ``Response``, as the
    Flask blueprint serves it (without Flask's own request handling): the
    path is matched by routes made once, as Flask's URL map is, and the
    handler gets the kind and token."""
    routes = Routes(tracker)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Iterable[bytes]:
        request = Request(environ)
        found = routes.match(request.root_path + request.path)
        assert found is not None
        kind, token = found
        handled = handle_request(tracker, request, sender=None, kind=kind, token=token)
        return handled.response(environ, start_response)

    return app


# -- pytracking 0.2.2 through Django ----------------------------------------------


def pytracking_django_app(bases: dict[str, str]) -> WSGIApp:
    """pytracking's Django views served by Django's WSGI handler."""
    urls = types.ModuleType("bench_wsgi_urls")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=urls.__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_TZ=True,
        PYTRACKING_CONFIGURATION=dict(bases),
    )
    django.setup()
    # pytracking.django does `from ipware import get_client_ip`; importing
    # it here fails loudly if the installed django-ipware lacks it.
    from django.urls import re_path
    from pytracking.django import ClickTrackingView
    from pytracking.django import OpenTrackingView

    urls.urlpatterns = [  # type: ignore[attr-defined]
        re_path(r"^o/(?P<path>.+)$", OpenTrackingView.as_view()),
        re_path(r"^c/(?P<path>.+)$", ClickTrackingView.as_view()),
    ]
    sys.modules[urls.__name__] = urls
    from django.core.wsgi import get_wsgi_application

    return t.cast(WSGIApp, get_wsgi_application())


def check(app: WSGIApp, environ: dict[str, t.Any], status: str) -> None:
    """Make sure an app answers as expected before timing it."""
    seen: list[str] = []

    def start_response(got: str, headers: t.Any, exc_info: t.Any = None) -> None:
        seen.append(got)

    app_iter = app(dict(environ), start_response)
    b"".join(app_iter)
    getattr(app_iter, "close", lambda: None)()
    if not seen or not seen[0].startswith(status):
        raise SystemExit(f"{app!r} answered {seen} instead of {status}")


# -- main --------------------------------------------------------------------------


def short_windows(*funcs: t.Callable[[], object], rounds: int = 10) -> list[float]:
    """Seconds per call of each of ``funcs``: the best of many short runs
    (about 2 ms each), interleaved.

    On a machine shared with other busy processes, a run of a second is
    preempted many times and each time comes back to cold caches, which
    penalises the longer code path more than the shorter one, so the
    figures swing from run to run. The best short window is the cost of a
    request with the code warm, as on a server answering a steady stream of
    requests, and is stable across runs.
    """
    numbers = []
    for func in funcs:
        estimate = _common.best_seconds(func, number=5, repeat=3)
        numbers.append(max(3, min(50, int(0.002 / estimate))))
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for index, func in enumerate(funcs):
            seconds = _common.best_seconds(func, number=numbers[index], repeat=50)
            best[index] = min(best[index], seconds)
    return best


#: Distinct recipients (and so tokens) the requests cycle through: more than
#: the token section cache holds.
RECIPIENTS = 6000


def main() -> None:
    reference = _common.load_reference()
    bases = _common.tracking_bases(reference)
    metadata = reference["metadata"]
    target = reference["url"]

    middleware = TrackingMiddleware(
        bare_app, configuration=Configuration(secret_key=_common.SECRET, **bases)
    )
    ours_open = environ_for(middleware.tracker.open_url(metadata))
    ours_click = environ_for(middleware.tracker.click_url(target, metadata))
    theirs_config = pytracking.Configuration(**bases)
    # Each request carries another recipient's token, as real traffic does:
    # nothing about the recipient is in a cache.
    recipients = [{**metadata, "customer_id": n} for n in range(RECIPIENTS)]
    tracker = middleware.tracker
    ours_opens = [environ_for(tracker.open_url(m)) for m in recipients]
    ours_clicks = [environ_for(tracker.click_url(target, m)) for m in recipients]
    theirs_opens = [
        environ_for(pytracking.get_open_tracking_url(m, configuration=theirs_config))
        for m in recipients
    ]
    theirs_clicks = [
        environ_for(
            pytracking.get_click_tracking_url(target, m, configuration=theirs_config)
        )
        for m in recipients
    ]
    theirs_open = environ_for(
        pytracking.get_open_tracking_url(metadata, configuration=theirs_config)
    )
    theirs_click = environ_for(
        pytracking.get_click_tracking_url(target, metadata, configuration=theirs_config)
    )
    django_app = pytracking_django_app(bases)

    for app, environ, status in [
        (middleware, ours_open, "200"),
        (middleware, ours_click, "302"),
        (through_response(middleware.tracker), ours_open, "200"),
        (through_response(middleware.tracker), ours_click, "302"),
        (pixel_floor, ours_open, "200"),
        (redirect_floor(target), ours_click, "302"),
        (django_app, theirs_open, "200"),
        (django_app, theirs_click, "302"),
    ]:
        check(app, environ, status)

    bare = short_windows(caller(bare_app, ours_open))[0]

    rows = []
    as_response = through_response(tracker)
    for name, ours, floor, theirs in [
        (
            "pixel",
            cycling_caller(middleware, ours_opens),
            caller(pixel_floor, ours_open),
            cycling_caller(django_app, theirs_opens),
        ),
        (
            "click",
            cycling_caller(middleware, ours_clicks),
            caller(redirect_floor(target), ours_click),
            cycling_caller(django_app, theirs_clicks),
        ),
        (
            "pixel, as a werkzeug Response",
            cycling_caller(as_response, ours_opens),
            caller(pixel_floor, ours_open),
            cycling_caller(django_app, theirs_opens),
        ),
        (
            "click, as a werkzeug Response",
            cycling_caller(as_response, ours_clicks),
            caller(redirect_floor(target), ours_click),
            cycling_caller(django_app, theirs_clicks),
        ),
    ]:
        ours_s, floor_s, theirs_s = short_windows(ours, floor, theirs)
        rows.append(
            [
                name,
                _common.per_second(ours_s),
                _common.micros(ours_s),
                _common.per_second(floor_s),
                f"{floor_s / ours_s:.2f} (>= 0.5)",
                _common.per_second(theirs_s),
                f"{theirs_s / ours_s:.1f}x (>= 3x)",
            ]
        )
    _common.print_table(
        "WSGI requests through TrackingMiddleware (in process, best ~2 ms windows)",
        [
            "request",
            "ours",
            "ours/req",
            "werkzeug floor",
            "ours/floor",
            "pytracking+Django",
            "speed-up",
        ],
        rows,
    )
    print(f"\nBare WSGI callable returning constant bytes: {_common.micros(bare)}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Load average while measuring: {load} on {os.cpu_count()} CPUs")

    machine_costs(ours_open, middleware)


def machine_costs(environ: dict[str, t.Any], middleware: TrackingMiddleware) -> None:
    """What the machine-traffic rules cost per request."""
    compiled = machine.crawler_pattern()
    assert compiled is not None
    patterns = [item["pattern"] for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    # re caches compiled expressions: empty its cache before each compile.
    re.purge()
    started = time.perf_counter()
    plain = re.compile("|".join(patterns))
    plain_compile = time.perf_counter() - started
    re.purge()
    started = time.perf_counter()
    machine.compile_crawler_patterns(patterns)
    ours_compile = time.perf_counter() - started

    request = Request(dict(environ))
    handled = handle_request(middleware.tracker, request, sender=None)
    result = handled.result
    assert result is not None
    configuration = middleware.tracker.configuration
    # The headers as the middleware reads them.
    hit = read_hit(request.method, request.path, WSGIHeaders(environ), CLIENT_IP)

    def verdict() -> None:
        machine.machine_verdict(result, hit, configuration, now=time.time())

    costs = short_windows(
        lambda: compiled.search(CHROME),
        lambda: plain.search(CHROME),
        lambda: machine.user_agent_verdict(CHROME),
        verdict,
        lambda: machine.gateway_networks().lookup(CLIENT_IP),
        rounds=3,
    )
    names = [
        "crawler-user-agents, prefix-tree expression (first sight of a UA)",
        "crawler-user-agents, plain '|'.join of the patterns",
        "user agent verdict, cached (a UA seen before)",
        "all rules per request (verdict cached: the same client again)",
        "gateway network lookup (bisect)",
    ]
    rows = [[name, _common.micros(cost)] for name, cost in zip(names, costs)]
    rows += [
        ["compile: prefix-tree expression (once)", _common.micros(ours_compile)],
        ["compile: plain join (once)", _common.micros(plain_compile)],
    ]
    _common.print_table(
        f"Machine-traffic rules ({len(patterns)} crawler patterns)",
        ["cost", "per call"],
        rows,
    )


if __name__ == "__main__":
    main()
