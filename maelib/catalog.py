"""The catalog of chapters: what the runner, the summary and the GPU session need to know of each one.

Each chapter is declared once (:class:`Chapter`): the check its recipe runs before any compute, how many
arms it tunes per learning rate, the datasets it reads, which records it reads besides its own, the GPU
session's call that carries it, and the paper's claims it answers (:class:`Claim`). Nothing else keeps a
table keyed by chapter name. This module sits in the runner's layer: no chapter's notebook reaches it, so
mending a claim's wording never splits a chapter's seeds (:func:`maelib.provenance.version`).

A sixth chapter touches its notebook, its recipe module, its data module (and the registry's entry),
``profiles.py``, ``_toc.yml`` and one :class:`Chapter` here.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import paper, published


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A claim the summary judges: the paper's (or another paper's) cells for its two arms, and where this
    study's runs hold each arm's value per seed (``key`` of a record's results, the arms' labels)."""

    table: str
    chapter: str
    claim: str
    metric: str
    higher_is_better: bool
    paper_mae_cell: tuple[str, str, str]  # (table, row, column) of maelib.paper
    paper_base_cell: tuple[str, str, str]
    mae_label: str
    base_label: str
    paper_dataset: str
    fair_label: str | None = None  # a fairer baseline shown beside the paper's (tables)
    key: str = "claim"  # the metrics entry of a run record that holds this claim's values per seed
    model: tuple[str, str | int | None] = ("dim", "depth")  # the parameters of the model's width, depth (or its fixed depth)
    mae_row_by_choice: str | None = None  # the paper's MAE row for the option validation chose ({} = the ratio)
    paper_scale_unknown: bool = False  # the paper does not say on what scale its errors are: see paper_gap_here
    other_data: bool = False  # the paper's errors are of other data (PatchTST's multivariate): its gap is a ratio too
    converged_within: float | None = None  # an arm still gaining this much over its last fifth of epochs is unfinished
    min_tokens: int | None = None  # an MAE task of fewer tokens a sample is degenerate: its verdict is marked so
    ratio_parameter: str | None = None  # the parameter that sets its MAE's mask ratio (what a ratio sweep varies)

    @property
    def as_ratio(self) -> bool:
        """Whether the paper's gap is read as a ratio, MAE / baseline (:meth:`paper_gap_here`): its scale is
        unknown, or it is of other data than ours."""
        return self.paper_scale_unknown or self.other_data

    @property
    def paper_mae(self) -> float:
        return reference_value(self.paper_mae_cell)

    @property
    def paper_base(self) -> float:
        return reference_value(self.paper_base_cell)

    @property
    def sign(self) -> int:
        return 1 if self.higher_is_better else -1

    @property
    def paper_gap(self) -> float:
        """The paper's gap in its own units, signed like ours (positive: MAE better)."""
        return self.sign * (self.paper_mae - self.paper_base)

    def paper_gap_here(self, paper_mae: float, base_mean: float) -> float:
        """The paper's gap (MAE cell ``paper_mae`` against its baseline), signed like ours (positive: MAE
        better), in our units. Where the paper does not say on what scale its errors are, its gap is taken
        as a ratio, MAE / baseline, applied to our baseline's mean ``base_mean``: an MSE scales by the
        same factor in both arms under any linear rescaling of the data, so that ratio is the part of the
        paper's result that does not depend on its unstated scale."""
        if self.as_ratio:
            return self.sign * (paper_mae / self.paper_base - 1) * base_mean
        return self.sign * (paper_mae - self.paper_base)


def reference_value(cell: tuple[str, str, str]) -> float:
    """A (table, row, column) cell of the seed paper's tables (:mod:`maelib.paper`) or of the published
    references (:mod:`maelib.published`), as a float."""
    return published.value(*cell) if cell[0] in published.REFERENCES else paper.value(*cell)


def reference_text(cell: tuple[str, str, str]) -> str:
    """The same cell's number as printed."""
    if cell[0] in published.REFERENCES:
        return published.frame(cell[0], printed=True).loc[int(cell[1]), cell[2]]
    return paper.table(cell[0], printed=True).loc[cell[1], cell[2]]


