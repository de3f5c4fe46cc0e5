"""Every paper number the book uses is the paper's: each table of maelib.paper is found, caption, header
and rows in order, in the paper's text, and no chapter or library module types a paper number itself."""

import re

import pytest

from conftest import ROOT
from maelib import paper, summary

PAPER_TEXT = ROOT.parent / "shared" / "paper" / "000_fcd6c95d6e05d4b6.txt"


@pytest.fixture(scope="module")
def text():
    if not PAPER_TEXT.exists():
        pytest.skip(f"the paper's text is not at {PAPER_TEXT}")
    return PAPER_TEXT.read_text()


def lines_of(t: paper.Table) -> list[str]:
    """The table's header and rows as the paper's text prints them (cells separated by tabs)."""
    header = ([t.row_header] if t.row_header is not None else []) + list(t.columns)
    rows = [([label] if t.row_header is not None else []) + list(values) for label, values in t.rows]
    return ["\t".join(cells) for cells in [header, *rows]]


@pytest.mark.parametrize("name", sorted(paper.TABLES))
def test_each_table_is_the_papers(text, name):
    t = paper.TABLES[name]
    assert f"{name}: {t.caption}" in text
    block = "\n".join(lines_of(t))
    assert block in text, f"{name}'s header and rows are not in the paper as listed"
    # the caption belongs to this block: no other table's caption between them
    caption_at, block_at = text.index(f"{name}: {t.caption}"), text.index(block)
    between = text[min(caption_at, block_at):max(caption_at, block_at)]
    assert not re.search(r"Table \d:", between.replace(f"{name}: {t.caption}", "")), name


def test_a_changed_number_would_be_caught(text):
    """The check fails for the reversed Table 1 the book once printed, and for any digit changed."""
    t = paper.TABLES["Table 1"]
    swapped = paper.Table(t.caption, t.columns[::-1], t.rows)
    assert "\n".join(lines_of(swapped)) not in text
    t = paper.TABLES["Table 5"]
    changed = paper.Table(t.caption, t.columns, (("MSE Loss", ("0.0093", "0.5172")), t.rows[1]), t.row_header)
    assert "\n".join(lines_of(changed)) not in text


def test_table_1_has_mae_above_scratch():
    assert paper.value("Table 1", "", "Baseline MAE") == 45.6
    assert paper.value("Table 1", "", "ViT (trained from scratch)") == 37.7


def test_every_claim_has_the_papers_numbers():
    expected = {"Table 1": (45.6, 37.7), "Table 2": (0.07546, 0.01538), "Table 3": (0.2888, 0.2803),
                "Table 4": (0.7712, 0.7548), "Table 5": (0.5171, 0.0093),
                "PatchTST, H = 96": (0.366, 0.375)}  # the forecasting literature's claim (maelib.published)
    assert {c.table: (c.paper_mae, c.paper_base) for c in summary.CLAIMS} == expected


PAPER_NUMBERS = sorted({v for t in paper.TABLES.values() for _, values in t.rows for v in values}, key=len,
                       reverse=True)


@pytest.mark.parametrize("path", sorted([*(ROOT / "notebooks").glob("*.py"), *(ROOT / "maelib").glob("*.py"),
                                         ROOT / "book" / "intro.md"]), ids=lambda p: p.name)
def test_no_paper_number_is_typed_outside_maelib_paper(path):
    if path.name == "paper.py":
        return
    text = path.read_text()
    typed = [v for v in PAPER_NUMBERS if re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", text)]
    assert not typed, f"{path.name} types the paper's {typed}; take them from maelib.paper"


@pytest.mark.parametrize("name", sorted(paper.SETTINGS))
def test_each_setup_number_is_stated_in_the_paper(text, name):
    value, quote = paper.SETTINGS[name]
    flat = " ".join(text.split())
    assert quote in flat, f"{name}: the paper does not say {quote!r}"
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", quote)]
    for v in value if isinstance(value, tuple) else (value,):
        assert float(v) in numbers, f"{name}: {v} is not in {quote!r}"
