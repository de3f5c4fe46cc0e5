"""What a reader meets on the pages: sentences generated from the signs of their numbers, sections and
figures that show something or say in one line that there is nothing yet, downloadable notebooks without
stderr noise, and a rerun with another mask ratio that reuses the default setting's learning rates."""

import json
import math
import re

import nbformat
import pytest

from maelib import book, claim_tables, estimates, profiles, provenance, summary, tuning, viz
from test_summary import record


# --- sentences generated from signs (item 6) ---------------------------------------------------------

def test_two_metrics_that_go_opposite_ways_are_not_called_the_papers_direction():
    """Chapter 3's sentence: accuracy lower, mIoU higher, against a paper whose MAE gains on both."""
    paper = {"pixel accuracy": 1.2, "mIoU": 0.01}
    mixed = viz.agreement({"pixel accuracy": -0.3, "mIoU": 0.002}, paper)
    assert mixed == "mIoU in the same direction as the paper's gain, pixel accuracy in the opposite direction"
    assert viz.agreement({"pixel accuracy": 0.3, "mIoU": 0.002}, paper) == "both in the same direction as the paper's gain"
    assert viz.agreement({"pixel accuracy": -0.3, "mIoU": -0.002}, paper) == ("both in the opposite direction to the "
                                                                             "paper's gain")
    assert viz.agreement({"pixel accuracy": 0.3, "mIoU": -0.002}, paper).startswith("pixel accuracy in the same")


@pytest.mark.parametrize("ours, paper, expected", [(0.5, 2.0, "the same direction as"), (-0.5, 2.0, "the opposite "
                         "direction to"), (0.5, -2.0, "the opposite direction to"), (-0.5, -2.0, "the same direction as"),
                         (0.0, 2.0, "no direction beside")])
def test_one_gap_against_the_papers_with_either_sign(ours, paper, expected):
    assert viz.direction(ours, paper) == expected


def test_change_words_follow_the_sign():
    assert [viz.change_word(g) for g in (0.1, -0.1, 0.0)] == ["higher", "lower", "apart"]
    assert [viz.change_word(g, "above", "below") for g in (0.1, -0.1, 0.0)] == ["above", "below", "away from"]


@pytest.mark.parametrize("chapter, sizes, words", [
    ("images", {"gain": "#.3g"}, {"gain_word": ("above", "below")}),
    ("segmentation", {"d_acc": ".1f", "d_miou": "#.3g"}, {"acc_word": (), "miou_word": ()}),
    ("volumes", {"d_dice": "#.3g"}, {"dice_word": ()})])
@pytest.mark.parametrize("gap", [1.5, -1.5, 0.0])
def test_each_chapters_gap_sentence_reads_with_either_sign_and_at_a_tie(chapter, sizes, words, gap):
    """The chapter's own sentence, its size and sign glues filled as the notebook fills them (the size
    as abs(gap), the word from viz.change_word): at a tie it reads "0.00 points away from it", never
    "0.00 points no different it"."""
    text = " ".join(line.lstrip("# ") for line in provenance.chapters()[chapter].read_text().splitlines())
    for key, fmt in sizes.items():
        text = re.sub(r"\{glue:text\}`" + key + r"(:[^`]*)?`", format(abs(gap), fmt.lstrip(":")), text)
    for key, args in words.items():
        text = text.replace("{glue:text}`" + key + "`", viz.change_word(gap, *args))
    for key in sizes:
        assert "{glue:text}`" + key not in text
    for bad in ("no different it", "no different,", "points apart it", "away from,"):
        assert bad not in text, (chapter, gap)
    if gap == 0:
        assert re.search(r"0\.0+ (points )?(away from it|apart)", text), chapter
    assert viz.count(1, "seed") == "1 seed" and viz.count(5, "seed") == "5 seeds"


def test_no_chapter_decides_a_direction_from_one_sign_alone():
    """The chapters word their gaps with viz.direction/agreement/change_word, never an inline
    ``"higher" if d > 0 else "lower"`` that assumes the paper's sign or ignores a tie."""
    for chapter, path in provenance.chapters().items():
        text = path.read_text()
        assert not re.search(r'"(the same direction as|higher|above|lower|beats)" if ', text), chapter


def test_a_comparison_word_follows_the_printed_numbers():
    """'0.000174, higher than the 0.000174': a tie at the printed precision is said as one."""
    assert viz.compare_word(0.0001740, 0.0001741) == "no different at three significant digits"
    assert viz.compare_word(0.0001740, 0.0001741, than=True) == "the same, at three significant digits, as"
    assert viz.compare_word(0.000173, 0.000174) == "lower" and viz.compare_word(2.0, 1.0, than=True) == "higher than"


