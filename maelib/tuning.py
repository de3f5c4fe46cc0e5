"""Which learning rates a run reuses, and what counts as the same setting.

A chapter with an ``lr_grid`` chooses each arm's learning rate on held-out training data. The run of
:data:`TUNING_SEED` chooses; the other seeds of the same setting and code version reuse its choice
(:func:`recorded`). A rerun that changes only what pretraining does reuses the default setting's choice
unless it asks to choose anew (:func:`borrowed`). :func:`reused` is the one call a chapter makes, and
:func:`source` says on its page where the rates came from.

A *setting* (:func:`setting`) is what a run computed, seeds and machines aside: its resolved parameters
without the controls, plus the data it read (the registry's dataset name and the file's checksum), so
that a run on another dataset under ``dataset="auto"`` is never pooled with, nor tuned by, this one.
This module decides numbers (which rates a run trains with), so it is part of the code version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from . import profiles, provenance

CONTROL = provenance.CONTROL
data_key = provenance.data_key  # what data a run read, in a setting and in a checkpoint folder  # parameters that do not change what a run computes: they never split a setting
TUNING_SEED = 0  # the seed whose run chooses the learning rates the other seeds reuse
ARM_RATES = ("finetune_lr", "scratch_lr", "matched_lr")  # each arm's fixed rate; None: chosen on held-out data
PRETRAINING_ONLY = ("mask_ratio", "norm_target")  # parameters that change what pretraining does, nothing else


def setting(record: dict) -> str:
    """What a run computed, as a sorted JSON text: its resolved parameters without the controls, and the
    data it read (:func:`data_key`, where the record has it)."""
    chosen = {k: v for k, v in record["resolved"].items() if k not in CONTROL}
    key = data_key(record.get("data"))
    if key:
        chosen["_data"] = key
    return json.dumps(chosen, sort_keys=True, default=str)


def recorded(chapter: str, resolved: dict, data: dict | None = None, root=None) -> dict | None:
    """The choice of the newest :data:`TUNING_SEED` run of ``chapter`` with the same setting (the
    ``resolved`` parameters and the ``data`` provenance read) and code version.

    Returns:
        {"lr": arm -> chosen rate, "lr_grid": arm -> {rate: held-out score}, "finished", "git_commit"},
        or None when there is none (the run then chooses the rates itself).
    """
    want = setting({"resolved": resolved, "data": data})
    version = provenance.version(chapter)
    for r in reversed(provenance.load_records(root=root)):  # newest first
        if r["chapter"] != chapter or r["seed"] != TUNING_SEED:
            continue
        m = provenance.results_of(r)
        if provenance.pool_version(r) == version and setting(r) == want and m.lr_grid and all(m.lr_grid.values()):
            return {"lr": m.lr, "lr_grid": m.lr_grid, "finished": r["finished"], "git_commit": r["git_commit"]}
    return None


def borrowed(chapter: str, resolved: dict, data: dict | None = None, root=None) -> dict | None:
    """For a run that differs from its profile's defaults only in :data:`PRETRAINING_ONLY` parameters and
    does not ask to choose anew (``tune`` false): :func:`recorded` of the default setting, with
    ``borrowed`` (the names that differ); None otherwise, or when the default setting has no choice."""
    if resolved.get("tune", True):
        return None
    defaults = vars(profiles.resolve(chapter, resolved["profile"]))
    differ = [k for k in resolved if k not in CONTROL and resolved[k] != defaults.get(k)]
    if not differ or not set(differ) <= set(PRETRAINING_ONLY):
        return None
    found = recorded(chapter, {**resolved, **{k: defaults[k] for k in differ}}, data, root)
    return {**found, "borrowed": differ} if found else None


def reused(chapter: str, p, data: dict | None = None, root=None) -> dict | None:
    """The recorded choice a run of ``chapter`` with resolved parameters ``p`` trains with: none when it
    asks to choose anew (``tune``), else its own setting's (:func:`recorded`), else the default
    setting's (:func:`borrowed`); None when the run must choose."""
    if getattr(p, "tune", False):
        return None
    return recorded(chapter, vars(p), data, root) or borrowed(chapter, vars(p), data, root)


