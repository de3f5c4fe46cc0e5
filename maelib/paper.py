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


# The paper's setup numbers the chapters cite: name -> (value, the paper's words that state it, verbatim)
SETTINGS: dict[str, tuple] = {
    "tinyimagenet_classes": (200, "around 200 image classes"),
    "series_mask_ratios": ((0.75, 0.50, 0.25), "masking ratios of 0.75, 0.50, 0.25"),
    "series_split": ((70, 20, 10), "70%, 20%, and 10% for train, validation and test"),
    "series_smoothing": (20, "a moving average with a window size of 20 timesteps"),
    "segmentation_size": (256, "resized to 256-by-256 pixels"),
    "segmentation_blocks": ((3, 6, 9, 12), "The output of the 3rd, 6th, 9th, and 12th transformer layers"),
    "segmentation_epochs": (400, "trained for 400 epochs"),
    "btcv_organs": (13, "13 different organs"),
    "tabular_missing_pct": (20, "missingness (20%)"),
}


def setting(name: str):
    """One of the paper's setup numbers (see :data:`SETTINGS`)."""
    return SETTINGS[name][0]


def table(name: str, printed: bool = False) -> pd.DataFrame:
    """The paper's table ``name`` ("Table 1" ... "Table 5") as a frame of floats, labelled as printed
    (with ``printed``, of the numbers' text as printed: ``0.0093``, not ``0.009300``)."""
    t = TABLES[name]
    cast = str if printed else float
    frame = pd.DataFrame([[cast(v) for v in values] for _, values in t.rows], columns=list(t.columns),
                         index=pd.Index([label for label, _ in t.rows], name=t.row_header))
    frame.attrs["caption"] = f"{name}: {t.caption}"
    return frame


def value(name: str, row: str, column: str) -> float:
    """One number of the paper's table ``name`` (row "" for Table 1, which has a single unlabelled row)."""
    return float(table(name).loc[row, column])