# --- empty parts (item 5) ----------------------------------------------------------------------------

def _displayed_markdown(monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **_: shown.append(obj.data))
    return shown


def test_an_empty_recorded_runs_section_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(provenance, "RECORDS", tmp_path)
    monkeypatch.setattr(summary, "load", lambda root=None: [])
    shown = _displayed_markdown(monkeypatch)
    claim_tables.show_recorded("images", "full")
    assert len(shown) == 1 and "\n" not in shown[0].strip() and shown[0].startswith("*None yet")
    for chapter, path in provenance.chapters().items():  # and the chapter adds no paragraph of its own above it
        text = path.read_text()
        if "## Recorded full-scale runs" in text:
            after = text.split("## Recorded full-scale runs", 1)[1].split("# %%", 1)[0]
            assert after.strip("#\n ") == "", (chapter, after)


def test_a_run_with_one_missing_rate_shows_a_line_not_a_placeholder_figure():
    note = viz.sweep_note([0.2], "quick")
    assert "\n" not in note and "0.2" in note and "quick" in note
    text = provenance.notebook_of("tabular").read_text()
    assert "message_figure" not in text and "fig_sweep" not in text  # no placeholder image, no figure number


# --- noise in the downloads (item 8) -----------------------------------------------------------------

def test_the_downloadable_notebook_has_no_stderr_output(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nText."), nbformat.v4.new_code_cell("x = 1")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text="pretraining: 40%|####   | 2/5\n"),
                           nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    staged = book._with_header(path, ["provenance"])
    outputs = [o for c in staged.cells if c.cell_type == "code" for o in c.outputs]
    assert [o.name for o in outputs] == ["stdout"]


def test_the_parameter_cells_fold_under_bars_that_say_what_they_hold(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("seed = 0"),
                nbformat.v4.new_code_cell("seed = 1"), nbformat.v4.new_code_cell("x = 1")]
    for cell, tag in zip(nb.cells[1:3], ("parameters", "injected-parameters")):
        cell.metadata["tags"] = [tag]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    staged = book._with_header(path, ["provenance"]).cells[-3:]
    assert [c.metadata.get("mystnb", {}).get("code_prompt_show") for c in staged] == [
        "Show the chapter's parameters and their defaults", "Show the parameters this run was given", None]
    assert all("hide-input" in c.metadata["tags"] for c in staged[:2]) and "tags" not in staged[2].metadata


def test_the_downloadable_notebook_carries_no_local_path(tmp_path):
    """Item 8: papermill's temporary input and output paths and the glued checkpoint path of the machine
    that ran the chapter (``/home/me/mae/results/models/...``) leave the download; the repository's files
    are named from its root."""
    root = tmp_path / "repo"
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": f"{root}/book/executed/.running-1-x/a.source.ipynb",
                                "output_path": f"{root}/book/executed/.running-1-x/a.ipynb", "duration": 1.0}
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nText."), nbformat.v4.new_code_cell(f"d = '{root}/x'")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "application/papermill.record/text/plain": f"{{'checkpoint': '{root}/results/models/m.pt'}}",
        "text/plain": f"'{root}/results/models/m.pt'", "image/png": "iVBORw0KGgo="}),  # a glue and its text
        nbformat.v4.new_output("stream", name="stdout", text=f"saved {root}/results/runs/r.json\n")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    staged = book._with_header(path, ["provenance"], root)
    text = nbformat.writes(staged)
    assert str(root) not in text and str(tmp_path) not in text
    assert "results/models/m.pt" in text and "results/runs/r.json" in text
    assert staged.metadata["papermill"] == {"duration": 1.0}


# --- a rerun with another mask ratio (item 9) --------------------------------------------------------

def _registry(tmp_path, chapter="images", arms=("MAE + fine-tune", "scratch")):
    """The seed-0 run of the default setting at the quick profile, with its choice of learning rates for
    ``arms`` (the first 2e-3, the others 4e-3)."""
    resolved = {**vars(profiles.resolve(chapter, "quick")), "seed": 0}
    r = record(chapter, 0, 0.3, 0.3, code=provenance.version(chapter), parameters=resolved)
    rates = {arm: 2e-3 if i == 0 else 4e-3 for i, arm in enumerate(arms)}
    grid = {arm: {str(lr): 40.0 - 10 * i} for i, (arm, lr) in enumerate(rates.items())}
    r["metrics"].update({"lr": rates, "lr_grid": grid})
    (tmp_path / "r0.json").write_text(json.dumps(r))
    return resolved


