"""A Sphinx extension that puts each script on a page once.

Sphinx 7.4 registers a script added after the builder started (sphinx-thebe's inline config, the
toggle button's selector) twice: once under the file name ``None``, once under ``''``, and the two are
not taken for the same script. Each page then declares ``const THEBE_JS_URL`` twice, which the browser
reports as an error. Sphinx 8.2 fixes it (sphinx-doc/sphinx#13402); jupyter-book 1.x runs on 7.x.
"""

from __future__ import annotations

import os


def _key(script) -> tuple:
    """What makes two scripts the same: file (``None`` and ``''`` alike), priority and attributes."""
    attributes = getattr(script, "attributes", {})
    return (os.fspath(getattr(script, "filename", script) or ""), getattr(script, "priority", 500),
            tuple(sorted(attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: keep the first of each script in the page's ``script_files``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)  # after the others add theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
