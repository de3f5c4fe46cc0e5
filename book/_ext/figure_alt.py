"""A Sphinx extension that gives every figure's image its caption as alt text.

myst-nb writes a glued figure's image with its file path as the alt text ("../../_images/5e9c....svg"),
which is what a screen reader reads aloud and what a reader sees when the image fails to load. Where an
image's alt text is missing or is its own path, this puts the caption of the figure around it in its
place (the caption's words, without the figure number, which Sphinx adds apart).
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
        image["alt"] = " ".join(caption.astext().split()) if caption is not None else "a figure"


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def setup(app):
    app.connect("doctree-resolved", caption_alt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