def test_a_rerun_that_changes_only_the_mask_ratio_reuses_the_default_settings_learning_rates(tmp_path):
    default = _registry(tmp_path)
    rerun = {**default, "mask_ratio": 0.5}
    assert tuning.recorded("images", rerun, root=tmp_path) is None  # a setting of its own, not chosen yet
    borrowed = tuning.borrowed("images", rerun, root=tmp_path)
    assert borrowed["lr"] == {"MAE + fine-tune": 2e-3, "scratch": 4e-3} and borrowed["borrowed"] == ["mask_ratio"]
    assert "reused because this run changes only what pretraining does (mask_ratio)" in tuning.source(borrowed)
    assert "-p tune true" in tuning.source(borrowed)
    for other in ({"mask_ratio": 0.5, "tune": True}, {"mask_ratio": 0.5, "finetune_epochs": 9}, {}):
        assert tuning.borrowed("images", {**default, **other}, root=tmp_path) is None, other


def test_a_volumes_rerun_with_another_mask_ratio_borrows_the_default_settings_rates(tmp_path):
    """Volumes' arms share one ``lr`` but, since 2026-12-07, it has a ``tune``: a mask-ratio rerun borrows the
    default setting's choice as images and segmentation do, so the sweep runs its seeds side by side, and
    a rerun that chooses is still said and still goes first (``estimates.will_choose``; tuning's own answer
    would say that no volumes run ever chooses)."""
    from maelib import volumes

    default = _registry(tmp_path, "volumes", ("MAE init", "scratch", volumes.MATCHED))
    assert default["tune"] is False  # the profile's: borrow
    rerun = {**default, "mask_ratio": 0.5}
    borrowed = tuning.borrowed("volumes", rerun, root=tmp_path)
    assert borrowed["borrowed"] == ["mask_ratio"] and set(borrowed["lr"]) == {"MAE init", "scratch", volumes.MATCHED}
    assert not estimates.will_choose("volumes", rerun, tmp_path)  # its seeds need not wait for seed 0
    assert "reuses the learning rates chosen for the default setting" in estimates.note("volumes", rerun, root=tmp_path)
    assert estimates.will_choose("volumes", {**rerun, "tune": True}, tmp_path)
    assert "9 extra trainings" in estimates.note("volumes", {**rerun, "tune": True}, root=tmp_path)  # 3 arms, 3 rates
    assert not estimates.will_choose("volumes", {**rerun, "tune": True, "lr": 1e-3}, tmp_path)  # the rate is given
    assert estimates.will_choose("volumes", {**default, "epochs": 3}, tmp_path)  # another schedule: a choice of its own
    (tmp_path / "none").mkdir()
    assert estimates.will_choose("volumes", default, tmp_path / "none")  # nothing recorded: seed 0 chooses first
    assert not estimates.will_choose("volumes", default, tmp_path)  # the default's own choice, reused


def test_a_rerun_says_before_it_starts_whether_it_chooses_learning_rates_again(tmp_path):
    default = _registry(tmp_path)
    assert estimates.note("images", default, root=tmp_path) is None  # its own setting's choice, reused
    note = estimates.note("images", {**default, "mask_ratio": 0.5}, root=tmp_path)
    assert "reuses the learning rates chosen for the default setting" in note and "-p tune true" in note
    note = estimates.note("images", {**default, "mask_ratio": 0.5, "tune": True}, root=tmp_path)
    assert "9 extra trainings" in note and "3 arms" in note
    note = estimates.note("images", {**default, "finetune_epochs": 9}, root=tmp_path)
    assert note.startswith("images: no recorded choice for this setting and code")
    tab = vars(profiles.resolve("tabular", "quick"))  # no tune parameter: it chooses unless a rate is given
    assert "chooses each network's learning rate" in estimates.note("tabular", tab, root=tmp_path)
    assert estimates.note("tabular", {**tab, "lr": 1e-3}, root=tmp_path) is None


def test_tune_is_a_parameter_of_the_chapters_that_choose_learning_rates():
    for chapter in ("images", "segmentation"):
        assert profiles.resolve(chapter, "quick").tune is False
        assert profiles.resolve(chapter, "quick", tune="true").tune is True
        assert "tune = None" in provenance.notebook_of(chapter).read_text()
    assert "tune" in tuning.CONTROL  # the same setting, whoever chose its learning rates


def test_a_table_column_keeps_one_number_format():
    """Item 7: 5.00e-04 never stands above 0.00100 in one column: both without an exponent, and a column
    that needs one (below 0.0001) has it in every cell."""
    import pandas as pd

    md = viz.table_markdown(pd.DataFrame({"lr": [5e-4, 1e-3, 2e-3], "acc": [0.5, 0.25, 0.125]}), "c", "t")
    assert "| 0.000500 | 0.500 |" in md and "| 0.00100 | 0.250 |" in md and "e-0" not in md
    md = viz.table_markdown(pd.DataFrame({"p": [5e-5, 1e-3]}), "c", "t")
    assert "| 5.00e-05 |" in md and "| 1.00e-03 |" in md


