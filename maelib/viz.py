"""Figures and tables the chapters share: reconstruction rows, training curves, numbered tables, the
forest plot of the paper's claims.

Every figure of the book goes to its page through :func:`glue_figure` (or :func:`show_figure`): as an
SVG where the file stays small (:func:`page_image`), else as a PNG at twice the resolution, shown at
:data:`DISPLAY_DPI` pixels an inch either way. Its text sizes are set once, here (:data:`FONT_SIZES`),
at about the text's size; :func:`smallest_text_px` says how large its smallest text renders in the
book's text column.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

TEXT_WIDTH_IN = 7.2  # the book's text column at 100 dpi: a wider figure is shrunk, and its labels with it
DISPLAY_DPI = 100  # pixels an inch a figure is shown at on the page (then shrunk to the column, if wider)
BOOK_COLUMN_PX = 688  # the width of the text column in a 1280-px window (sphinx-book-theme 1.3, measured)
MIN_TEXT_PX = 9  # the smallest text a figure may render in that column (issue #36)
SVG_MAX_BYTES = 250_000  # a larger SVG (many points, pictures) goes to the page as a PNG at 2x instead
PNG_SCALE = 2  # a PNG's pixels per pixel on the page: sharp on a high-density screen

# The book's figure text, in points, set once for every figure the chapters draw: at DISPLAY_DPI a point
# is 1.39 px, so labels print at 15 px and ticks and legends at 14 px, near the 16-px text around them
# (matplotlib's defaults, 10 pt labels and legends, rendered at 13 px or less once a figure was shrunk).
FONT_SIZES = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
              "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 12}
SMALL_PT = FONT_SIZES["legend.fontsize"]  # annotations beside the data, as the legend
TITLE_PT = FONT_SIZES["axes.labelsize"]  # a panel's title where panels share the text's width
mpl.rcParams.update(FONT_SIZES)
mpl.rcParams["svg.hashsalt"] = "maelib"  # the same figure gives the same SVG: no random ids in the notebooks


class _PageFigure:
    """What :func:`glue_figure` glues: a figure's image as the book shows it (an IPython mime bundle)."""

    def __init__(self, data: dict, metadata: dict, text: str):
        self.data, self.metadata, self.text = data, metadata, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {**self.data, "text/plain": self.text}, self.metadata

    def __repr__(self):
        return self.text


def page_image(fig) -> tuple[str, bytes, int]:
    """``fig`` as its page shows it: ``("image/svg+xml", svg, width)`` where the SVG is small (at most
    :data:`SVG_MAX_BYTES`, and no larger than the PNG: lines and text, not pictures), else
    ``("image/png", png, width)`` with :data:`PNG_SCALE` times the pixels; ``width`` is the width on the
    page in CSS pixels (:data:`DISPLAY_DPI` an inch, cropped to the drawing as the notebook's inline
    figures are)."""
    named_ticks_only(fig)
    dpi = DISPLAY_DPI * PNG_SCALE  # an SVG's pictures (imshow) are embedded at this resolution too
    svg, png = io.BytesIO(), io.BytesIO()
    fig.savefig(svg, format="svg", bbox_inches="tight", dpi=dpi, metadata={"Date": None})  # no date: same bytes
    fig.savefig(png, format="png", bbox_inches="tight", dpi=dpi)
    width = round(_saved_width_in(fig) * DISPLAY_DPI)
    if len(svg.getvalue()) <= min(SVG_MAX_BYTES, len(png.getvalue())):
        return "image/svg+xml", svg.getvalue(), width
    return "image/png", png.getvalue(), width


