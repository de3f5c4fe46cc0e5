"""A Sphinx extension that gives every figure's image a short alt text from its caption.

myst-nb writes a glued figure's image with its file path as the alt text ("../../_images/5e9c....svg"),
which is what a screen reader reads aloud and what a reader sees when the image fails to load. Where an
image's alt text is missing or is its own path, this puts in its place the first clause of the caption of
the figure around it: the whole caption follows in the figcaption, and a reader should not hear it twice.
"""

from __future__ import annotations

from docutils import nodes


def caption_alt(app, doctree, docname) -> None:
    """``doctree-resolved``: each image in a captioned figure whose alt text is empty or a path."""
    for image in doctree.findall(nodes.image):
        alt = image.get("alt", "")
        if alt and not alt.endswith((".svg", ".png", ".jpg", ".jpeg", ".gif")):
            continue
        figure = next((a for a in _ancestors(image) if isinstance(a, nodes.figure)), None)
        caption = next(iter(figure.findall(nodes.caption)), None) if figure is not None else None
        image["alt"] = first_clause(caption.astext()) if caption is not None else "a figure"


def first_clause(text: str, most: int = 100) -> str:
    """The caption's words up to its first colon, semicolon or full stop (at most ``most`` characters)."""
    words = " ".join(text.split())
    cut = min((i for i in (words.find(": "), words.find("; "), words.find(". ")) if i > 0), default=len(words))
    short = words[:cut].rstrip(".")
    return short if len(short) <= most else short[:most].rsplit(" ", 1)[0] + "…"


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def setup(app):
    app.connect("doctree-resolved", caption_alt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
