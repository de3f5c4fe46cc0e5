"""Published numbers, as printed: long-horizon results on ETTh1 and the mask ratios other papers settled on.
Nobody on this project produced them.

Kept apart from :mod:`maelib.paper` (the seed paper's own tables). Each reference names exactly where its
numbers were read (a repository file at a commit, or a paper's table) and the setting they were made in;
numbers are kept as printed (strings). Chapters read them with :func:`frame`, :func:`value` and
:func:`long_horizon_table`, never type them. Where a number was looked for and not found, :data:`NOT_FOUND`
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


PATCHTST_PAPER = ("Nie, Nguyen, Sinthong, Kalagnanam: A Time Series is Worth 64 Words: Long-term Forecasting "
                  "with Transformers (ICLR 2023, arXiv:2211.14730)")


@dataclass(frozen=True)
class Reference:
    source: str  # where the numbers were read
    setting: str  # what was run: data, features, input length
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (horizon, numbers as printed)


REFERENCES: dict[str, Reference] = {
    "DLinear (LTSF-Linear script)": Reference(
        "cure-lab/LTSF-Linear, scripts/EXP-LongForecasting/DLinear/univariate/etth1.sh (commit 92994e13): "
        "the mse and mae logged in the comment above each run",
        "ETTh1, univariate OT (features S), L = 336", ("MSE", "MAE"), (
            ("96", ("0.05591415613889694", "0.1803210824728012")),
            ("192", ("0.07117306441068649", "0.20417816936969757")),
            ("336", ("0.09767461568117142", "0.24392887949943542")),
            ("720", ("0.11864475905895233", "0.2740800678730011")),
        )),
    "PatchTST Table 8": Reference(
        f"{PATCHTST_PAPER}, Appendix A.3, Table 8 (univariate long-term forecasting with supervised PatchTST)",
        "ETTh1, univariate OT; PatchTST/42: L = 336, PatchTST/64: L = 512",
        ("PatchTST/64 MSE", "PatchTST/64 MAE", "PatchTST/42 MSE", "PatchTST/42 MAE"), (
            ("96", ("0.059", "0.189", "0.055", "0.179")),
            ("192", ("0.074", "0.215", "0.071", "0.205")),
            ("336", ("0.076", "0.220", "0.081", "0.225")),
            ("720", ("0.087", "0.236", "0.087", "0.232")),
        )),
    "PatchTST Table 12": Reference(
        f"{PATCHTST_PAPER}, Appendix A.5.1, Table 12 (multivariate long-term forecasting with self-supervised "
        "PatchTST)",
        "ETTh1, multivariate (all 7 columns), L = 512, non-overlapping patches of 12, 40% masked",
        ("Fine-tuning MSE", "Fine-tuning MAE", "Lin. Prob. MSE", "Lin. Prob. MAE", "Sup. MSE", "Sup. MAE"), (
            ("96", ("0.366", "0.397", "0.371", "0.400", "0.375", "0.399")),
            ("192", ("0.431", "0.443", "0.411", "0.428", "0.414", "0.421")),
            ("336", ("0.450", "0.456", "0.445", "0.446", "0.431", "0.436")),
            ("720", ("0.472", "0.484", "0.487", "0.478", "0.449", "0.466")),
        )),
}

MAE_PAPER = ("He, Chen, Xie, Li, Dollár, Girshick: Masked Autoencoders Are Scalable Vision Learners (CVPR 2022, "
             "arXiv:2111.06377)")


@dataclass(frozen=True)
class PublishedRatio:
    ratio: float  # the share of tokens hidden in pretraining
    what: str  # what the number is: a measured optimum, or the setting a paper used
    source: str  # where it was read
    label: str  # a figure's legend entry

    @property
    def legend(self) -> str:
        return f"{self.label}: {self.ratio:.2f}"


# the mask ratios the summary draws beside its own curves, by chapter of this study
MASK_RATIOS: dict[str, PublishedRatio] = {
    "images": PublishedRatio(0.75, "the optimum of its masking-ratio ablation (ViT-L, ImageNet-1K), good for both "
                             "fine-tuning and linear probing", f"{MAE_PAPER}, Section 4.1 and Figure 5",
                             "the MAE paper's optimum"),
    "series": PublishedRatio(0.40, "the ratio its self-supervised PatchTST pretrains with (a setting, not an ablation's "
                             "optimum)", f"{PATCHTST_PAPER}, Appendix A.5.1: the setting of its Table 12",
                             "PatchTST's setting"),
}

NOT_FOUND = ("PatchTST reports its self-supervised (pretrained, then fine-tuned) results on multivariate data "
             "only (its Tables 4, 6, 12 and 14); no univariate ETTh1 number of a pretrained PatchTST was found, "
             "so none is shown.")

# the published rows the long-horizon table and figure show beside ours: label -> (reference, MSE column, MAE column)
SHOWN = {
    "DLinear (published)": ("DLinear (LTSF-Linear script)", "MSE", "MAE"),
    "PatchTST/42, supervised (published)": ("PatchTST Table 8", "PatchTST/42 MSE", "PatchTST/42 MAE"),
}


def frame(name: str, printed: bool = False) -> pd.DataFrame:
    """Reference ``name`` as a frame indexed by horizon (int): floats, or with ``printed`` the text as printed."""
    ref = REFERENCES[name]
    cast = str if printed else float
    out = pd.DataFrame([[cast(v) for v in values] for _, values in ref.rows], columns=list(ref.columns),
                       index=pd.Index([int(h) for h, _ in ref.rows], name="horizon"))
    out.attrs["source"] = ref.source
    return out


def value(name: str, horizon, column: str) -> float:
    """One published number: reference ``name``, horizon (int or its text), column."""
    return float(frame(name).loc[int(horizon), column])


def horizons(name: str) -> list[int]:
    """The horizons reference ``name`` has numbers for."""
    return [int(h) for h, _ in REFERENCES[name].rows]


def shown(horizon: int) -> dict[str, tuple[float, float]]:
    """The published (MSE, MAE) of each row of :data:`SHOWN` that has ``horizon`` (the others are left out)."""
    return {label: (value(ref, horizon, m), value(ref, horizon, a)) for label, (ref, m, a) in SHOWN.items()
            if horizon in horizons(ref)}


def long_horizon_table(horizons) -> pd.DataFrame:
    """What the book shows of the references at ``horizons`` (those they have): one row per reference and
    horizon, the MSE
    and MAE to four decimals (DLinear's are logged to 17 digits), the setting and the source."""
    rows = []
    for label, (ref, m, a) in SHOWN.items():
        f = frame(ref, printed=True)
        for h in (h for h in horizons if int(h) in f.index):
            rows.append({"published": label, "H": int(h), "MSE": _four(f.loc[int(h), m]),
                         "MAE": _four(f.loc[int(h), a]), "setting": REFERENCES[ref].setting,
                         "source": REFERENCES[ref].source})
    return pd.DataFrame(rows, columns=["published", "H", "MSE", "MAE", "setting", "source"])


def _four(text: str) -> str:
    """A printed number as printed, or rounded to four decimals where it has more."""
    return text if len(text.split(".")[-1]) <= 4 else f"{float(text):.4f}"