def named_ticks_only(fig) -> None:
    """Where a log axis of ``fig`` names its ticks (``set_xticks(values, labels)``), no labels on its minor
    ticks: under a decade, matplotlib labels them too (200, 300, ... between 192 and 336), and they collide."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log" and isinstance(axis.get_major_locator(), mticker.FixedLocator):
                axis.set_minor_formatter(mticker.NullFormatter())


def save_figure(fig, path) -> int:
    """Write ``fig`` to ``path`` for a hand-written page, in the format its suffix names: ``.svg`` as
    :func:`page_image` writes SVGs, ``.png`` at :data:`PNG_SCALE` times :data:`DISPLAY_DPI`; returns its
    width on the page in CSS pixels (the ``:width:`` a PNG's figure directive needs)."""
    from pathlib import Path

    path = Path(path)
    if path.suffix == ".svg":
        fig.savefig(path, format="svg", bbox_inches="tight", dpi=DISPLAY_DPI * PNG_SCALE, metadata={"Date": None})
    else:
        fig.savefig(path, format="png", bbox_inches="tight", dpi=DISPLAY_DPI * PNG_SCALE)
    return round(_saved_width_in(fig) * DISPLAY_DPI)


def _saved_width_in(fig) -> float:
    """The width in inches of ``fig`` saved with ``bbox_inches="tight"`` (its drawing and the pad)."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    return fig.get_tightbbox(renderer).width + 2 * mpl.rcParams["savefig.pad_inches"]


def smallest_text_px(fig, column_px: float = BOOK_COLUMN_PX) -> float:
    """The size in CSS pixels of the smallest text of ``fig`` on the page: its font size at
    :data:`DISPLAY_DPI`, shrunk with the figure where the figure is wider than the text column."""
    from matplotlib.text import Text

    width_px = _saved_width_in(fig) * DISPLAY_DPI
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=float("inf")) * DISPLAY_DPI / 72 * min(1.0, column_px / width_px)


def glue_figure(name: str, fig) -> None:
    """Glue a figure for the book (``{glue:figure}``) as :func:`page_image` makes it, and close it so it
    is not shown twice."""
    from myst_nb import glue

    mime, data, width = page_image(fig)
    w, h = fig.get_size_inches()
    text = f"<Figure size {w * fig.dpi:g}x{h * fig.dpi:g} with {len(fig.axes)} Axes>"
    content = data.decode() if mime == "image/svg+xml" else base64.b64encode(data).decode()
    glue(name, _PageFigure({mime: content}, {mime: {"width": width}}, text), display=False)
    plt.close(fig)


def reconstruction_comparison(recs: dict[str, dict], n: int = 4):
    """Models side by side on the same images: the original, then for each model what its encoder saw
    (hidden patches grey) and its reconstruction with the visible patches pasted back, each image's
    hidden-pixel MSE under it. ``recs`` maps a model's label to :func:`maelib.widgets.reconstructions`'
    output for the same images."""
    labels = list(recs)
    first = recs[labels[0]]
    n = min(n, len(first["original"]))
    cols = 1 + 2 * len(labels)
    fig, axes = plt.subplots(n, cols, figsize=(1.45 * cols, 1.5 * n + 0.7), squeeze=False)
    for i in range(n):
        panels = [(first["original"][i], "original", None)]
        for label in labels:
            rec = recs[label]
            panels += [(rec["masked"][i], "shown", None), (rec["pasted"][i], "reconstructed", rec["loss"][i])]
        for ax, (img, title, loss) in zip(axes[i], panels):
            ax.imshow(img.clip(0, 1), interpolation="none")  # the pixels as they are, in an SVG too
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=SMALL_PT)
            if loss is not None:
                ax.set_xlabel(f"MSE {loss:.4f}", fontsize=SMALL_PT)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (1.5 * n + 0.7)))
    for k, label in enumerate(labels):  # each model's name over its two columns
        left, right = axes[0, 1 + 2 * k].get_position(), axes[0, 2 + 2 * k].get_position()
        fig.text((left.x0 + right.x1) / 2, right.y1 + 0.35 / (1.5 * n + 0.7), label.split(" (")[0], ha="center",
                 va="bottom", fontsize=TITLE_PT, weight="bold")
    return fig


class _PlainLogFormatter(mticker.LogFormatter):
    """A log axis's labels in the book's number format (``0.000150``, as the tables write it), not
    matplotlib's ``1.5 x 10^-4``, with the significant digits that tell neighbouring ticks apart on the
    axis's span (two to four); which ticks get a label is matplotlib's choice."""

    def _num_to_string(self, x, vmin, vmax):
        step = (abs(vmax - vmin) or abs(x)) / 5  # about the ticks' spacing
        digits = math.floor(math.log10(abs(x))) - math.floor(math.log10(step)) + 1
        return sig(x, min(4, max(2, digits)))


def plain_log_axis(axis) -> None:
    """Label a log-scaled ``axis`` (``ax.yaxis``) in the book's number format. An axis spanning less than a
    factor of three (the data drawn so far) has about five evenly spaced ticks, all labelled to the decimals
    that write each exactly (0.000175, not 0.00018): between 0.085 and 0.11 the log ticks alone would
    label only 0.090 and 0.100."""
    lo, hi = axis.get_view_interval()
    if 0 < lo < hi < 3 * lo:
        locator = mticker.MaxNLocator(5)
        ticks = locator.tick_values(lo, hi)
        decimals = next(d for d in range(max(0, -math.floor(math.log10(ticks[1] - ticks[0]))), 16)
                        if np.allclose(np.round(ticks, d), ticks, rtol=0, atol=1e-3 * (ticks[1] - ticks[0])))
        axis.set_major_locator(locator)
        axis.set_minor_locator(mticker.NullLocator())
        axis.set_major_formatter(mticker.StrMethodFormatter(f"{{x:.{decimals}f}}"))
        return
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


def curves(histories: dict[str, pd.DataFrame], metrics: tuple[str, ...], titles: tuple[str, ...] | None = None,
           xlabel: str = "epoch", logy: bool = False):
    """One panel per metric, one line per run: ``histories`` maps a label to a per-epoch DataFrame. One or
    two runs are named in the first panel's legend; more, in a legend under the panels (three names
    already covered the lines of chapter 1's accuracy panel). An accuracy (a metric named ``*acc``, a
    fraction in the histories) is drawn in percent, as the book's tables write it, and its title says so.
    A run more than twice as long as the shortest (a budget-matched arm) does not squeeze the others
    into a corner: the axis spans the shorter runs' epochs, and the long run's final value is a dotted
    line marked with its epoch. Runs differ in line style and marker too, so that one never hides
    another."""
    below = len(histories) > 2
    last = {label: int(h["epoch"].max()) for label, h in histories.items() if len(h)}
    shown_to = max((e for e in last.values() if e <= 2 * min(last.values(), default=0)), default=None)
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
    rows = -(-len(histories) // 2) if below else 0  # the legend's rows, two runs a row
    width = max(min(4.2 * len(metrics), TEXT_WIDTH_IN), 6.4 if below else 0)  # the text's width; two names a row
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 3.2 + 0.2 * rows), squeeze=False)
    for ax, metric, title in zip(axes[0], metrics, titles or metrics):
        percent = metric.endswith("acc")
        ends = []  # (value, colour, epoch) of the runs whose end lies beyond the axis
        for k, (label, h) in enumerate(histories.items()):
            if metric not in h:
                continue
            y = h[metric] * (100 if percent else 1)
            line, = ax.plot(h["epoch"], y, linestyle=styles[k % 4][0], marker=styles[k % 4][1], ms=3, label=label)
            if shown_to is not None and last[label] > shown_to:
                ends.append((float(y.iloc[-1]), line.get_color(), last[label]))
        for value, colour, epoch in ends:  # labelled in the right margin, never over the curves
            ax.axhline(value, color=colour, linestyle=":", lw=1)
            ax.annotate(f"epoch {epoch}:\n{sig(value)}", (1, value), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", ha="left", va="center", fontsize=SMALL_PT,
                        color=colour)
        title = f"{title} (%)" if percent else title
        ax.set_xlabel(xlabel)
        epochs = sorted({int(e) for h in histories.values() if metric in h for e in h["epoch"]
                         if shown_to is None or e <= shown_to})
        if shown_to is not None and shown_to < max(last.values()):
            ax.set_xlim(min(epochs, default=0) - 0.5, shown_to + 0.5)
        if xlabel == "epoch" and epochs:  # whole epochs only: no 1.5 (or 0.945) on the axis
            ax.xaxis.set_major_locator(plt.FixedLocator(epochs) if len(epochs) <= 10 else plt.MaxNLocator(integer=True))
            if len(epochs) == 1:
                ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        ax.set_title(title, fontsize=TITLE_PT)
        ax.grid(alpha=0.3)
        if logy:
            ax.set_yscale("log")
            plain_log_axis(ax.yaxis)
    if below:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False)
        fig.tight_layout(rect=(0, (0.2 * rows + 0.02) / fig.get_figheight(), 1, 1))
    else:
        axes[0, 0].legend()
        fig.tight_layout()
    return fig


MAX_LINES = 5  # lines a panel can hold and a reader still tell apart (issue #36: nine did not)


def curve_groups(groups: dict[str, dict[str, pd.DataFrame]], metric: str, ylabel: str | None = None,
                 xlabel: str = "epoch", logy: bool = False, max_lines: int = MAX_LINES):
    """One panel per group of runs, one line per run, for one metric: ``groups`` maps a panel's title to
    {run label: per-epoch DataFrame}, at most ``max_lines`` runs each (ValueError otherwise). Where
    :func:`curves` would draw nine runs on one panel, the families of runs get one row each, on a shared
    epoch axis, each with its legend at its right and its own scale: on one scale, a family 500 times worse
    than the others at its first epoch flattened their lines (Fig. 2.2). An accuracy (``*acc``) is drawn in
    percent."""
    full = {title: len(runs) for title, runs in groups.items() if len(runs) > max_lines}
    if full:
        raise ValueError(f"at most {max_lines} runs a panel, got {full}: split the group")
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v")]
    percent = metric.endswith("acc")
    fig, axes = plt.subplots(len(groups), 1, figsize=(TEXT_WIDTH_IN, 0.5 + 2.1 * len(groups)), sharex=True,
                             squeeze=False)
    epochs = sorted({int(e) for runs in groups.values() for h in runs.values() if metric in h for e in h["epoch"]})
    for ax, (title, runs) in zip(axes[:, 0], groups.items()):
        for k, (label, h) in enumerate(runs.items()):
            if metric in h:
                ax.plot(h["epoch"], h[metric] * (100 if percent else 1), linestyle=styles[k][0], marker=styles[k][1],
                        ms=3, color=f"C{k}", label=label)
        ax.set_title(title, fontsize=TITLE_PT, loc="left")
        ax.set_ylabel(ylabel or (f"{metric} (%)" if percent else metric))
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        if logy:
            ax.set_yscale("log")
            plain_log_axis(ax.yaxis)
    if xlabel == "epoch" and epochs:  # whole epochs only
        axes[-1, 0].xaxis.set_major_locator(plt.FixedLocator(epochs) if len(epochs) <= 10 else
                                            plt.MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def masking_recipe_figure(mask_ratio: float = 0.75, seed: int = 0):
    """The intro's figure: one masking call on image patches, series patches, table cells, volume patches."""
    import numpy as np
    import torch

    from .masking import random_masking

    g = torch.Generator().manual_seed(seed)
    panels = [("image: 8x8 patches\n(the reference model's 64 tokens)", (8, 8)), ("time series: 24 patches", (1, 24)),
              ("table: 6 rows x 12 cells", (6, 12)), ("volume: 3 slices of 4x4 patches", (4, 12))]
    # 2 x 2 at about the book's text width, so that the labels print at the size of the text
    fig, axes = plt.subplots(2, 2, figsize=(TEXT_WIDTH_IN, 4.6), gridspec_kw={"height_ratios": [1.3, 1]})
    for ax, (title, (h, w)) in zip(axes.flat, panels):
        rows = h if title.startswith("table") else 1
        m = random_masking(rows, h * w // rows, mask_ratio, generator=g).mask.reshape(h, w).numpy()
        hidden, seen = np.array([0.5, 0.5, 0.5]), np.array([0.62, 0.80, 0.95])  # grey as in every reconstruction
        ax.imshow(np.where(m[..., None] > 0, hidden, seen), interpolation="none")
        ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1)
        if title.startswith("volume"):
            for x in (3.5, 7.5):
                ax.axvline(x, color="black", lw=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.tick_params(which="both", length=0)  # no tick marks left of and under the grids
        ax.set_title(title, fontsize=11)
    fig.suptitle(f"random_masking(mask_ratio={mask_ratio}): grey = hidden, blue = seen by the encoder", fontsize=11)
    fig.tight_layout()
    return fig


_TIE = {"above": "away from"}  # a tie in "is 0.00 points ___ it"; "apart" elsewhere ("is 0.000 ___,")


def change_word(gap: float, up: str = "higher", down: str = "lower") -> str:
    """The word for a gap's sign, read after the gap's size: ``up`` above zero, ``down`` below, and at an
    exact tie a word the same sentence still reads with: "0.00 points away from it" where the words are
    "above"/"below", else "0.000 apart" (never "0.00 points no different it")."""
    return up if gap > 0 else down if gap < 0 else _TIE.get(up, "apart")


def spread(n_seeds: int, mean_only: bool = False) -> str:
    """What a table's cells are over ``n_seeds``: "one seed", else "mean ± standard deviation over 5 seeds"
    ("mean over 5 seeds" with ``mean_only``)."""
    if n_seeds == 1:
        return "one seed"
    return f"mean {'' if mean_only else '± standard deviation '}over {count(n_seeds, 'seed')}"


def compare_word(a: float, b: float, than: bool = False, digits: int = 3) -> str:
    """How ``a`` compares with ``b`` as the page prints them (:func:`sig` at ``digits``): "lower" or "higher"
    (with ``than``: "lower than", "higher than"), and where the printed numbers are the same, "no different
    at three significant digits" ("the same, at three significant digits, as"): never "0.000174, higher
    than the 0.000174"."""
    words = ("the same, at {n} significant digits, as", "lower than", "higher than") if than else \
        ("no different at {n} significant digits", "lower", "higher")
    n = {2: "two", 3: "three", 4: "four"}.get(digits, str(digits))
    if sig(a, digits) == sig(b, digits):
        return words[0].format(n=n)
    return words[1] if a < b else words[2]


def direction(ours: float, paper: float) -> str:
    """How one gap compares with the paper's, from the signs: "the same direction as", "the opposite
    direction to", or "no direction beside" when either is zero (followed by "the paper('s ...)")."""
    if ours * paper > 0:
        return "the same direction as"
    return "the opposite direction to" if ours * paper < 0 else "no direction beside"


def agreement(ours: dict[str, float], paper: dict[str, float]) -> str:
    """Whether each metric's gap goes the paper's way, from the signs: ``ours`` and ``paper`` map a
    metric's name to (MAE - baseline). "both in the same direction as the paper's gain", "both in the
    opposite direction to it", or which metric goes which way."""
    same = [m for m in ours if ours[m] * paper[m] > 0]
    opposite = [m for m in ours if ours[m] * paper[m] < 0]
    flat = [m for m in ours if ours[m] == 0 or paper[m] == 0]
    if len(ours) == 1:
        return f"{direction(*ours.values(), *paper.values())} the paper's gain"
    every = "both" if len(ours) == 2 else "all"
    if len(same) == len(ours):
        return f"{every} in the same direction as the paper's gain"
    if len(opposite) == len(ours):
        return f"{every} in the opposite direction to the paper's gain"
    parts = []
    if same:
        parts.append(f"{' and '.join(same)} in the same direction as the paper's gain")
    if opposite:
        parts.append(f"{' and '.join(opposite)} in the opposite direction")
    if flat:
        parts.append(f"{' and '.join(flat)} without a direction")
    return ", ".join(parts)


def count(n: int, word: str) -> str:
    """``count(1, "seed")`` -> "1 seed", ``count(5, "seed")`` -> "5 seeds": no "seed(s)" on a page."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def show_figure(fig, caption: str, name: str | None = None) -> None:
    """Show ``fig`` as a numbered, captioned figure from a cell that draws it only when there is data for
    it: the figure is glued, and the cell displays the ``{glue:figure}`` directive that places it (a
    directive in the chapter's own text would need a placeholder image when there is none). ``name`` is
    its label for ``{numref}``; by default one made from the caption."""
    from IPython.display import Markdown, display

    name = name or "fig-" + hashlib.sha1(caption.encode()).hexdigest()[:8]
    glue_figure(name, fig)
    display(Markdown(f"```{{glue:figure}} {name}\n:name: {name}\n\n{caption}\n```"))


def sweep_note(values, profile: str) -> str:
    """The one line shown instead of a sweep's figure when a run has a single point of it."""
    shown = ", ".join(f"{v:g}" for v in values)
    return (f"*No sweep to draw: this {profile}-profile run has one point ({shown}); the full profile sweeps "
            "several.*")


def message_figure(text: str):
    """A slim figure that only says ``text``: the placeholder where a figure has no data yet."""
    fig, ax = plt.subplots(figsize=(6.5, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def curve_bands(panels: dict[str, dict[str, "np.ndarray"]], ylabels: dict[str, str] | None = None):
    """One panel per entry of ``panels`` (title -> {arm label -> (seeds, epochs) values}), at most two a row:
    each arm's mean curve over seeds with a band of one standard deviation (seaborn), in one colour per arm
    across the panels, the seed count in the panel's title and one legend of the arms under them all (a
    legend per panel spilled over its neighbour)."""
    import numpy as np
    import seaborn as sns

    arms_all = list(dict.fromkeys(a for arms in panels.values() for a in arms))
    colour = dict(zip(arms_all, sns.color_palette(n_colors=max(1, len(arms_all)))))
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    width = min(TEXT_WIDTH_IN, 4.6 * cols)  # two panels share the text's width, not twice it
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.3 * rows + 0.3 * len(arms_all)), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title, arms) in zip(axes.flat, panels.items()):
        seeds = sorted({np.asarray(v).shape[0] for v in arms.values()})
        for label, values in arms.items():
            n, epochs = np.asarray(values).shape
            long = pd.DataFrame({"epoch": np.tile(np.arange(1, epochs + 1), n), "value": np.ravel(values)})
            sns.lineplot(data=long, x="epoch", y="value", errorbar="sd", err_style="band", marker="o", ms=3,
                         color=colour[label], label=label, legend=False, ax=ax)
        ax.xaxis.set_major_locator(plt.MaxNLocator(nbins=6, integer=True))
        ax.set_title(f"{title}, {count(seeds[-1], 'seed')}" if len(seeds) == 1 else title, fontsize=TITLE_PT)
        ax.set_ylabel((ylabels or {}).get(title, "validation metric"))
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colour[a], marker="o", ms=3) for a in arms_all]
    fig.legend(handles, arms_all, loc="lower center", ncol=1, frameon=False)
    fig.tight_layout(rect=(0, 0.3 * len(arms_all) / fig.get_size_inches()[1], 1, 1))
    return fig


