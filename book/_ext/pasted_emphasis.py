"""A Sphinx extension that renders *stars* in glued text as emphasis, as they read in the prose around it.

A chapter glues a sentence it composed from its results (``glue("long_rising", "... *patch transformer,
scratch*'s validation MSE ...")``) and its Markdown cell pastes it with ``{glue:text}``. myst-nb pastes that
text as it is, so a model's name set in italics elsewhere on the page showed its stars. Only a pair of
single stars around words, with no space inside either star, is emphasis here; any other star stays as text.
"""

from __future__ import annotations

import re

from docutils import nodes

EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")


def split_emphasis(text: str) -> list[nodes.Node]:
    """``"a *b c*'s d"`` -> [Text("a "), emphasis("b c"), Text("'s d")]; a text without a pair: [Text(text)]."""
    out, at = [], 0
    for m in EMPHASIS.finditer(text):
        if m.start() > at:
            out.append(nodes.Text(text[at:m.start()]))
        out.append(nodes.emphasis(m.group(1), m.group(1)))
        at = m.end()
    if at < len(text):
        out.append(nodes.Text(text[at:]))
    return out


def emphasise_pasted(app, doctree, docname) -> None:
    """``doctree-resolved``: each text inside a pasted-text inline (myst-nb's ``glue:text``)."""
    for inline in list(doctree.findall(lambda n: isinstance(n, nodes.inline) and "pasted-text" in n.get("classes", []))):
        for text in list(inline.findall(nodes.Text)):
            parts = split_emphasis(str(text))
            if len(parts) > 1 or not isinstance(parts[0], nodes.Text):
                parent = text.parent
                index = parent.index(text)
                parent.remove(text)
                for k, part in enumerate(parts):
                    parent.insert(index + k, part)


def setup(app):
    app.connect("doctree-resolved", emphasise_pasted)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