def test_one_number_format_for_prose_and_tables():
    """Item 7: the prose's 0.00017 beside a table's 1.74e-04 - both are now viz.sig's 0.000174."""
    assert [viz.sig(v) for v in (1.74e-4, 5e-4, 1e-3, 0.0154, 45.27, 8.52e-5)] == [
        "0.000174", "0.000500", "0.00100", "0.0154", "45.3", "8.52e-05"]
    cells = viz.mean_std_cells([1.74e-4, 0.0196, 0.5], [float("nan"), 0.0012, 0.031])
    assert cells == ["0.000174", "0.0196 ± 0.0012", "0.500 ± 0.031"]


def test_a_mean_and_its_spread_share_one_notation():
    """The tour's series Table 4 printed ``0.000174 ± 4.9e-07`` beside ``0.00869 ± 0.00016``, and ``± 0.0``
    for the deterministic floors: one notation per column, and an exact zero spread as ``± 0``."""
    cells = viz.mean_std_cells([1.74e-4, 8.69e-3, 1.71e-4], [4.9e-7, 1.6e-4, 0.0])
    assert cells == ["1.74e-04 ± 4.9e-07", "8.69e-03 ± 1.6e-04", "1.71e-04 ± 0"]
    assert viz.mean_std_cells([0.0196, 0.5], [0.0, 0.031]) == ["0.0196 ± 0", "0.500 ± 0.031"]


def test_no_chapter_writes_a_tables_metric_in_its_own_format_in_the_prose():
    """The prose shows an MSE, accuracy, mIoU or Dice through a text glue made by viz.glue_text, never as
    ``{glue:text}`pers_mse:.5f``` (0.00017 beside the table's 0.000174)."""
    for chapter, path in provenance.chapters().items():
        own = re.findall(r"\{glue:text\}`(\w*(?:mse|acc|acc_ft|acc_scratch|acc_probe|miou|dice|cat)):[^`]*`", path.read_text())
        own = [name for name in own if not name.startswith(("d_", "paper_"))]  # gaps and the paper's: in no table
        assert not own, (chapter, own)


def test_a_p_value_in_e_notation_never_breaks_at_its_hyphen():
    """The tour: the claims table's p cell wrapped as "1.4e-" / "17", while the gap cells beside it, written
    with a non-breaking hyphen, stayed whole."""
    assert claim_tables._p_text(1.4e-17) == f"1.4e{claim_tables.NB_HYPHEN}17"
    assert claim_tables._p_text(0.0025) == "0.0025"
    # the sign-flip p is a multiple of 1/2^n: five seeds' least, 1/16, prints whole, as the summary's text says
    row = {"p": 0.0005, "p_holm": 0.0025, "p_flip": 0.0625}
    assert claim_tables._p_cells(row) == "0.00050 / 0.0025 / 0.0625"


def test_a_column_of_numbers_is_kept_on_one_line():
    """Item 7: 9.11e-04 does not break at its hyphen: a column of single-token numbers gets a nowrap class
    (book/_static/book.css), a column of words or of "mean ± std" cells does not."""
    import pandas as pd

    md = viz.table_markdown(pd.DataFrame({"model": ["a b", "c"], "mse": [9.11e-5, 1e-3], "both": ["1 ± 2", "3"]})
                            .set_index("model"), "c", "t")
    assert ":class: nowrap-2\n" in md
    from conftest import ROOT

    css = (ROOT / "book" / "_static" / "book.css").read_text()
    assert "table.nowrap-2 td:nth-child(2)" in css and "white-space: nowrap" in css
    assert "book.css" in (ROOT / "_config.yml").read_text()


def test_a_table_of_many_columns_keeps_to_the_text_width():
    """Item 7: the summary's evidence table (eleven columns) was 912 px wide in 688, its caption cut: its p
    values and power now share columns, and a table of many columns gets narrower cell padding."""
    import pandas as pd

    from conftest import ROOT

    wide = viz.table_markdown(pd.DataFrame({f"c{k}": ["a b"] for k in range(viz.COMPACT_COLUMNS)}), "c", "t")
    narrow = viz.table_markdown(pd.DataFrame({f"c{k}": ["a b"] for k in range(viz.COMPACT_COLUMNS - 1)}), "c", "t")
    assert ":class: compact" in wide and "compact" not in narrow
    assert "table.compact" in (ROOT / "book" / "_static" / "book.css").read_text()
    records = [record("images", s, 0.40 + 0.01 * s, 0.30) for s in range(5)]
    evidence = claim_tables.evidence_table(records)
    assert len(evidence.reset_index().columns) <= 9 and evidence.iloc[0].iloc[-3].endswith(")")