def mean_std_lines(ax, frame: pd.DataFrame, x: str, y: str, by: str | None = None, label=None,
                   xlabel: str | None = None, ylabel: str | None = None, logy: bool = False) -> None:
    """The mean of ``y`` at each ``x`` with standard-deviation bars, one line per ``by`` group (seaborn),
    and every run as a faint dot just right of its bar, so a reader sees how many runs each point holds.

    ``label(group, stats)`` names a line (default: the group); ``stats`` has x, mean, std and count.
    """
    import seaborn as sns

    data = frame.assign(_line="all runs" if by is None else frame[by].astype(str))
    if by is not None and label is not None:
        names = {str(g): label(g, part.groupby(x)[y].agg(["mean", "std", "count"]).reset_index())
                 for g, part in frame.groupby(by, sort=False)}
        data["_line"] = data["_line"].map(names)
    hue = None if by is None else "_line"
    sns.lineplot(data=data, x=x, y=y, hue=hue, errorbar="sd", err_style="bars", marker="o",
                 err_kws={"capsize": 3}, ax=ax)
    span = float(data[x].max() - data[x].min()) or 1.0  # the runs a little right of their bar, not under its caps
    sns.scatterplot(data=data.assign(**{x: data[x] + 0.015 * span}), x=x, y=y, hue=hue, alpha=0.45, s=14,
                    legend=False, ax=ax)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)  # the ticks' size, not smaller
    if logy:
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
    ax.grid(alpha=0.3)
    if by is not None:
        ax.legend(title=None)


