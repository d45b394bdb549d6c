"""Which database a ``MAILTRACK_DATABASE`` value names, and opening the
store's backend for it: :func:`parse_database` is the one place the value
is parsed; :func:`open_backend` imports the PostgreSQL backend (and
psycopg) only for a ``postgresql://`` URL.
"""

from __future__ import annotations

import importlib
import os
import re
import typing as t
import urllib.parse

from ..exceptions import ConfigurationError
from ._store_backend import POSTGRESQL
from ._store_backend import SQLITE
from ._store_backend import StoreBackend

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def parse_database(database: str | os.PathLike[str]) -> tuple[str, str]:
    """The backend kind and location of a ``MAILTRACK_DATABASE`` value.

    - a path, or ``":memory:"``: ``("sqlite", path)``;
    - ``sqlite:///relative/path``, ``sqlite:////absolute/path``:
      ``("sqlite", path)``; ``sqlite://`` or ``sqlite:///:memory:``:
      ``("sqlite", ":memory:")``;
    - ``postgresql://user:password@host:port/dbname``, ``postgres://...``,
      also with a driver (``postgresql+psycopg://``): ``("postgresql",
      url)`` with the scheme ``postgresql``.

    :raise ConfigurationError: another URL scheme, or an empty value.
    """
    if not isinstance(database, str):
        return SQLITE, os.fspath(database)
    if not database:
        raise ConfigurationError("MAILTRACK_DATABASE is empty.")
    match = _SCHEME.match(database)
    if match is None:
        return SQLITE, database
    scheme = match.group(1).lower()
    base = scheme.split("+", 1)[0]
    rest = database[match.end() :]
    if base == "sqlite":
        if "?" in rest or "#" in rest:
            raise ConfigurationError(
                "MAILTRACK_DATABASE: an sqlite:/// URL takes no query string."
            )
        if not rest:
            return SQLITE, ":memory:"
        if not rest.startswith("/"):
            raise ConfigurationError(
                f"MAILTRACK_DATABASE {database!r}: write sqlite:///relative/path"
                " or sqlite:////absolute/path (the host part stays empty)."
            )
        path = rest[1:]
        return SQLITE, path or ":memory:"
    if base in ("postgresql", "postgres"):
        return POSTGRESQL, "postgresql://" + rest
    raise ConfigurationError(
        f"MAILTRACK_DATABASE: unsupported database URL scheme {scheme!r}; use"
        " a file path, sqlite:///path or postgresql://user:password@host/db."
    )


def open_backend(
    database: str | os.PathLike[str],
    *,
    dimensions: t.Sequence[str],
    migrate: bool = True,
    busy_timeout: float = 30.0,
) -> StoreBackend:
    """The backend of ``database`` (see :func:`parse_database`)."""
    kind, location = parse_database(database)
    if kind == POSTGRESQL:
        # Imported here, by name: psycopg, and the module that uses it, load
        # only for a PostgreSQL URL.
        module = importlib.import_module("._store_postgres", __package__)
        backend = module.PostgresBackend(
            location,
            dimensions=dimensions,
            migrate=migrate,
            lock_timeout=busy_timeout,
        )
        return t.cast(StoreBackend, backend)
    from ._store_sqlite import SQLiteBackend

    return SQLiteBackend(
        location, dimensions=dimensions, migrate=migrate, busy_timeout=busy_timeout
    )


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return parts._replace(netloc=f"{user}@{netloc[-1]}").geturl()