def test_a_column_of_long_cells_keeps_a_width_at_which_they_wrap_to_three_lines():
    """#34 item 6: the summary's intervals wrapped over five lines in columns squeezed to a few characters.
    A column with a cell or header past LONG_CELL characters gets a least width for this table's id, at which
    its longest cell takes at most three lines, and the table may spread into the page's margin; a table
    of short cells and few columns is left as it was."""
    import pandas as pd

    interval = "-1.02e-05 [-1.66e-05, -5.00e-06] (n = 9), quick"
    frame = pd.DataFrame({"claim": ["Table 1", "Table 2"], "gap [95% CI] (n)": [interval, "0.1 [0, 1]"],
                          "see [the paper](https://arxiv.org)": ["a", "b"]}).set_index("claim")
    md = viz.table_markdown(frame, "c", "table-x")
    assert viz.column_widths(["claim", "gap [95% CI] (n)", "see [the paper](https://arxiv.org)"],
                             [["Table 1"], [interval], ["a"]]) == {2: math.ceil(len(interval) / 3) + 2}
    assert md.startswith("::::{container} full-width\n:::{table} c\n:name: table-x")
    assert f"#table-x td:nth-child(2), #table-x th:nth-child(2) {{ min-width: {math.ceil(len(interval) / 3) + 2}ch; }}" in md
    assert viz.column_widths(["h"], [["x" * 500]]) == {1: viz.WIDEST_CELL_CH}
    short = viz.table_markdown(pd.DataFrame({"lr": [1e-3], "acc": [0.5]}), "c", "t")
    assert short.startswith(":::{table}") and "<style>" not in short and "container" not in short


def test_epoch_axes_have_whole_epochs_only():
    """Item 7: no 1.5 or 0.945 on an epoch axis, for one epoch or many."""
    import pandas as pd

    for n in (1, 3, 40):
        h = pd.DataFrame({"epoch": range(1, n + 1), "loss": [1.0 / (e + 1) for e in range(n)]})
        ax = viz.curves({"run": h}, ("loss",)).axes[0]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (n, ticks)


# --- citations (item 8) -------------------------------------------------------------------------------

def _cited_keys() -> set[str]:
    """Every key of a {cite}`a,b` role in the book's hand-written pages and the chapters' sources."""
    from conftest import ROOT

    texts = [p.read_text() for p in [*(ROOT / "book").glob("*.md"), *(ROOT / "notebooks").glob("*.py")]]
    return {k.strip() for t in texts for group in re.findall(r"\{cite[pt]?\}`([^`]+)`", t) for k in group.split(",")}


def test_every_reference_is_cited_and_every_citation_has_a_reference():
    from conftest import ROOT

    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    assert keys - _cited_keys() == set(), "references the book never cites"
    assert _cited_keys() - keys == set(), "citations without a reference"


def test_each_dataset_of_the_data_table_cites_its_source():
    from conftest import ROOT

    intro = (ROOT / "book" / "intro.md").read_text().split("## Data and licences", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in intro.splitlines() if line.startswith("| ") and not line.startswith("| dataset")]
    assert rows and all("{cite}`" in row for row in rows), [r.split("|")[1] for r in rows if "{cite}" not in r]


def test_a_legend_of_many_runs_stands_under_the_panels_not_over_the_lines():
    """Item 7: Figure 6's nine names covered half of the plot."""
    import pandas as pd

    runs_ = {f"transformer forecaster, input mask 0.{i}": pd.DataFrame({"epoch": [1, 2, 3], "val_mse": [3.0, 2.0, 1.0]})
             for i in range(9)}
    fig = viz.curves(runs_, ("val_mse",))
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(fig.legends) == 1
    fig.canvas.draw()
    legend, panel = fig.legends[0].get_window_extent(), ax.get_tightbbox()
    assert legend.y1 <= panel.y0 + 1, (legend, panel)  # wholly under the panel and its axis labels
    few = viz.curves(dict(list(runs_.items())[:2]), ("val_mse",))
    assert few.axes[0].get_legend() is not None and not few.legends