def provenance_note(source: dict | None) -> str:
    """A warning box (MyST) when the data read is not the registry's file (its checksum differs), else ""."""
    if not source or source.get("verified") is not False:
        return ""
    return (":::{admonition} Not the canonical data file\n:class: warning\n"
            f"`{source['file']}` (sha256 `{source['sha256'][:16]}…`) is not the file this study's registry knows "
            f"for {source['dataset']}: it passed the format checks, but its numbers are not results on the "
            "published dataset. Fetch the canonical file with `python -m maelib data fetch "
            f"{source['dataset']}`.\n:::")


def sci(value: float, digits: int = 3) -> str:
    """``value`` in scientific notation to ``digits`` significant digits (``1.74e-04``)."""
    return f"{value:.{digits - 1}e}"


def sig(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, trailing zeros kept (``2.00``, ``0.0154``,
    ``0.000174``), without an exponent from 0.0001 up; whole numbers of more digits are printed whole; text
    as it is. The one number format of the book's prose and tables."""
    if isinstance(value, str) or value is None:
        return "" if value is None else value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if value != value:
        return "n/a"
    if value == 0:
        return f"{0:.{digits - 1}f}"
    value = float(f"{value:.{digits - 1}e}")  # rounded first: 99.96 is 100, not 100.0
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{value:.0f}" if magnitude < 9 else sci(value, digits)
    if magnitude < -4:  # below 0.0001: 8.52e-05 reads better than 0.0000852
        return sci(value, digits)
    return f"{value:.{digits - 1 - magnitude}f}"


def column_cells(values, digits: int = 3, exponent: bool = False) -> list[str]:
    """A column's cells in one format: :func:`sig` each, but all in scientific notation (:func:`sci`)
    where one of them needs it, so that ``5.00e-05`` never stands above ``0.000100``, or where
    ``exponent`` says that a neighbouring column of the same quantity does."""
    numbers = [v for v in values if isinstance(v, (float, np.floating)) and v == v and v != 0]
    if exponent or (any(abs(v) < 1e-4 for v in numbers) and len(numbers) == len(values)):
        return [sci(v, digits) for v in values]
    return [sig(v, digits) for v in values]


def mean_std_cells(means, stds, digits: int = 3) -> list[str]:
    """A column of "mean ± std" cells (the mean alone where the std is NaN: one seed; "± 0" where the
    runs agree exactly), each standard deviation to ``digits - 1`` significant digits. Means and standard
    deviations share one notation: all in scientific notation where one of them needs it, so that
    ``0.000174 ± 4.9e-07`` never appears (it is ``1.74e-04 ± 4.9e-07``)."""
    numbers = [float(v) for v in [*means, *stds] if v == v and v != 0]
    fmt = sci if any(abs(v) < 1e-4 for v in numbers) else sig
    return [fmt(m, digits) if s != s else f"{fmt(m, digits)} ± {'0' if s == 0 else fmt(s, digits - 1)}"
            for m, s in zip(means, stds)]


def tokens_text(n_tokens: int, mask_ratio: float, unit: str) -> str:
    """How many tokens a sample is cut into and how many the MAE's encoder sees, for a chapter's protocol:
    "64 tokens an image, 16 of them visible in pretraining"."""
    from .masking import visible_count

    return f"{count(n_tokens, 'token')} {'an' if unit[0] in 'aeiou' else 'a'} {unit}, " \
           f"{visible_count(n_tokens, mask_ratio)} of them visible in pretraining"


def degenerate_note(n_tokens: int, mask_ratio: float, min_tokens: int | None, unit: str) -> str:
    """A warning box where a chapter's MAE task has fewer tokens a sample than its claim asks
    (:attr:`maelib.catalog.Claim.min_tokens`), the summary marking its verdict so; "" where it has enough."""
    from .masking import visible_count

    if not min_tokens or n_tokens >= min_tokens:
        return ""
    return (f":::{{admonition}} A degenerate MAE task at this scale\n:class: warning\n{count(n_tokens, 'token')} "
            f"{'an' if unit[0] in 'aeiou' else 'a'} {unit}, {visible_count(n_tokens, mask_ratio)} of them visible: too "
            f"few to infer the hidden ones from (the study asks at least {min_tokens}). The MAE has little to learn, so "
            "this run's comparison says little about MAE pretraining, and the summary marks its verdict \"not "
            "meaningful at this scale\".\n:::")


def scale_line(tokens: str, epochs: dict[str, int], data: str) -> str:
    """A chapter's scale in one line, under its title: tokens per sample and how many the MAE sees
    (:func:`tokens_text`), the epochs of each arm, and the data with its stand-in status."""
    arms = ", ".join(f"{arm} {n}" for arm, n in epochs.items())
    return f"**Scale.** {tokens}; epochs: {arms}; {data}."


def relative_change(value: float, reference: float, digits: int = 2) -> str:
    """``value`` against ``reference`` as a signed percentage, "−0.18%" for 0.9982 times: a ratio near 1
    printed to three digits reads "1.00" whichever side of 1 it lies."""
    change = 100 * (value / reference - 1) if reference else float("nan")
    if change != change:
        return ""  # nothing to compare with (a rate given, not chosen)
    return "±0%" if change == 0 else f"{'+' if change > 0 else '−'}{sig(abs(change), digits)}%"


def glue_text(name: str, value, digits: int = 3) -> None:
    """Glue ``value`` as :func:`sig` writes it (the prose's ``{glue:text}`name``` then reads as the
    tables do: ``0.000174``, never ``0.00017`` beside a table's ``0.000174``)."""
    from myst_nb import glue

    glue(name, sig(value, digits), display=False)


COMPACT_COLUMNS = 8  # a table of this many columns or more gets narrower cell padding, to keep to the text width
LONG_CELL = 20  # characters: a column with a cell or header longer than this gets a least width ...
MOST_LINES = 3  # ... at which its longest cell wraps to at most this many lines (its header one more word's worth)
WIDEST_CELL_CH = 40  # ... up to this many characters; a longer cell may wrap further


def column_widths(header: list[str], columns: list[list[str]]) -> dict[int, int]:
    """The least width, in characters (CSS ``ch``), of each column (counted from 1) whose longest cell or header
    is longer than :data:`LONG_CELL` characters: enough for its longest cell to wrap to at most
    :data:`MOST_LINES` lines, and its bold header too, with room for where words break; at most
    :data:`WIDEST_CELL_CH`. The browser's table layout would otherwise squeeze such a column to a few
    characters and wrap an interval over five lines. ``{3: 18}``: column 3 at least 18 characters wide."""
    def shown(text: str) -> int:  # the characters a reader sees: a link's text, no emphasis marks
        return len(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("*", "").replace("`", ""))

    out = {}
    for k, (head, cells) in enumerate(zip(header, columns), 1):
        cell, head_len = max(map(shown, cells), default=0), shown(head)
        if max(cell, head_len) > LONG_CELL:
            out[k] = min(WIDEST_CELL_CH, max(math.ceil(cell / MOST_LINES) + 2, math.ceil(head_len / MOST_LINES) + 4))
    return out


def table_markdown(frame: pd.DataFrame, caption: str, name: str, digits: int = 3) -> str:
    """A numbered, captioned table (MyST ``table`` directive) of ``frame``: numbers to ``digits``
    significant digits, text as it is, the index as the first column. A column of long cells keeps the least
    width of :func:`column_widths` (a style for this table's id), and a table with such a column, or of
    :data:`COMPACT_COLUMNS` columns or more, may spread into the page's margin (the book theme's
    ``full-width`` container, which hides the margin's contents while the table is in view); wider still,
    it scrolls sideways in its own box."""
    frame = frame.reset_index() if frame.index.name or not isinstance(frame.index, pd.RangeIndex) else frame
    columns = [column_cells(frame[c], digits) for c in frame.columns]
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in zip(*columns)]
    classes = [f"nowrap-{k}" for k, cells in enumerate(columns, 1) if _single_tokens(cells)]
    classes += ["compact"] if len(frame.columns) >= COMPACT_COLUMNS else []  # narrower cell padding (book.css)
    options = [f":name: {name}"] + ([f":class: {' '.join(classes)}"] if classes else [])
    table = [f":::{{table}} {caption}", *options, "", header, rule, *rows, ":::"]
    widths = column_widths([str(c) for c in frame.columns], columns)
    if not widths and len(frame.columns) < COMPACT_COLUMNS:
        return "\n".join(table)
    style = " ".join(f"#{name} td:nth-child({k}), #{name} th:nth-child({k}) {{ min-width: {w}ch; }}"
                     for k, w in widths.items())
    return "\n".join(["::::{container} full-width", *table, "::::", *([f"<style>{style}</style>"] if style else [])])


