"""The paper's five result tables, as the paper prints them: the one place the book takes paper numbers from.

*Masked Autoencoders Are More Than Scalable Vision Learners* (Kho, Chia, Liaw, Liu, Muhammad Haidi,
Foong). Each table keeps the paper's caption, column labels, row labels and numbers as printed (strings,
so that ``0.0093`` stays ``0.0093``); ``tests/test_paper.py`` finds every one of them, in this order, in
the paper's text. Chapters read them with :func:`table` or :func:`value`, never type them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Table:
    caption: str
    columns: tuple[str, ...]  # the header line's cells after the row-label column ("" where it has none)
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (row label, numbers as printed)
    row_header: str | None = None  # the header line's first cell, above the row labels


TABLES: dict[str, Table] = {
    "Table 1": Table("Reproduction Results", ("ViT (trained from scratch)", "Baseline MAE"),
                     (("", ("37.7", "45.6")),)),
    "Table 2": Table("Experimental results", ("Mean Sqr. Err.", "Mean Abs. Err."), (
        ("no MAE", ("0.01538", "0.10043")),
        ("MAE, mask=0.75", ("0.07757", "0.26845")),
        ("MAE, mask=0.50", ("0.07546", "0.26391")),
        ("MAE, mask=0.25", ("0.07778", "0.26851")),
        ("RNN", ("0.00072", "0.01822")),
        ("LSTM", ("0.00071", "0.01799")),
        ("GRU", ("0.00071", "0.01791")),
    ), row_header="Models"),
    "Table 3": Table("Semantic segmentation experiment results", ("MAE", "No Pretrain"), (
        ("Accuracy", ("59.86", "58.08")),
        ("MIou", ("0.2888", "0.2803")),
    ), row_header="Metric"),
    "Table 4": Table("3D Segmentation Experiment results", ("MAE", "No pretraining"), (
        ("Dice Score", ("0.7712", "0.7548")),
    ), row_header="Metric"),
    "Table 5": Table("Evaluation Metric Comparison", ("Baseline", "MAE"), (
        ("MSE Loss", ("0.0093", "0.5171")),
        ("Wasserstein Distance", ("0.2482", "0.3098")),
    ), row_header="Metric"),
}


def table(name: str) -> pd.DataFrame:
    """The paper's table ``name`` ("Table 1" ... "Table 5") as a frame of floats, labelled as printed."""
    t = TABLES[name]
    frame = pd.DataFrame([[float(v) for v in values] for _, values in t.rows], columns=list(t.columns),
                         index=pd.Index([label for label, _ in t.rows], name=t.row_header))
    frame.attrs["caption"] = f"{name}: {t.caption}"
    return frame


def value(name: str, row: str, column: str) -> float:
    """One number of the paper's table ``name`` (row "" for Table 1, which has a single unlabelled row)."""
    return float(table(name).loc[row, column])