def will_choose(chapter: str, resolved: dict, root=None) -> bool:
    """Whether a run with the ``resolved`` parameters will choose learning rates on held-out data, as its
    notebook decides: ``tune`` true, or rates left free with no recorded choice to reuse (for any data)."""
    if "lr_grid" not in resolved:
        return False
    if "tune" in resolved:  # images, segmentation: each arm's rate may be fixed by its parameter
        if not [k for k in ARM_RATES if k in resolved and not resolved[k]]:
            return False
        return bool(resolved["tune"]) or not (any_recorded(chapter, resolved, root)
                                              or any_recorded(chapter, resolved, root, borrow=True))
    return not resolved.get("lr") and any_recorded(chapter, resolved, root) is None


def any_recorded(chapter: str, resolved: dict, root=None, borrow: bool = False) -> dict | None:
    """:func:`recorded` (or with ``borrow``, :func:`borrowed`) for any of the data recorded for this
    chapter: what a sweep or a rerun can know before its run has read its data."""
    seen = {data_key(r.get("data")): r.get("data") for r in provenance.load_records(root=root) if r["chapter"] == chapter}
    look = borrowed if borrow else recorded
    return next((found for d in seen.values() or [None] if (found := look(chapter, resolved, d, root))), None)


def source(tuned: dict | None) -> str:
    """Who chose a run's learning rates, for its page: this run, the seed-0 run of its setting, or the
    default setting's seed-0 run (:func:`borrowed`)."""
    if not tuned:
        return "this run"
    made = f"({tuned['finished'][:10]}, commit {(tuned['git_commit'] or '')[:8]})"
    if tuned.get("borrowed"):
        return (f"the seed-{TUNING_SEED} run of the default setting and this code {made}, reused because this run "
                f"changes only what pretraining does ({', '.join(tuned['borrowed'])}); `-p tune true` chooses them "
                "anew for this setting")
    return f"the seed-{TUNING_SEED} run of this setting and code {made}, whose choice every seed reuses"


@dataclass(frozen=True)
class ArmRates:
    """Each arm's learning rate (``lr``: arm -> rate), the held-out scores it was chosen by (``grid``:
    arm -> {rate: score}; empty where the rate was given) and, for the page, who chose them (``source``)."""

    lr: dict[str, float]
    grid: dict[str, dict[float, float]]
    source: str

    def table(self, rate: str = "learning rate", score: str = "held-out score", arm: str = "arm") -> pd.DataFrame:
        """One row per arm and rate tried: the rate, its held-out score and whether it was chosen."""
        rows = [{arm: name, rate: lr, score: self.grid[name].get(lr, float("nan")),
                 "chosen": "yes" if lr == self.lr[name] else ""}
                for name in self.lr for lr in (self.grid[name] or {self.lr[name]: None})]
        return pd.DataFrame(rows).set_index(arm)


def arm_rates(chapter: str, p, data: dict | None, fixed: dict[str, float | None],
              choose: Callable[[str], tuple[float, dict]]) -> ArmRates:
    """The one protocol by which every chapter sets its arms' learning rates.

    Args:
        chapter, p, data: the chapter, its resolved parameters and the data provenance it read.
        fixed: arm -> its rate where a parameter fixes it, None where it is to be chosen.
        choose: arm -> (rate, {rate: held-out score}), choosing on held-out training data.

    Returns:
        Each arm's rate: the fixed one; else the recorded choice this run reuses (:func:`reused`: the
        seed-0 run of the same setting and code, or the default setting's for a rerun that changes only
        pretraining); else ``choose(arm)``.
    """
    tuned = None if all(v is not None for v in fixed.values()) else reused(chapter, p, data)
    lr, grid = {}, {}
    for name, rate in fixed.items():
        if rate is not None:
            lr[name], grid[name] = rate, {}
        elif tuned and name in tuned["lr"]:
            lr[name] = tuned["lr"][name]
            grid[name] = {float(k): v for k, v in (tuned["lr_grid"].get(name) or {}).items()}
        else:
            lr[name], grid[name] = choose(name)
    given = all(v is not None for v in fixed.values())
    return ArmRates(lr, grid, "the parameters that fix each rate" if given else source(tuned))