EVERY = ("*",)  # reads the records of every other chapter


@dataclass(frozen=True, kw_only=True)
class Chapter:
    """One chapter of the book, as the runner, the summary and the GPU session see it.

    Attributes:
        name: the chapter's name (``python -m maelib run <name>``).
        preflight: ``"module:function"`` of its recipe, called with ``(p, device)`` before any compute to
            refuse a setting that cannot work; None where it has none.
        tuned_arms: the trainings per rate of its learning-rate grid, for a chapter without a rate
            parameter per arm (the cost note before a run that chooses its rates).
        data: the registry datasets it reads (the GPU session carries them).
        reads_records: the chapters whose run records it reads (:data:`EVERY`: all of them); its book page
            is rebuilt when they change.
        reads_executed: it reads the executed chapters beside it (the reproduce page).
        reads_models: the committed models (``results/models``) it may show; its page is rebuilt when they
            change.
        device_call: the GPU session's call (``"a"``, ``"b"``) that runs it; None: it is not run there.
        claims: the paper's claims (and other papers') it answers, judged by the summary.
        ratio_free_arms: its arms that never see the MAE (each seeded and built anew, so the same network on
            the same data whatever the mask ratio): a mask-ratio sweep's run resumes them from the default
            ratio's run of its seed instead of training them again (:func:`maelib.jobs.reuse_ratio_free`).
        network: the parameters that set the FLOPs of its supervised training step (the image or crop, the
            patches, the network's size): where a run changes one, the runner scales the recorded runs' times
            by the step's FLOPs (:func:`maelib.estimates.flops_scale`).
    """

    name: str
    preflight: str | None = None
    tuned_arms: int = 1
    data: tuple[str, ...] = ()
    reads_records: tuple[str, ...] = ()
    reads_executed: bool = False
    reads_models: tuple[str, ...] = ()
    device_call: str | None = None
    claims: tuple[Claim, ...] = ()
    ratio_free_arms: tuple[str, ...] = ()
    network: tuple[str, ...] = ()

    def own_check(self):
        """The chapter's own check, the function :attr:`preflight` names, called with ``(p, device)``; None
        where it declares none."""
        if not self.preflight:
            return None
        from importlib import import_module

        module, function = self.preflight.split(":")
        return getattr(import_module(f"maelib.{module}"), function)


# the scratch arms of images, segmentation and volumes (their recipes' names: "scratch" and their MATCHED)
SCRATCH_ARMS = ("scratch", "scratch, budget-matched")
VIT = ("img_size", "patch_size", "dim", "depth", "heads")  # an image ViT's step: its tokens and its size

