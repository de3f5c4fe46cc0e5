"""What a chapter run reports: one declared shape, checked when written and when read.

A run record's ``metrics`` is a :class:`Results`: each claim's per-seed values (:class:`SeedValues`,
under ``claim``, and ``claim_long`` or ``claim_numeric`` for a chapter's second claim), each arm's learning
rate and the grid it was chosen from, the metric a mask-ratio sweep plots (:class:`MaskRatioMetric`), the
dataset, the wall time, and the chapter's own numbers for its own page (``details``, which no other module
reads). A notebook glues :meth:`Results.to_dict`; the runner checks it before recording, and the summary,
the tuning and the estimates read it back with :meth:`Results.from_dict`, so a misspelt or missing entry is
an error where it happens, never a chapter that silently shows as not run.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import asdict, dataclass, field, fields

CURVES = ("mae_curve", "baseline_curve", "matched_curve")  # per seed, one value per epoch
ITEMS = ("mae_items", "baseline_items", "matched_items")  # per seed, one value (or block) per test item
NESTED = CURVES + ITEMS


def _flat(values) -> list:
    """The numbers of arbitrarily nested lists, in order."""
    return [x for v in values for x in (_flat(v) if isinstance(v, (list, tuple)) else [v])]


@dataclass(frozen=True)
class SeedValues:
    """Per-seed values of a claim's two arms, each list as long as ``seeds``.

    Attributes:
        seeds: the seeds run, distinct integers.
        mae: the MAE arm's value per seed (the claim's metric).
        baseline: the baseline arm's value per seed.
        floor: a reference both arms should beat (persistence forecasts), where the chapter has one.
        baseline_fair: a second, fairer baseline shown beside the paper's (tables).
        baseline_matched: the baseline given the MAE arm's pretraining and fine-tuning compute (its FLOPs;
            its passes in runs made before FLOPs were counted) in images, segmentation and volumes: the
            compute comparison, judged beside the paper's (mae against baseline), never instead of it.
        chosen: the option validation chose per seed for the MAE arm (series: the masked forecaster).
        mae_curve, baseline_curve, matched_curve: per seed, the arm's validation metric after every
            supervised epoch (the convergence check; segmentation's and volumes' claims about the whole run).
        mae_items, baseline_items, matched_items: per seed, the arm's score on every test item, in one order
            for every arm and seed (a number each; a [sum, count] pair each where the score is a ratio of
            sums; [intersections, unions] per class where it is an IoU): the bootstrap over seeds and items
            (:func:`maelib.stats.paired_items`; the summary reads the aggregate from the items' shape).
        mae_vs_flat: per seed, the pretrained MAE's held-out loss on hidden tokens divided by that of the flat
            predictor (every hidden token predicted as the mean of its sample's visible ones): the test that
            the MAE learned something (:func:`maelib.mae.versus_flat`).
    """

    seeds: list[int]
    mae: list[float]
    baseline: list[float]
    floor: list[float] | None = None
    baseline_fair: list[float] | None = None
    baseline_matched: list[float] | None = None
    chosen: list[str] | None = None
    mae_curve: list[list[float]] | None = None
    baseline_curve: list[list[float]] | None = None
    matched_curve: list[list[float]] | None = None
    mae_items: list[list] | None = None
    baseline_items: list[list] | None = None
    matched_items: list[list] | None = None
    mae_vs_flat: list[float] | None = None

    def __post_init__(self):
        n = len(self.seeds)
        if any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds) or len(set(self.seeds)) != n:
            raise ValueError(f"seeds must be distinct integers, got {self.seeds!r}")
        for f in fields(self)[1:]:
            values = getattr(self, f.name)
            if values is None:
                continue
            if len(values) != n:
                raise ValueError(f"{f.name} has {len(values)} values for {n} seeds")
            if f.name in NESTED:
                values = _flat(values)
            if f.name != "chosen" and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in values):
                raise ValueError(f"{f.name} must hold numbers, got {reprlib.repr(getattr(self, f.name))}")

    @classmethod
    def of_curves(cls, seed: int, curves: dict, mae: str, baseline: str, matched: str, **extra) -> SeedValues:
        """One seed's values from each arm's validation curve (arm -> values per epoch): the last epoch's
        value of the ``mae``, ``baseline`` and ``matched`` arms and their whole curves; ``extra``: further
        entries of that seed, each a list of one (``mae_vs_flat=[0.6]``)."""
        last = {arm: float(list(curves[arm])[-1]) for arm in (mae, baseline, matched)}
        curve = {key: [[float(v) for v in curves[arm]]] for key, arm in
                 (("mae_curve", mae), ("baseline_curve", baseline), ("matched_curve", matched))}
        return cls([seed], [last[mae]], [last[baseline]], baseline_matched=[last[matched]], **curve, **extra)

    def to_dict(self) -> dict:
        """The record's JSON form, without the entries the chapter does not have."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, entry: dict) -> SeedValues:
        """Read a record's entry back; an unknown or missing key is a ValueError that names it."""
        known = {f.name for f in fields(cls)}
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"unknown per-seed entries {sorted(unknown)} (known: {sorted(known)})")
        missing = {"seeds", "mae", "baseline"} - set(entry)
        if missing:
            raise ValueError(f"missing per-seed entries {sorted(missing)}")
        return cls(**{k: list(v) if isinstance(v, (list, tuple)) else v for k, v in entry.items()})

    def per_seed(self) -> list[dict]:
        """[{seed, mae, baseline, ...}] one dict per seed, with each entry the chapter has."""
        names = [f.name for f in fields(self)[1:] if getattr(self, f.name) is not None
                 and f.name not in NESTED]
        nested = [k for k in NESTED if getattr(self, k) is not None]
        return [{"seed": s, **{k: v[i] if k == "chosen" else float(v[i]) for k in names if (v := getattr(self, k))},
                 **{k: getattr(self, k)[i] for k in nested}} for i, s in enumerate(self.seeds)]


@dataclass(frozen=True)
class MaskRatioMetric:
    """The downstream metric a mask-ratio sweep plots: its ``label`` and one value per seed."""

    label: str
    values: list[float]

    def __post_init__(self):
        if not isinstance(self.label, str) or not all(_number(v) for v in self.values):
            raise ValueError(f"a mask-ratio metric is a label and numbers, got {self.label!r}, {self.values!r}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


FIELDS = ("lr", "lr_grid", "budget", "mask_ratio_metric", "dataset", "wall_s")  # Results' own keys besides the claims
BUDGET_KEYS = ("pretraining passes", "supervised passes", "optimizer steps", "training FLOPs")  # per arm


@dataclass(frozen=True)
class Results:
    """A chapter run's ``metrics``.

    Attributes:
        claims: metrics key (``claim``, ``claim_long``, ``claim_numeric``) -> that claim's per-seed values.
        lr: arm -> the learning rate it trained with.
        lr_grid: arm -> {rate (as text): held-out score} it was chosen from; empty where it was given.
        budget: arm -> its training budget (:data:`BUDGET_KEYS`: passes in MAE pretraining and in supervised
            training, optimizer steps, forward and backward FLOPs), where the chapter compares budgets.
        mask_ratio_metric: what a mask-ratio sweep plots, where the chapter has one.
        dataset: the registry name of the data, where the chapter can read several.
        wall_s: the chapter's wall time in seconds, as it measured it.
        details: the chapter's own numbers for its own page; no other module reads them.
    """

    claims: dict[str, SeedValues] = field(default_factory=dict)
    lr: dict[str, float] = field(default_factory=dict)
    lr_grid: dict[str, dict[str, float]] = field(default_factory=dict)
    budget: dict[str, dict[str, float]] = field(default_factory=dict)
    mask_ratio_metric: MaskRatioMetric | None = None
    dataset: str | None = None
    wall_s: float | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        bad = [k for k in self.claims if k != "claim" and not k.startswith("claim_")]
        if bad:
            raise ValueError(f"claims are keyed claim or claim_<name>, got {bad}")
        if not all(isinstance(k, str) and _number(v) for k, v in self.lr.items()):
            raise ValueError(f"lr must map each arm to a number, got {self.lr!r}")
        if not all(isinstance(g, dict) and all(_number(v) or v is None for v in g.values())
                   for g in self.lr_grid.values()):
            raise ValueError(f"lr_grid must map each arm to {{rate: held-out score}}, got {self.lr_grid!r}")
        if not all(isinstance(b, dict) and set(b) == set(BUDGET_KEYS) and all(_number(v) for v in b.values())
                   for b in self.budget.values()):
            raise ValueError(f"budget must map each arm to numbers for {', '.join(BUDGET_KEYS)}, got {self.budget!r}")
        if self.wall_s is not None and not _number(self.wall_s):
            raise ValueError(f"wall_s must be a number, got {self.wall_s!r}")
        clash = set(self.details) & (set(FIELDS) | set(self.claims))
        if clash:
            raise ValueError(f"details must not repeat a declared entry: {sorted(clash)}")

    @property
    def claim(self) -> SeedValues | None:
        return self.claims.get("claim")

    def to_dict(self) -> dict:
        """The record's JSON form: one flat object, as every record has held it."""
        out = {k: v.to_dict() for k, v in self.claims.items()}
        if self.lr:
            out["lr"] = dict(self.lr)
        if self.lr_grid:
            out["lr_grid"] = {a: {str(r): s for r, s in g.items()} for a, g in self.lr_grid.items()}
        if self.budget:
            out["budget"] = {a: dict(b) for a, b in self.budget.items()}
        if self.mask_ratio_metric is not None:
            out["mask_ratio_metric"] = asdict(self.mask_ratio_metric)
        out.update({k: getattr(self, k) for k in ("dataset", "wall_s") if getattr(self, k) is not None})
        return {**out, **self.details}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text, a non-finite number as null: what a notebook glues, since a glued
        object's printed form shortens a list of over 1,000 values (per-item scores) to "..."."""
        return json.dumps(_finite(self.to_dict()))

    @classmethod
    def from_dict(cls, metrics: dict | str) -> Results:
        """Read a record's ``metrics`` back (or :meth:`to_json`'s text); a malformed declared entry is a
        ValueError that names it."""
        if isinstance(metrics, str):
            try:
                metrics = json.loads(metrics)
            except json.JSONDecodeError as e:
                raise ValueError(f"metrics must be an object or its JSON text: {e}") from None
        if not isinstance(metrics, dict):
            raise ValueError(f"metrics must be an object, got {type(metrics).__name__}")
        claims = {k: SeedValues.from_dict(v) for k, v in metrics.items()
                  if (k == "claim" or k.startswith("claim_")) and isinstance(v, dict)}
        metric = metrics.get("mask_ratio_metric")
        return cls(claims=claims, lr=dict(metrics.get("lr") or {}), lr_grid=dict(metrics.get("lr_grid") or {}),
                   budget=dict(metrics.get("budget") or {}),
                   mask_ratio_metric=MaskRatioMetric(**metric) if metric else None, dataset=metrics.get("dataset"),
                   wall_s=metrics.get("wall_s"),
                   details={k: v for k, v in metrics.items() if k not in claims and k not in FIELDS})


def _finite(value):
    """``value`` with every non-finite float inside it (nested in dicts and lists) replaced by None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def budget_entries(frame, arms: dict[str, str]) -> dict[str, dict[str, float]]:
    """:attr:`Results.budget` from a budget table (:func:`maelib.train.budget`, one row per arm name): the
    rows of ``arms`` (claim key, such as "mae" or "baseline_matched" -> arm name) under their claim keys."""
    return {key: {k: float(frame.loc[name, k]) for k in BUDGET_KEYS} for key, name in arms.items()}
