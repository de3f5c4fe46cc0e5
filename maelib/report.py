"""What a run reports per seed for a claim: one declared shape, checked when written and when read.

A chapter's run record holds, under ``metrics.claim`` (and ``metrics.claim_long`` for the series chapter's
second claim), the seeds it ran and each arm's value per seed. The notebook builds a :class:`SeedValues`
and glues its :meth:`SeedValues.to_dict`; the summary reads it back with :meth:`SeedValues.from_dict`, so
a misspelt or missing entry is an error where it happens, never a chapter that silently shows as not run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields



CURVES = ("mae_curve", "baseline_curve")  # per seed, one value per epoch


@dataclass(frozen=True)
class SeedValues:
    """Per-seed values of a claim's two arms, each list as long as ``seeds``.

    Attributes:
        seeds: the seeds run, distinct integers.
        mae: the MAE arm's value per seed (the claim's metric).
        baseline: the baseline arm's value per seed.
        floor: a reference both arms should beat (persistence forecasts), where the chapter has one.
        baseline_fair: a second, fairer baseline shown beside the paper's (tables).
        baseline_matched: the baseline trained for as many passes as the MAE arm's pretraining and
            fine-tuning together (images, segmentation); the claim is judged against the stronger one.
        chosen: the option validation chose per seed for the MAE arm (series: the masked forecaster).
        mae_curve, baseline_curve: per seed, the arm's validation metric after every fine-tuning epoch
            (the claims about the whole run: segmentation, volumes).
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
            if f.name in CURVES:
                values = [v for curve in values for v in curve]
            if f.name != "chosen" and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in values):
                raise ValueError(f"{f.name} must hold numbers, got {getattr(self, f.name)!r}")

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
        names = [f.name for f in fields(self)[1:] if getattr(self, f.name) is not None and f.name not in CURVES]
        curves = [k for k in CURVES if getattr(self, k) is not None]
        return [{"seed": s, **{k: v[i] if k == "chosen" else float(v[i]) for k in names if (v := getattr(self, k))},
                 **{k: [float(x) for x in getattr(self, k)[i]] for k in curves}} for i, s in enumerate(self.seeds)]
