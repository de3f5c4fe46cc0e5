"""Figures that read at a glance (issue #36): every figure maelib.viz draws prints its smallest text at
9 px or more in the book's text column, and goes to the page as an SVG where the file stays small, else
as a PNG at twice the resolution, shown at the same size."""

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from maelib import summary, viz  # noqa: E402


def _recs():
    rng = np.random.default_rng(0)
    one = lambda: {**{k: rng.random((4, 16, 16, 3)) for k in ("original", "masked", "reconstruction", "pasted")},  # noqa: E731
                   "loss": rng.random(4)}
    return {"MAE (this run)": one(), "reference model (10 epochs)": one()}


def _history(end: float, epochs: int = 10):
    return pd.DataFrame({"epoch": range(1, epochs + 1), "val_mse": np.linspace(0.11, end, epochs),
                         "acc": np.linspace(0.1, 0.3, epochs)})


def _mean_std():
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    frame = pd.DataFrame({"r": np.repeat([0.25, 0.5, 0.75], 3), "loss": np.linspace(0.1, 0.2, 9),
                          "arm": ["MAE", "scratch", "probe"] * 3})
    viz.mean_std_lines(ax, frame, "r", "loss", by="arm", xlabel="mask ratio", ylabel="MSE on hidden pixels")
    return fig


FIGURES = {  # every figure maker of maelib.viz, with inputs like the chapters'
    "reconstruction_comparison": lambda: viz.reconstruction_comparison(_recs()),
    "curves, two panels": lambda: viz.curves({"MAE": _history(0.09), "scratch": _history(0.1)}, ("val_mse", "acc"),
                                             ("validation MSE", "validation accuracy")),
    "curves, legend under, budget-matched": lambda: viz.curves(
        {"MAE init": _history(0.09), "scratch": _history(0.1), "scratch, budget-matched": _history(0.08, 50)},
        ("val_mse",), logy=True),
    "masking_recipe_figure": viz.masking_recipe_figure,
    "message_figure": lambda: viz.message_figure("No run of this chapter is recorded yet."),
    "curve_bands": lambda: viz.curve_bands({f"Table {i}": {"MAE init": np.ones((5, 8)), "scratch": np.zeros((5, 8))}
                                            for i in (3, 4)}),
    "forest": lambda: viz.forest(summary.claim_rows([])),
    "mean_std_lines": _mean_std,
    "curve_groups": lambda: viz.curve_groups(_series_groups(), "val_mse", "validation MSE (scaled)", logy=True),
    "ratio_panels": lambda: _ratio_panels(),
}


def _ratio_panels():
    """The summary's mask-ratio figure: two modalities, three seeds a ratio, a best ratio and a published one."""
    from maelib import published

    rows = [{"table": t, "ratio": r, "seed": s, "mae": 0.05 + r / 10 + s / 1000, "baseline": 0.05 + s / 1000}
            for t in ("PatchTST, H = 96", "Table 5") for r in (0.1, 0.4, 0.9) for s in range(3)]
    claims = {c.table: c for c in summary.CLAIMS}
    best = {"best": 0.1, "low": 0.1, "high": 0.4, "seeds": 3}
    return viz.ratio_panels(pd.DataFrame(rows), {"Table 5": best}, claims,
                            {"PatchTST, H = 96": published.MASK_RATIOS["series"]})


def test_a_log_axis_that_names_its_ticks_labels_no_minor_tick():
    """Fig. 2.3: horizons 96-720 span under a decade, so matplotlib also labelled the minor ticks (2x10^2, ...),
    over the named ones."""
    fig, ax = plt.subplots()
    ax.plot([96, 720], [1, 2])
    ax.set_xscale("log")
    ax.set_xticks([96, 192, 336, 720], ["96", "192", "336", "720"])
    viz.page_image(fig)
    assert [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()] == []
    assert [t.get_text() for t in ax.get_xticklabels()] == ["96", "192", "336", "720"]
    plt.close(fig)