CHAPTERS = {c.name: c for c in (
    Chapter(name="images", preflight="images:preflight", data=("tinyimagenet",), device_call="a",
            ratio_free_arms=SCRATCH_ARMS, network=VIT + ("n_classes",), claims=(
        Claim(table="Table 1", chapter="images", claim="MAE pretraining vs a ViT trained from scratch (TinyImageNet)",
              metric="top-1 (%)", higher_is_better=True, paper_mae_cell=("Table 1", "", "Baseline MAE"),
              paper_base_cell=("Table 1", "", "ViT (trained from scratch)"), mae_label="MAE + fine-tune",
              base_label="scratch", paper_dataset="tinyimagenet", converged_within=0.5, min_tokens=64,
              ratio_parameter="mask_ratio"),
    )),
    Chapter(name="series", preflight="forecast:preflight", tuned_arms=9, data=("ETT",), device_call="b", claims=(
        # the paper's Table 2 has three masked rows (ratios 0.25, 0.5, 0.75): the claim compares no masking with the
        # row of the ratio that our validation chose most often (seeds choose on their own), see paper_cell
        Claim(table="Table 2", chapter="series", claim="masking the transformer's input vs no masking (ETTh1 OT forecasts)",
              metric="test MSE (scaled)", higher_is_better=False,
              paper_mae_cell=("Table 2", "MAE, mask=0.50", "Mean Sqr. Err."),
              paper_base_cell=("Table 2", "no MAE", "Mean Sqr. Err."),
              mae_label="masked forecaster (ratio chosen on validation)", base_label="forecaster without masking",
              paper_dataset="ETTh1", mae_row_by_choice="MAE, mask={}", paper_scale_unknown=True),
        # The long-horizon claim is the forecasting literature's, not the seed paper's: PatchTST reports masked
        # pretraining then fine-tuning against supervised training on ETTh1 for multivariate data only (its
        # Table 12), so that is the direction it is judged against (maelib.published).
        Claim(table="PatchTST, H = 96", chapter="series", claim="MAE pretraining vs the same patch transformer from "
              "scratch, 96 steps ahead (ETTh1 OT under the long-horizon protocol)", metric="test MSE (standardised)",
              higher_is_better=False, paper_mae_cell=("PatchTST Table 12", "96", "Fine-tuning MSE"),
              paper_base_cell=("PatchTST Table 12", "96", "Sup. MSE"), mae_label="MAE-pretrained patch transformer",
              base_label="patch transformer from scratch", paper_dataset="ETTh1 (multivariate)", key="claim_long",
              model=("long_dim", "long_depth"), other_data=True, ratio_parameter="long_mask_ratio"),
    )),
    Chapter(name="segmentation", preflight="images:check_model", data=("camvid",), device_call="a",
            ratio_free_arms=SCRATCH_ARMS, network=VIT + ("width",), claims=(
        Claim(table="Table 3", chapter="segmentation", claim="MAE initialisation vs scratch for ViT-UPerNet", metric="mIoU",
              higher_is_better=True, paper_mae_cell=("Table 3", "MIou", "MAE"),
              paper_base_cell=("Table 3", "MIou", "No Pretrain"), mae_label="MAE init", base_label="scratch",
              paper_dataset="ade20k", converged_within=0.005, min_tokens=64, ratio_parameter="mask_ratio"),
    )),
    Chapter(name="volumes", preflight="volumes:preflight", tuned_arms=3, data=("hippocampus",), device_call="b",
            ratio_free_arms=SCRATCH_ARMS, network=("roi", "hidden_size", "mlp_dim", "heads", "feature_size"), claims=(
        Claim(table="Table 4", chapter="volumes", claim="MAE-pretrained UNETR vs scratch", metric="mean Dice",
              higher_is_better=True, paper_mae_cell=("Table 4", "Dice Score", "MAE"),
              paper_base_cell=("Table 4", "Dice Score", "No pretraining"), mae_label="MAE init", base_label="scratch",
              paper_dataset="btcv", model=("hidden_size", 12), converged_within=0.005, min_tokens=48,
              ratio_parameter="mask_ratio"),
    )),
    Chapter(name="tabular", preflight="tabular:preflight", tuned_arms=3, data=("california_housing",),
            device_call="b", claims=(
        Claim(table="Table 5", chapter="tabular", claim="MAE vs the paper's feed-forward imputer (housing, every hidden "
              "cell)", metric="MSE over every hidden cell ([0, 1] scale)", higher_is_better=False,
              paper_mae_cell=("Table 5", "MSE Loss", "MAE"),
              paper_base_cell=("Table 5", "MSE Loss", "Baseline"), mae_label="MAE",
              base_label="feed-forward (paper: full-row targets)", paper_dataset="housing",
              fair_label="feed-forward (re-masked observed cells)", paper_scale_unknown=True,
              ratio_parameter="mask_ratio"),
    )),
    Chapter(name="payoff", preflight="payoff:preflight", data=("tinyimagenet",), network=VIT + ("n_classes",)),
    Chapter(name="masking", data=("tinyimagenet",), reads_records=("images",),
            reads_models=("image_mae_full.pt", "image_mae_reference.pt")),
    Chapter(name="summary", reads_records=EVERY),
    Chapter(name="reproduce", reads_executed=True),
)}

# every claim, the seed paper's tables first (in their order), then the other papers'
CLAIMS = sorted((c for ch in CHAPTERS.values() for c in ch.claims), key=lambda c: not c.table.startswith("Table "))


def of(name: str) -> Chapter:
    """The declaration of chapter ``name`` (an undeclared chapter has none of the above)."""
    return CHAPTERS.get(name) or Chapter(name=name)
