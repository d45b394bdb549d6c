"""Sphinx configuration for the flask_mailtrack documentation."""

from __future__ import annotations

import importlib.metadata

project = "flask_mailtrack"
copyright = "2026, the flask_mailtrack developers"
author = "the flask_mailtrack developers"
release = importlib.metadata.version("flask-mailtrack")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
nitpicky = False
# The sidebar lists sections; API pages would list every method.
toc_object_entries = False

html_theme = "flask"
html_context = {"project_links": []}
html_title = f"flask_mailtrack Documentation ({version})"
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["mailtrack.css"]
exclude_patterns = ["_build"]