def test_the_forest_plot_writes_its_ticks_in_full_and_its_seeds_by_the_profile():
    """Fig. 7.1: Table 2's gaps of 1e-5 drew ticks over an offset "1e-5" at the axis' end; "n = 20" sat on
    the paper's dashed line."""
    rows = summary.claim_rows([])
    rows.loc[(rows["table"] == "Table 2") & (rows["profile"] == "quick"), ["n", "gap", "lo", "hi"]] = [9, -1e-5, -1.6e-5, -5e-6]
    fig = viz.forest(rows)
    fig.canvas.draw()
    ax = fig.axes[[t for t in dict.fromkeys(rows["table"])].index("Table 2")]
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert any(t.get_text().endswith("e\u221205") for t in ax.get_xticklabels())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["quick\n(n = 9)"]
    assert not [t for t in ax.texts if t.get_text().startswith("n = ")]
    plt.close(fig)


def _series_groups():
    """Chapter 2's nine validation curves, in their three families."""
    return {"recurrent": {m: _history(0.09 + 0.002 * i) for i, m in enumerate(("RNN", "LSTM", "GRU"))},
            "transformer forecaster, input masked": {f"input mask {r}": _history(0.095 + r / 100)
                                                     for r in (0, 0.25, 0.5, 0.75)},
            "patch transformer": {"MAE-pretrained": _history(0.1), "scratch": _history(0.093)}}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_prints_its_smallest_text_at_9_px_in_the_books_column(name):
    """The tour measured 7-8 px legends. Each figure's smallest text, at the size the page shows the
    figure (DISPLAY_DPI, shrunk to the 688-px column where the figure is wider), is 9 px or more."""
    fig = FIGURES[name]()
    try:
        assert viz.smallest_text_px(fig) >= viz.MIN_TEXT_PX, (name, viz.smallest_text_px(fig))
    finally:
        plt.close(fig)


def test_a_font_made_too_small_is_caught():
    """The measure sees a small legend, and a figure so wide that the page shrinks its text."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], label="a line")
    ax.legend(fontsize=6)
    assert viz.smallest_text_px(fig) < viz.MIN_TEXT_PX  # 6 pt: 8.3 px
    plt.close(fig)
    wide, ax = plt.subplots(figsize=(16, 3))
    ax.plot([0, 1])
    ax.set_xlabel("ten points, on a figure shrunk to the column", fontsize=10)
    assert viz.smallest_text_px(wide) < viz.MIN_TEXT_PX
    assert viz.smallest_text_px(wide, column_px=1600) >= viz.MIN_TEXT_PX
    plt.close(wide)


def test_the_text_sizes_are_set_in_one_place_at_about_the_texts_size():
    """viz sets matplotlib's sizes once, on import: labels at 11 pt (15 px on the page), ticks and legends
    at 10 pt, never below the 9-px floor even in a figure of the text's width."""
    for key, size in viz.FONT_SIZES.items():
        assert plt.rcParams[key] == size, key
    floor = viz.MIN_TEXT_PX * 72 / viz.DISPLAY_DPI / min(1, viz.BOOK_COLUMN_PX / (viz.TEXT_WIDTH_IN * viz.DISPLAY_DPI))
    assert min(viz.FONT_SIZES.values()) >= floor + 2


def _glued(monkeypatch, fig):
    import myst_nb

    got = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: got.update(name=name, value=value))
    viz.glue_figure("fig_x", fig)
    data, metadata = got["value"]._repr_mimebundle_()
    return data, metadata