def _single_tokens(cells: list[str]) -> bool:
    """Whether a column holds numbers or dates only, each one token (``9.11e-04`` must not break at its
    hyphen; book/_static/book.css keeps such a column's cells on one line)."""
    tokens = [c for c in cells if c]
    return bool(tokens) and all(any(ch.isdigit() for ch in c) and not any(ch.isspace() for ch in c) for c in tokens)


def show_table(frame: pd.DataFrame, caption: str, name: str, digits: int = 3) -> None:
    """Display :func:`table_markdown` (the book renders it as a numbered table)."""
    from IPython.display import Markdown, display

    display(Markdown(table_markdown(frame, caption, name, digits)))


# a tick's value in full, to three significant digits (a locator's steps of 2.5: "12.5", not "12") and with
# matplotlib's minus sign: "−1.6e−05", "0.006", never an offset or a multiplier at the axis' end
TICK_IN_FULL = mticker.FuncFormatter(lambda v, _: "0" if abs(v) < 1e-15 else f"{v:.3g}".replace("-", "\u2212"))


def forest(rows: pd.DataFrame):
    """The paper's claims as a forest plot: one panel per claim (each on its own scale), one line per
    profile with runs (a claim with none says "not run" once), the profile's seeds under its name: the mean
    paired gap (right = MAE better) with its 95% interval, ticks in full (no offset at the axis' end); on which side the paper found the MAE; and, dashed, the
    paper's gap on our scale (``paper_gap``: the gap the power is computed for). ``rows`` is
    :func:`maelib.summary.claim_rows`'s frame."""
    import textwrap

    claims = list(dict.fromkeys(rows["table"]))
    unbroken = lambda text: text.replace(" ", "\u00a0")  # noqa: E731  the metric's words stay on one line
    titles = {t: textwrap.fill(f"{t}: {part['claim'].iloc[0]} ({unbroken(part['metric'].iloc[0])})", 80)
              for t, part in rows.groupby("table", sort=False)}  # within the figure's width: no 12-inch title
    extra = sum(title.count("\n") for title in titles.values())
    fig, axes = plt.subplots(len(claims), 1, figsize=(7.0, 1.5 * len(claims) + 0.9 + 0.2 * extra), squeeze=False)
    colours = {"quick": "tab:blue", "full": "tab:orange"}
    for ax, table in zip(axes[:, 0], claims):
        part = rows[rows["table"] == table]
        part = (part[part["n"] > 0] if (part["n"] > 0).any() else part.iloc[:1]).reset_index(drop=True)
        for y, r in part.iterrows():
            if r["n"] > 0:
                err = None if np.isnan(r["lo"]) else [[r["gap"] - r["lo"]], [r["hi"] - r["gap"]]]
                ax.errorbar(r["gap"], y, xerr=err, fmt="o", color=colours.get(r["profile"], "black"), capsize=3)
            else:
                ax.text(0.5, y, "not run", transform=ax.get_yaxis_transform(), ha="center",
                        va="center", fontsize=SMALL_PT, color="grey", zorder=3,  # over the zero line, not crossed by it
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        ax.axvline(0, color="grey", lw=0.8)
        paper_gap = float(part["paper_gap"].iloc[0])
        lo, hi = ax.get_xlim()
        span = max(abs(lo), abs(hi), 1e-12)
        if paper_gap == paper_gap and (part["n"] > 0).any() and abs(paper_gap) <= 4 * span:  # on our scale
            ax.axvline(paper_gap, color="black", ls="--", lw=1)
            inward = -1 if paper_gap > 0 else 1  # the label on the line's side toward zero, clear of the frame
            ax.annotate("paper", (paper_gap, 0), xycoords=("data", "axes fraction"), xytext=(3 * inward, 2),
                        textcoords="offset points", fontsize=SMALL_PT, ha="left" if inward > 0 else "right",
                        va="bottom")
            span = max(span, 1.15 * abs(paper_gap))
        elif paper_gap == paper_gap and (part["n"] > 0).any():  # so far out that our intervals would vanish
            ax.annotate(f"paper: {sig(paper_gap, 2)}, off the scale", (1 if paper_gap > 0 else 0, 0.04),
                        xycoords="axes fraction", ha="right" if paper_gap > 0 else "left", va="bottom",
                        fontsize=SMALL_PT, xytext=(-3 if paper_gap > 0 else 3, 0), textcoords="offset points")
        ax.set_xlim(-span, span)  # 0 in the middle: the two sides read as MAE worse / MAE better
        better = part["paper_gap"].iloc[0] > 0
        ax.text(0.99 if better else 0.01, 1.02, "the paper: MAE better →" if better else "← the paper: MAE worse",
                transform=ax.transAxes, ha="right" if better else "left", va="bottom", fontsize=SMALL_PT, style="italic")
        ax.set_yticks(range(len(part)), [f"{r.profile}\n(n = {r.n})" if r.n else r.profile for r in part.itertuples()])
        ax.xaxis.set_major_locator(mticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(TICK_IN_FULL)
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_title(titles[table], fontsize=TITLE_PT, loc="left", pad=16)  # clear of the paper's side above the axes
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("gap, MAE minus baseline, signed so that right = MAE better (95% interval)", fontsize=SMALL_PT)
    fig.tight_layout()
    return fig


def ratio_panels(frame: pd.DataFrame, bests: dict, claims: dict, published: dict, titles: dict | None = None):
    """The downstream metric against the pretraining mask ratio, one panel per claim of ``frame``
    (:func:`maelib.summary.ratio_frame`, one profile): every seed as a dot, the mean per ratio as a line, the
    baseline's seeds as a grey band (mean ± sd: it does not pretrain, so it has no ratio), the best ratio's
    bootstrap interval as a bracket at the top with the best mean starred (``bests``: :func:`maelib.summary.best_ratios` by
    table), and, dashed, a published ratio of the modality (``published``: table ->
    :class:`maelib.published.PublishedRatio`).
    ``claims``: table -> its :class:`~maelib.catalog.Claim`; ``titles``: table -> its panel's title."""
    import textwrap

    titles = titles or {}
    tables = list(dict.fromkeys(frame["table"]))
    cols = min(2, len(tables))
    rows = -(-len(tables) // cols)
    fig = plt.figure(figsize=(3.6 * cols, 4.6 * rows))
    grid = fig.add_gridspec(rows, 2 * cols)  # half-columns: an odd last panel sits centred, no empty slot
    spans = [grid[i // cols, 2 * (i % cols): 2 * (i % cols) + 2] for i in range(len(tables))]
    if len(tables) % cols:
        spans[-1] = grid[rows - 1, cols - 1: cols + 1]
    for span, table in zip(spans, tables):
        ax = fig.add_subplot(span)
        c, part = claims[table], frame[frame["table"] == table]
        base = part.drop_duplicates("seed")["baseline"]
        ax.axhspan(base.mean() - base.std(ddof=1), base.mean() + base.std(ddof=1), color="0.85", lw=0,
                   label=textwrap.fill(f"{c.base_label} (mean ± sd)", 34))
        ax.axhline(base.mean(), color="0.5", lw=1)
        means = part.groupby("ratio")["mae"].mean()
        ax.plot(means.index, means.values, "-o", color="C0", ms=5, label=textwrap.fill(c.mae_label, 34))
        ax.scatter(part["ratio"] + 0.012, part["mae"], s=12, color="C0", alpha=0.45, lw=0)
        best = bests.get(table)
        if best:  # the interval of a discrete choice: a bracket over the ratios it spans, at the top
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + 0.18 * (hi - lo))  # room above the data for the bracket
            ax.plot([best["low"], best["high"]], [0.93, 0.93], "-|", color="C2", lw=2, ms=8,
                    transform=ax.get_xaxis_transform(), label="best ratio (95% interval)")
            ax.plot(best["best"], means[best["best"]], "*", color="C2", ms=13, mec="black", mew=0.6)
        if table in published:
            ax.axvline(published[table].ratio, color="black", ls="--", lw=1, label=published[table].legend)
        ax.set_xlim(0, 1)
        ax.set_xlabel("pretraining mask ratio")
        ax.set_ylabel(textwrap.fill(c.metric, 28))
        ax.yaxis.set_major_locator(mticker.MaxNLocator(4))
        ax.set_title(titles.get(table, table), fontsize=TITLE_PT)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.36), frameon=False)  # under the panel, not over data
    fig.tight_layout()
    return fig


def payoff_panels(points: pd.DataFrame, arms: tuple[str, str], crossings: dict | None = None):
    """Validation top-1 against training compute, one panel per label fraction of ``points`` (one profile's
    rows of :func:`maelib.crossover.frame`, or one run's): each arm of ``arms`` (MAE, scratch) a line through
    its mean per budget, every seed a faint dot, compute on a log axis in TFLOP; where ``crossings`` (fraction
    -> :func:`maelib.crossover.crossovers`' entry) has a crossover, a dotted line there, its interval shaded."""
    fractions = sorted(points["fraction"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(fractions), figsize=(min(TEXT_WIDTH_IN, 4.4 * len(fractions)), 3.9),
                             squeeze=False)
    for ax, fraction in zip(axes[0], fractions):
        part = points[points["fraction"] == fraction]
        for k, arm in enumerate(arms):
            rows = part[part["arm"] == arm]
            means = rows.groupby("flops")["top1"].mean()
            ax.plot(means.index / 1e12, means.values, ["-o", "--s"][k % 2], color=f"C{k}", ms=4, label=arm)
            ax.scatter(rows["flops"] / 1e12, rows["top1"], s=12, color=f"C{k}", alpha=0.4, lw=0)
        c = (crossings or {}).get(float(fraction))
        if c and c["flops"] is not None:
            ax.axvline(c["flops"] / 1e12, color="black", ls=":", lw=1, label="crossover")
            if np.isfinite(c["low"]):
                ax.axvspan(c["low"] / 1e12, c["high"] / 1e12, color="0.85", lw=0, zorder=0, label="its 95% interval")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        n = part["seed"].nunique()
        ax.set_title(f"{fraction:.0%} of the labels, {count(n, 'seed')}", fontsize=TITLE_PT)
        ax.set_xlabel("training compute (TFLOP, log scale)")
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
