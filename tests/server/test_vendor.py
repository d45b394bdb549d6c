"""The vendored chart library: the files shipped are the ones the README
names, byte for byte, and the package data takes them all."""

from __future__ import annotations

import configparser
import hashlib
import re
import typing as t
from pathlib import Path

import flask_mailtrack.server
from flask import Flask

SERVER = Path(flask_mailtrack.server.__file__).parent
VENDOR = SERVER / "static" / "vendor"
ROOT = Path(__file__).parents[2]


def _listed() -> dict[str, str]:
    readme = (VENDOR / "README.rst").read_text(encoding="utf-8")
    return dict(
        (name, digest)
        for digest, name in re.findall(r"^ {4}([0-9a-f]{64})  (\S+)$", readme, re.M)
    )


def test_vendored_files_match_their_checksums() -> None:
    listed = _listed()
    assert set(listed) == {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest
    # Every file of the folder is accounted for.
    present = {path.name for path in VENDOR.iterdir()}
    assert present == set(listed) | {"README.rst"}


def test_vendored_version_is_the_one_in_the_readme_and_the_docs() -> None:
    readme = (VENDOR / "README.rst").read_text(encoding="utf-8")
    version = re.search(r"^:Version: (\S+)$", readme, re.M)
    assert version is not None
    script = (VENDOR / "uPlot.iife.min.js").read_text(encoding="utf-8")
    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{version[1]})")
    docs = (ROOT / "docs" / "dashboard.rst").read_text(encoding="utf-8")
    assert f"`uPlot`_ {version[1]}" in docs
    for digest in _listed().values():
        assert digest in docs
    assert "MIT License" in (VENDOR / "uPlot.LICENSE").read_text(encoding="utf-8")


def test_package_data_ships_the_static_files() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    patterns = config["options.package_data"]["flask_mailtrack.server"].split()
    # Globbed as setuptools globs them: a "*" stays within one folder.
    shipped = {path for pattern in patterns for path in SERVER.glob(pattern)}
    static = {path for path in (SERVER / "static").rglob("*") if path.is_file()}
    assert static
    assert static <= shipped


def test_the_server_serves_the_vendored_files(
    make_app: t.Callable[..., Flask],
) -> None:
    client = make_app().test_client()
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        response = client.get(f"/static/vendor/{name}")
        assert response.status_code == 200
        assert response.get_data() == (VENDOR / name).read_bytes()
        response.close()