def test_a_budget_matched_run_does_not_squeeze_the_per_epoch_comparison():
    """The tour: chapter 3's 50-epoch budget-matched curve pushed the 10-epoch MAE and scratch curves into
    the left fifth of each panel, and in chapter 4 the MAE line hid under the scratch one. The axis spans
    the short runs; the long run's end is a dotted line marked with its epoch and value; no two runs share
    a line style."""
    import pandas as pd

    short = lambda v: pd.DataFrame({"epoch": range(1, 11), "miou": [v] * 10})  # noqa: E731
    long_ = pd.DataFrame({"epoch": range(1, 51), "miou": [0.2] * 49 + [0.465]})
    fig = viz.curves({"MAE init": short(0.33), "scratch": short(0.33), "scratch, budget-matched": long_}, ("miou",))
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 11, ax.get_xlim()
    assert [t.get_text() for t in ax.texts] == ["epoch 50:\n0.465"]
    fig.canvas.draw()  # the label stands in the margin right of the panel, off the curves
    assert ax.texts[0].get_window_extent().x0 >= ax.get_window_extent().x1
    assert any(list(line.get_ydata()) == [0.465, 0.465] for line in ax.lines)  # the dotted end
    curves = [line for line in ax.lines if len(line.get_xdata()) > 2]
    assert len({(line.get_linestyle(), line.get_marker()) for line in curves}) == 3
    even = viz.curves({"a": short(0.3), "b": short(0.4)}, ("miou",)).axes[0]
    assert not even.texts and even.get_xlim()[1] < 11


def test_a_figure_drawn_only_when_there_is_data_is_still_a_numbered_figure(monkeypatch):
    """The tour: chapter 6's reruns figure and the summary's per-epoch bands were a bare image over an italic
    paragraph, the only figures without a number. show_figure glues the figure and displays the
    ``{glue:figure}`` directive that places it, named, so Sphinx numbers it (Fig. 6.2)."""
    import IPython.display
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    fig, _ = plt.subplots()
    viz.show_figure(fig, "Top-1 against the mask ratio.")
    directive = [o.data for o in shown if isinstance(o, IPython.display.Markdown)]
    assert len(directive) == 1 and directive[0].startswith("```{glue:figure} fig-"), directive
    name = directive[0].split()[1]
    assert f":name: {name}" in directive[0] and directive[0].rstrip().endswith("Top-1 against the mask ratio.\n```")
    assert not any(isinstance(o, plt.Figure) for o in shown)  # glued, not shown bare above its caption


