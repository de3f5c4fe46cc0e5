"""Figures and tables the chapters share: reconstruction rows, training curves, numbered tables, the
forest plot of the paper's claims."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def glue_figure(name: str, fig) -> None:
    """Glue a figure for the book (``{glue:figure}``) and close it so it is not shown twice."""
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def reconstruction_grid(rec: dict, n: int = 6, titles=("original", "masked", "reconstruction", "visible pasted back")):
    """One row per image: original / masked / reconstruction / reconstruction with visible patches pasted.

    ``rec`` is :func:`maelib.images.reconstructions`'s output.
    """
    keys = ("original", "masked", "reconstruction", "pasted")
    n = min(n, len(rec["original"]))
    fig, axes = plt.subplots(n, 4, figsize=(6.4, 1.65 * n), squeeze=False)
    for i in range(n):
        for j, k in enumerate(keys):
            ax = axes[i, j]
            ax.imshow(rec[k][i].clip(0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
        axes[i, 2].set_xlabel(f"hidden-patch MSE {rec['loss'][i]:.3f}", fontsize=7)
    fig.tight_layout()
    return fig


def curves(histories: dict[str, pd.DataFrame], metrics: tuple[str, ...], titles: tuple[str, ...] | None = None,
           xlabel: str = "epoch", logy: bool = False):
    """One panel per metric, one line per run: ``histories`` maps a label to a per-epoch DataFrame."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric, title in zip(axes[0], metrics, titles or metrics):
        for label, h in histories.items():
            if metric in h:
                ax.plot(h["epoch"], h[metric], marker="o", ms=3, label=label)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if logy:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def masking_recipe_figure(mask_ratio: float = 0.75, seed: int = 0):
    """The intro's figure: one masking call on image patches, series patches, table cells, volume patches."""
    import numpy as np
    import torch

    from .masking import random_masking

    g = torch.Generator().manual_seed(seed)
    panels = [("image: 8x8 patches", (8, 8)), ("time series: 24 patches", (1, 24)),
              ("table: 6 rows x 12 cells", (6, 12)), ("volume: 3 slices of 4x4 patches", (4, 12))]
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.6), gridspec_kw={"width_ratios": [1, 2.2, 1.6, 1.6]})
    for ax, (title, (h, w)) in zip(axes, panels):
        rows = h if title.startswith("table") else 1
        m = random_masking(rows, h * w // rows, mask_ratio, generator=g).mask.reshape(h, w).numpy()
        ax.imshow(np.where(m > 0, 0.15, 0.85), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1)
        if title.startswith("volume"):
            for x in (3.5, 7.5):
                ax.axvline(x, color="black", lw=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"random_masking(mask_ratio={mask_ratio}): dark = hidden, light = seen by the encoder", fontsize=10)
    fig.tight_layout()
    return fig


def message_figure(text: str):
    """A slim figure that only says ``text``: the placeholder where a figure has no data yet."""
    fig, ax = plt.subplots(figsize=(6.5, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def mean_std_lines(ax, frame: pd.DataFrame, x: str, y: str, by: str | None = None, label=None,
                   xlabel: str | None = None, ylabel: str | None = None, logy: bool = False) -> None:
    """The mean of ``y`` at each ``x`` with standard-deviation bars, one line per ``by`` group (seaborn),
    and every run behind it as a faint dot, so a reader sees how many runs each point holds.

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
    sns.scatterplot(data=data, x=x, y=y, hue=hue, alpha=0.35, s=14, legend=False, ax=ax)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y, fontsize=8)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if by is not None:
        ax.legend(fontsize=7, title=None)


def provenance_note(source: dict | None) -> str:
    """A warning box (MyST) when the data read is not the registry's file (its checksum differs), else ""."""
    if not source or source.get("verified") is not False:
        return ""
    return (":::{admonition} Not the canonical data file\n:class: warning\n"
            f"`{source['file']}` (sha256 `{source['sha256'][:16]}…`) is not the file this study's registry knows "
            f"for {source['dataset']}: it passed the format checks, but its numbers are not results on the "
            "published dataset. Fetch the canonical file with `python -m maelib data fetch "
            f"{source['dataset']}`.\n:::")


def sig(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, trailing zeros kept (``2.00``, ``0.0154``), without an
    exponent for ordinary magnitudes; whole numbers of more digits are printed whole; text as it is."""
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
        return f"{value:.0f}" if magnitude < 9 else f"{value:.{digits - 1}e}"
    if magnitude < -3:  # below 0.001: 8.52e-05 reads better than 0.0000852
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits - 1 - magnitude}f}"


def table_markdown(frame: pd.DataFrame, caption: str, name: str, digits: int = 3) -> str:
    """A numbered, captioned table (MyST ``table`` directive) of ``frame``: numbers to ``digits``
    significant digits, text as it is, the index as the first column."""
    frame = frame.reset_index() if frame.index.name or not isinstance(frame.index, pd.RangeIndex) else frame
    cell = lambda v: sig(v, digits).replace("|", "\\|")  # noqa: E731
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([f":::{{table}} {caption}", f":name: {name}", "", header, rule, *rows, ":::"])


def show_table(frame: pd.DataFrame, caption: str, name: str, digits: int = 3) -> None:
    """Display :func:`table_markdown` (the book renders it as a numbered table)."""
    from IPython.display import Markdown, display

    display(Markdown(table_markdown(frame, caption, name, digits)))


def forest(rows: pd.DataFrame):
    """The paper's claims as a forest plot: one panel per claim (each on its own scale), one line per
    profile with runs: the mean paired gap (right = MAE better) with its 95% interval and the number of
    seeds, and on which side the paper found the MAE (its numbers are on other data and scales, so only
    their direction is drawn). ``rows`` is :func:`maelib.summary.claim_rows`'s frame."""
    claims = list(dict.fromkeys(rows["table"]))
    fig, axes = plt.subplots(len(claims), 1, figsize=(7.5, 1.3 * len(claims) + 0.9), squeeze=False)
    colours = {"quick": "tab:blue", "full": "tab:orange"}
    for ax, table in zip(axes[:, 0], claims):
        part = rows[rows["table"] == table].reset_index(drop=True)
        for y, r in part.iterrows():
            if r["n"] > 0:
                err = None if np.isnan(r["lo"]) else [[r["gap"] - r["lo"]], [r["hi"] - r["gap"]]]
                ax.errorbar(r["gap"], y, xerr=err, fmt="o", color=colours.get(r["profile"], "black"), capsize=3)
                ax.annotate(f"n = {r['n']}", (r["gap"], y), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=7)
            else:
                ax.text(0.5, y, f"{r['profile']}: not run", transform=ax.get_yaxis_transform(), ha="center",
                        va="center", fontsize=7, color="grey")
        ax.axvline(0, color="grey", lw=0.8)
        lo, hi = ax.get_xlim()
        span = max(abs(lo), abs(hi), 1e-12)
        ax.set_xlim(-span, span)  # 0 in the middle: the two sides read as MAE worse / MAE better
        better = part["paper_gap"].iloc[0] > 0
        ax.text(0.99 if better else 0.01, 1.02, "the paper: MAE better →" if better else "← the paper: MAE worse",
                transform=ax.transAxes, ha="right" if better else "left", va="bottom", fontsize=7, style="italic")
        ax.set_yticks(range(len(part)), part["profile"])
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_title(f"{table}: {part['claim'].iloc[0]} ({part['metric'].iloc[0]})", fontsize=8, loc="left",
                     pad=12)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("gap, MAE minus baseline, signed so that right = MAE better (95% interval)", fontsize=8)
    fig.tight_layout()
    return fig