def test_a_line_figure_goes_to_the_page_as_a_small_svg_at_its_size(monkeypatch):
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.plot(np.arange(10), np.arange(10) ** 2, marker="o", label="loss")
    ax.set_xlabel("epoch")
    ax.legend()
    data, metadata = _glued(monkeypatch, fig)
    assert set(data) == {"image/svg+xml", "text/plain"}
    svg = data["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and len(svg.encode()) <= viz.SVG_MAX_BYTES
    width = metadata["image/svg+xml"]["width"]
    assert 500 <= width <= 6.5 * viz.DISPLAY_DPI  # cropped to the drawing, at 100 px an inch
    assert "Date" not in svg and "<dc:date>" not in svg  # the same figure, the same bytes
    assert not plt.fignum_exists(fig.number)  # closed: not shown a second time


def test_a_heavy_figure_goes_to_the_page_as_a_png_at_twice_its_size(monkeypatch):
    """Many points make a large SVG: such a figure is a PNG with twice the pixels of its page width."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.scatter(rng.random(30_000), rng.random(30_000), s=2)
    data, metadata = _glued(monkeypatch, fig)
    assert set(data) == {"image/png", "text/plain"}
    png = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    width = metadata["image/png"]["width"]
    assert abs(png.width - viz.PNG_SCALE * width) <= 2, (png.width, width)


def test_a_hand_written_pages_figure_is_saved_as_the_chapters_are(tmp_path):
    """The introduction's figure (maelib/book.py draws it) can be saved as an SVG, dated nowhere."""
    fig = viz.masking_recipe_figure()
    width = viz.save_figure(fig, tmp_path / "recipe.svg")
    svg = (tmp_path / "recipe.svg").read_bytes()
    assert svg.lstrip().startswith(b"<?xml") and len(svg) <= viz.SVG_MAX_BYTES and b"<dc:date>" not in svg
    assert 600 <= width <= viz.TEXT_WIDTH_IN * viz.DISPLAY_DPI
    plt.close(fig)


def test_runs_in_families_get_a_panel_each_of_at_most_five_lines():
    """Issue #36: Fig. 2.2 drew nine overlapping lines. curve_groups gives each family of runs its own row,
    on its own scale (one family 500x worse flattened the others on a shared one), with at most MAX_LINES
    lines and its own legend beside it; a family of more is refused."""
    groups = _series_groups()
    worse = groups["transformer forecaster, input masked"]["input mask 0.75"]
    worse.loc[0, "val_mse"] = 50.0  # 500x the others at its first epoch, as in Fig. 2.2
    fig = viz.curve_groups(groups, "val_mse", "validation MSE (scaled)", logy=True)
    axes = fig.axes
    assert len(axes) == 3 and all(len(ax.get_lines()) <= viz.MAX_LINES for ax in axes)
    assert [len(ax.get_lines()) for ax in axes] == [3, 4, 2]
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes] == [list(g) for g in groups.values()]
    fig.canvas.draw()
    for ax in axes:  # each row on its own scale: its lines fill it, with labelled ticks in its range
        lo, hi = min(min(line.get_ydata()) for line in ax.get_lines()), max(max(line.get_ydata()) for line in ax.get_lines())
        assert ax.get_ylim()[1] < 3 * hi and ax.get_ylim()[0] > lo / 3, ax.get_title()
        assert [t.get_text() for t in ax.get_yticklabels() if lo / 3 <= t.get_position()[1] <= 3 * hi and t.get_text()]
    for ax in axes:  # each legend beside its panel, never over its lines
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    assert fig.get_size_inches()[0] <= viz.TEXT_WIDTH_IN
    plt.close(fig)
    with pytest.raises(ValueError, match="at most 5 runs a panel"):
        viz.curve_groups({"all": {f"run {i}": _history(0.1) for i in range(9)}}, "val_mse")


def test_a_tick_in_full_keeps_a_quarter_step():
    """The reviewer: two significant digits printed 12.5 as "12" and 17.5 as "18" under MaxNLocator's 2.5 steps."""
    assert [viz.TICK_IN_FULL(v, None) for v in (12.5, 17.5, -1.6e-5, 0.0, 0.006)] == [
        "12.5", "17.5", "\u22121.6e\u221205", "0", "0.006"]


def test_an_odd_last_mask_ratio_panel_is_centred_not_beside_an_empty_slot():
    """The tour: three modalities drew a 2 x 2 grid with an empty fourth slot. The third panel sits centred
    under the first two, and the figure has no empty axes."""
    from maelib import published

    rows = [{"table": t, "ratio": r, "seed": s, "mae": 0.05 + r / 10 + s / 1000, "baseline": 0.05 + s / 1000}
            for t in ("PatchTST, H = 96", "Table 5", "Table 1") for r in (0.1, 0.4, 0.9) for s in range(3)]
    claims = {c.table: c for c in summary.CLAIMS}
    fig = viz.ratio_panels(pd.DataFrame(rows), {}, claims, {"PatchTST, H = 96": published.MASK_RATIOS["series"]})
    assert len(fig.axes) == 3 and all(ax.lines for ax in fig.axes)
    first, second, third = (ax.get_position() for ax in fig.axes)
    middle = (first.x0 + second.x1) / 2
    assert third.y1 < first.y0 and abs((third.x0 + third.x1) / 2 - middle) < 0.02
    plt.close(fig)