def test_a_log_axis_writes_its_numbers_as_the_tables_do():
    """Item 7: 1.56 x 10^-4 on an axis beside 0.000156 in the table; and neighbouring ticks stay apart."""
    import pandas as pd

    runs_ = {f"r{i}": pd.DataFrame({"epoch": [1, 2], "val_mse": [1.48e-4 + 1e-6 * i, 1.5e-4]}) for i in range(9)}
    fig = viz.curves(runs_, ("val_mse",), logy=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    ticks = [(t.get_position()[1], t.get_text()) for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    shown = [text for y, text in ticks if text and lo <= y <= hi]
    assert shown and all("10^" not in t and "times" not in t and "e-" not in t for t in shown), shown
    assert len(set(shown)) == len(shown) and "0.000150" in shown, shown


def test_a_narrow_log_axis_has_enough_labelled_ticks_to_read_values_off():
    """Fig. 2.4: validation MSE from 0.086 to 0.11 on a log axis had two labels, 0.090 and 0.100."""
    import numpy as np
    import pandas as pd

    runs_ = {"MAE": pd.DataFrame({"epoch": range(1, 11), "val_mse": np.linspace(0.11, 0.088, 10)}),
             "scratch": pd.DataFrame({"epoch": range(1, 11), "val_mse": np.linspace(0.1, 0.086, 10)})}
    fig = viz.curves(runs_, ("val_mse",), logy=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    shown = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)
             if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert ax.get_yscale() == "log" and len(shown) >= 4, shown
    assert len({len(t.split(".")[1]) for t in shown}) == 1 and any(float(t) > 0.105 for t in shown), shown
    small = viz.curves({"run": pd.DataFrame({"epoch": range(1, 9), "val_mse": np.linspace(2.05e-4, 1.47e-4, 8)})},
                       ("val_mse",), logy=True).axes[0]
    small.figure.canvas.draw()
    for tick in small.get_yticklabels():  # each label writes its tick exactly: 0.000165, never 0.00017
        assert float(tick.get_text()) == pytest.approx(tick.get_position()[1], rel=1e-6), tick.get_text()


def test_the_forest_plot_keeps_to_the_text_width():
    """Item 7: the claims' one-line titles made the forest plot 12 inches wide once saved (bbox tight),
    so the page shrank it and its text to about 7 px."""
    import io

    from PIL import Image

    fig = viz.forest(summary.claim_rows([]))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # as the notebook's inline backend does
    assert Image.open(buffer).size[0] <= 7.3 * 100


def test_the_forest_plot_draws_the_runs_and_the_papers_gap_not_empty_rows():
    """Issue #36: every panel had an empty "full: not run" row, and the paper's gap was not drawn."""
    rows = summary.claim_rows([])
    first = rows["table"].iloc[0]
    run = rows.index[(rows["table"] == first) & (rows["profile"] == "quick")][0]
    rows.loc[run, ["n", "gap", "lo", "hi", "paper_gap"]] = [5, -1.0, -2.0, 0.5, 2.0]
    fig = viz.forest(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["quick\n(n = 5)"]  # the profile not run is not a row
    label = next(t for t in ax.texts if t.get_text() == "paper")  # the paper's gap, on our scale
    fig.canvas.draw()
    box, frame = label.get_window_extent(), ax.get_window_extent()
    assert frame.x0 + 1 < box.x0 and box.x1 < frame.x1 - 1  # inside the frame, not on its border (the tour)
    assert ax.get_xlim()[1] >= 2.0
    assert [t.get_text() for t in fig.axes[1].texts if "run" in t.get_text()] == ["not run"]  # once, for a claim without runs
    rows.loc[run, "paper_gap"] = 200.0  # far beyond our interval: named, not drawn
    ax = viz.forest(rows).axes[0]
    assert ax.get_xlim()[1] < 10 and any("off the scale" in t.get_text() for t in ax.texts)


def test_an_accuracy_is_drawn_in_percent_as_the_tables_write_it():
    """A reader saw 0.095 on a figure beside 9.50% in the table under it (chapters 1 and 3)."""
    import pandas as pd

    h = pd.DataFrame({"epoch": [1, 2], "pixel_acc": [0.090, 0.095], "miou": [0.1, 0.2]})
    fig = viz.curves({"run": h}, ("pixel_acc", "miou"), ("validation pixel accuracy", "validation mIoU"))
    acc, miou = fig.axes[:2]
    assert list(acc.lines[0].get_ydata()) == pytest.approx([9.0, 9.5]) and acc.get_title().endswith("(%)")
    assert list(miou.lines[0].get_ydata()) == pytest.approx([0.1, 0.2]) and miou.get_title() == "validation mIoU"


@pytest.mark.parametrize("n_panels", [1, 2, 3])
def test_the_curve_panels_share_the_texts_width(n_panels):
    """Two claims' curves (Tables 3 and 4) drew a 9.2-inch figure, shrunk on the page with its labels."""
    import numpy as np

    panels = {f"Table {i}": {"MAE init": np.ones((5, 4)), "scratch": np.zeros((5, 4))} for i in range(n_panels)}
    fig = viz.curve_bands(panels)
    assert fig.get_size_inches()[0] <= viz.TEXT_WIDTH_IN


def test_the_curve_panels_legend_covers_no_panel():
    """The summary's Fig. 7.3 drew three claims in one row, a legend in each: they spilled over the next
    panel's axis. One legend of the arms sits under the panels, each arm one colour in every panel."""
    import numpy as np

    labels = ("MAE init", "scratch", "scratch, budget-matched")
    panels = {f"Table {i}": {lab: np.random.default_rng(i).random((5, 30)) + k for k, lab in enumerate(labels)}
              for i in (1, 3, 4)}
    fig = viz.curve_bands(panels)
    fig.canvas.draw()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 3 and all(ax.get_title().endswith("5 seeds") for ax in shown)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(labels)
    box = legend.get_window_extent()
    assert not any(box.overlaps(ax.get_tightbbox()) for ax in shown)
    colours = [[tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
                for line in ax.lines] for ax in shown]
    assert colours[0] == colours[1] == colours[2]


def test_a_ratio_near_one_keeps_its_side():
    """A model 0.2% better than persistence must not print as '1.00 times' it (Table 2's last column)."""
    assert viz.relative_change(0.9982, 1.0) == "−0.18%"
    assert viz.relative_change(1.0004, 1.0) == "+0.040%"
    assert viz.relative_change(2.0, 2.0) == "±0%"
    assert viz.relative_change(1.5, 1.0) == "+50%"
    assert viz.relative_change(1.0, float("nan")) == viz.relative_change(1.0, 0.0) == ""  # nothing to compare


def test_every_experiment_chapter_states_its_scale_in_one_line():
    """Issue #36 item 3: tokens per sample, visible tokens, epochs per arm and the data, under the title."""
    line = viz.scale_line(viz.tokens_text(16, 0.75, "image"), {"MAE pretraining": 5, "scratch": 5}, "TinyImageNet")
    assert line == ("**Scale.** 16 tokens an image, 4 of them visible in pretraining; epochs: MAE pretraining 5, "
                    "scratch 5; TinyImageNet.")
    assert viz.tokens_text(21, 0.4, "window").startswith("21 tokens a window, 13 of them")  # rounded, as masked
    for chapter in ("images", "series", "segmentation", "volumes", "tabular"):
        assert "viz.scale_line(" in provenance.chapters()[chapter].read_text(), chapter


def test_the_root_redirect_page_carries_the_books_icon_once(tmp_path):
    index = tmp_path / "index.html"
    index.write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />\n')
    book.with_favicon(book.with_favicon(index))
    text = index.read_text()
    assert text.count('rel="icon" href="_static/favicon.svg"') == 1 and "url=book/intro.html" in text


def test_a_figures_image_gets_its_caption_as_alt_text():
    import sys

    from docutils import nodes

    sys.path.insert(0, str(provenance.ROOT / "book" / "_ext"))
    from figure_alt import caption_alt

    doc = nodes.document(None, None)
    figure = nodes.figure("", nodes.image(uri="x.svg", alt="../../_images/x.svg"),
                          nodes.caption("", "Loss  per epoch: the mean over seeds; bands of one sd."))
    named = nodes.image(uri="y.png", alt="a grid of patches")
    doc += [figure, named]
    caption_alt(None, doc, "page")
    assert figure[0]["alt"] == "Loss per epoch" and named["alt"] == "a grid of patches"  # the caption's first clause


def test_stars_in_a_glued_text_render_as_emphasis():
    """#36: the series page printed "*patch transformer, scratch*'s validation MSE" with its stars: the glued
    sentence was pasted as plain text. Pairs of stars around words become emphasis; a lone star stays."""
    import sys

    from docutils import nodes

    sys.path.insert(0, str(provenance.ROOT / "book" / "_ext"))
    from pasted_emphasis import emphasise_pasted

    doc = nodes.document(None, None)
    pasted = nodes.inline("", "", nodes.Text("In the figure, *patch transformer, scratch*'s MSE rises; *MAE* too"),
                          classes=["pasted-text"])
    lone = nodes.inline("", "", nodes.Text("p < 0.05 * 2 and a*b"), classes=["pasted-text"])
    prose = nodes.paragraph("", "", nodes.Text("a *literal* star pair outside a glue"))
    doc += [nodes.paragraph("", "", pasted, lone), prose]
    emphasise_pasted(None, doc, "page")
    assert [e.astext() for e in pasted.findall(nodes.emphasis)] == ["patch transformer, scratch", "MAE"]
    assert pasted.astext() == "In the figure, patch transformer, scratch's MSE rises; MAE too"
    assert lone.astext() == "p < 0.05 * 2 and a*b" and not list(lone.findall(nodes.emphasis))
    assert prose.astext() == "a *literal* star pair outside a glue"


def test_a_chapter_whose_mae_task_is_degenerate_says_so():
    """Issue #34: 12 tokens a crop, 3 visible, is no task for an MAE; the chapter says so where it states its scale."""
    note = viz.degenerate_note(12, 0.75, 48, "crop")
    assert "degenerate" in note and "12 tokens a crop, 3 of them visible" in note and "at least 48" in note
    assert viz.degenerate_note(64, 0.75, 64, "image") == "" and viz.degenerate_note(12, 0.75, None, "crop") == ""


def test_the_masking_pages_reruns_count_seeds_per_setting_as_the_history_does():
    """#36: Table 6.2 said a version had 5 seeds where the summary's history said 1: the page pooled a setting's
    seeds with a rerun at another setting (fp32, another mask ratio) of the same code. Now one row per code
    and setting, named by the history's short hash, and a seed rerun at one setting counts once, newest."""
    def run(seed, acc, finished, **params):
        r = record("images", seed, 0.4, 0.3, parameters=params, finished=finished, code="c1")
        r["metrics"].update(acc_finetune=acc, acc_probe=acc / 2)
        return r

    recs = [run(s, 0.40, f"2026-11-2{s}T10:00:00") for s in range(5)]
    recs += [run(0, 0.30, "2026-11-28T09:00:00", precision="fp32"), run(0, 0.50, "2026-11-28T10:00:00")]
    n, table = claim_tables.image_reruns(recs, "c1")
    assert n == 6 and list(table["seeds"]) == [5, 1]  # newest first: the default setting's seed 0 rerun last
    default = table.iloc[0]
    assert default["fine-tune top-1 (%)"] == pytest.approx(100 * (0.5 + 4 * 0.4) / 5)
    assert default["code"] == "c1 (this book's)" and default["last run"] == "2026-11-28"
    assert default["setting"] == claim_tables.short_setting(tuning.setting(recs[0]))
    assert table.iloc[1]["setting"] != default["setting"] and table.iloc[1]["fine-tune top-1 (%)"] == pytest.approx(30)
