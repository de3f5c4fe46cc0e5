"""How long a chapter run takes, and what choosing its learning rates costs, by the recorded runs.

The runner says it before a run (:func:`cost_phrase`, and :func:`note` when the run will choose its
learning rates) and hands :func:`expected_s` to the progress line
(:class:`maelib.progress.Watcher`). Estimates are keyed by profile, setting, code version and precision: a
bf16 run's time says nothing of an fp32 one's. A recorded time is scaled to the run to come by its epochs
and by the FLOPs of one sample's supervised training step (:func:`work_scale`): a larger crop or image, or
smaller patches, take longer a pass.
"""

from __future__ import annotations

import functools
import json
import statistics

from . import catalog, profiles, provenance, tuning
from .progress import minutes
from .train import GRID_EXTENSIONS


def _per_seed_s(record: dict) -> float:
    return record["wall_s"] / (record["resolved"].get("seeds") or 1)


def _whole(records: list[dict]) -> list[dict]:
    """The runs that trained from the start: a run that resumed from checkpoints (``resumed`` in its
    record, :func:`maelib.runs.resumes`) records only the part it ran. Records made before the flag existed
    count as whole (:func:`_typical_s` still guards against them)."""
    return [r for r in records if not r.get("resumed")]


def _typical_s(times: list[float]) -> float:
    """The median of a seed's times, leaving out any below half the median of them all: a run that resumed
    from an interrupted run's checkpoints records only the part it ran itself (2026-12-06: images seeds 3
    and 4, 5 of their 41 min), and would make a run seem twice as fast as it is."""
    mid = statistics.median(times)
    return statistics.median([t for t in times if t >= mid / 2])


def epochs_of(resolved: dict) -> int:
    """A setting's epochs, all its counts of them added (``pretrain_epochs`` + ``epochs``, ...)."""
    return sum(v for k, v in resolved.items() if k.endswith("epochs") and isinstance(v, int) and not isinstance(v, bool))


def epoch_scale(recorded: dict, resolved: dict | None) -> float:
    """How much longer a run of the ``resolved`` parameters takes than a recorded run of ``recorded``, by their
    epochs (:func:`epochs_of`): a schedule made longer (segmentation's 30 epochs to 80, 2026-12-06) leaves
    only the older, shorter runs on record, and their times alone said 31 min for a run of about 55. 1 where
    either counts no epochs, or ``resolved`` is None."""
    old, new = epochs_of(recorded), epochs_of(resolved or {})
    return new / old if old and new else 1.0


def _supervised_step(chapter: str, p) -> float | None:
    """FLOPs (forward and backward) of one sample's supervised training step of the chapter's network with
    parameters ``p``, counted by the chapter's own ``flops_per_sample`` on CPU; None for a chapter without
    one. The class count only sets the last layer's width: a fixed 12 (CamVid) and 3 (the hippocampus) stand
    in for the data's."""
    if chapter in ("images", "payoff"):
        from .images import flops_per_sample
        return flops_per_sample(p)["supervised"]
    if chapter == "segmentation":
        from .segmentation import flops_per_sample
        return flops_per_sample(p, 12)["supervised"]
    if chapter == "volumes":
        from .volumes import flops_per_sample
        return flops_per_sample(p, p.roi, 3)["supervised"]
    return None


@functools.lru_cache(maxsize=16)
def _step_flops(chapter: str, profile: str, network: str) -> float | None:
    """:func:`_supervised_step` at ``profile`` with the ``network`` parameters (JSON) over its values; None where
    the chapter counts none, or where the setting does not resolve (a record of older code) or its preflight
    refuses it (too large for memory, say): nothing is built for a setting the run would refuse."""
    try:
        p = profiles.resolve(chapter, profile, **json.loads(network))
        check = catalog.of(chapter).own_check()
        if check:
            check(p, "cpu")
        return _supervised_step(chapter, p)
    except Exception:  # an estimate is never worth a failure: the run's own preflight says what is wrong
        return None


def flops_scale(chapter: str, recorded: dict, resolved: dict | None) -> float:
    """How many times the FLOPs of one sample's supervised training step of ``resolved`` exceed those of
    ``recorded`` (both resolved parameters): 1 where the parameters that set them (the chapter's
    ``catalog.Chapter.network``) agree, where either is None, or where the chapter counts no FLOPs. Counting
    builds both networks once a process (for the 0.5 mm hippocampus crop, 10-25 s on 2 busy cores)."""
    keys = catalog.of(chapter).network
    if resolved is None or not keys:
        return 1.0
    old, new = ({k: r[k] for k in keys if k in r} for r in (recorded, resolved))
    if old == new:
        return 1.0
    before, after = (_step_flops(chapter, r.get("profile") or "quick", json.dumps(n, sort_keys=True))
                     for r, n in ((recorded, old), (resolved, new)))
    return after / before if before and after else 1.0


def work_scale(chapter: str, recorded: dict, resolved: dict | None) -> float:
    """How much longer a run of ``resolved`` takes than a recorded run of ``recorded``: :func:`epoch_scale`
    times :func:`flops_scale` (the supervised step's ratio stands for the pretraining step's too). 2026-12-07:
    the hippocampus crop grew from 32 x 48 x 32 to 64 x 64 x 48 voxels and its schedule 4.1-fold; scaled by the
    epochs alone, the sweep said 55 min for a seed that took about 4 h."""
    return epoch_scale(recorded, resolved) * flops_scale(chapter, recorded, resolved)


def precision_of(record: dict) -> str:
    """The precision a run trained in; records made before ``precision`` existed trained in bf16 on CUDA
    (autocast was on there) and in fp32 elsewhere."""
    if record["resolved"].get("precision"):
        return record["resolved"]["precision"]
    return "bf16" if str(record.get("device") or "").startswith("cuda") else "fp32"


def _classified(chapter: str, profile: str, root, precision: str) -> list[tuple[dict, bool]]:
    """The chapter's default-parameter runs at ``profile`` in ``precision`` (a bf16 run's time says nothing
    of an fp32 one's), oldest first, each with whether it chose its learning rates. A run that holds a
    choice (``lr_grid``) made it unless an earlier seed-0 run of its setting and code had; every other run
    chose nothing."""
    made, out = set(), []
    for r in provenance.load_records(chapter, root):
        if r["profile"] != profile or not provenance.is_default(r) or precision_of(r) != precision:
            continue
        grid = provenance.results_of(r).lr_grid
        key = (provenance.pool_version(r), tuning.setting(r))
        chose = bool(grid) and all(grid.values()) and key not in made
        if chose and r["seed"] == tuning.TUNING_SEED:
            made.add(key)
        out.append((r, chose))
    return out


def tuning_cost(chapter: str, profile: str, root=None, precision: str = "fp32", resolved: dict | None = None) -> dict | None:
    """What choosing the learning rates adds to a run, by the newest code version whose records hold a
    run that chose them and runs that reused the choice: {"cost_s", "chose_s", "reused_s" (a seed),
    "code", "scale"}; None when no such pair is recorded. With ``resolved`` (the run to come), the times are
    scaled to its epochs and its FLOPs a sample (:func:`work_scale`, in "scale")."""
    classified = _classified(chapter, profile, root, precision)
    for code in dict.fromkeys(provenance.pool_version(r) for r, _ in reversed(classified)):  # newest code first
        chose = _whole([r for r, c in classified if c and provenance.pool_version(r) == code])
        reused = _whole([r for r, c in classified if not c and provenance.pool_version(r) == code
                         and provenance.results_of(r).lr_grid])
        if chose and reused:
            per_seed = _typical_s([_per_seed_s(r) for r in reused])
            first = chose[-1]
            cost = first["wall_s"] - (first["resolved"].get("seeds") or 1) * per_seed
            if cost > 0:
                k = work_scale(chapter, first["resolved"], resolved)
                return {"cost_s": k * cost, "chose_s": k * first["wall_s"], "reused_s": k * per_seed, "code": code,
                        "scale": k}
    return None


def cost_phrase(chapter: str, profile: str, root=None, precision: str = "fp32", resolved: dict | None = None) -> str:
    """One clause on what choosing the learning rates costs at ``profile`` in ``precision``, for a note
    said before a run (of the ``resolved`` parameters, whose epochs and size scale the recorded times)."""
    c = tuning_cost(chapter, profile, root, precision, resolved)
    if c is None:
        return f"no recorded pair of {precision} runs at the {profile} profile tells what choosing them costs"
    scaled = f", scaled by {c['scale']:.2g} to this run's epochs and size" if abs(c["scale"] - 1) > 0.01 else ""
    return (f"choosing them takes about {minutes(c['cost_s'])} at the {profile} profile in {precision}, by the "
            "recorded runs "
            f"(code {(c['code'] or 'unknown')[:8]}: the run that chose them took {minutes(c['chose_s'])}, "
            f"the runs that reused its choice {minutes(c['reused_s'])} a seed{scaled})")


def expected_s(chapter: str, resolved: dict, root=None) -> float | None:
    """About how long a run with the ``resolved`` parameters takes, by the recorded runs; None where they
    do not tell. Where it changes nothing but pretraining (or nothing), the default setting's runs that chose
    no learning rates, of the newest code with one that trained from the start (:func:`_whole`), give a seed's
    time (their median, each scaled to this run's epochs and size by :func:`work_scale`), and
    :func:`tuning_cost` is added when this run chooses them. For any other setting, the newest run of that
    setting gives the time."""
    profile, seeds, precision = resolved["profile"], resolved.get("seeds") or 1, resolved.get("precision") or "fp32"
    defaults = vars(profiles.resolve(chapter, profile))
    differ = {k for k in resolved if k not in provenance.CONTROL and resolved[k] != defaults.get(k)}
    if differ <= set(tuning.PRETRAINING_ONLY):
        reused = [r for r, chose in _classified(chapter, profile, root, precision) if not chose]
        timed = _whole(reused) or reused  # the newest code with a run that trained from the start, if any
        if not timed:
            return None
        newest = provenance.pool_version(timed[-1])
        base = _typical_s([_per_seed_s(r) * work_scale(chapter, r["resolved"], resolved) for r in timed
                           if provenance.pool_version(r) == newest]) * seeds
        if not will_choose(chapter, resolved, root):
            return base
        cost = tuning_cost(chapter, profile, root, precision, resolved)
        return base + cost["cost_s"] if cost else None
    want = tuning.setting({"resolved": resolved})
    same = [r for r in provenance.load_records(chapter, root) if r["profile"] == profile
            and tuning.setting({"resolved": r["resolved"]}) == want]  # any data: this is an estimate
    return _per_seed_s((_whole(same) or same)[-1]) * seeds if same else None


def will_choose(chapter: str, resolved: dict, root=None) -> bool:
    """Whether a run of the ``resolved`` parameters will choose its learning rates on held-out data:
    :func:`maelib.tuning.will_choose`, and also for a chapter whose arms share one ``lr`` but which has a
    ``tune`` (volumes, since 2026-12-07): such a run chooses unless ``lr`` is given, or unless, ``tune`` being
    false, a choice of its own setting or of the default setting is recorded (a mask-ratio rerun borrows
    the default's). ``tuning.will_choose`` reads ``tune`` as a sign of a rate parameter per arm; mending it
    there would change every chapter's code version, so the runner asks here."""
    if "tune" not in resolved or any(k in resolved for k in tuning.ARM_RATES):
        return tuning.will_choose(chapter, resolved, root)
    if "lr_grid" not in resolved or resolved.get("lr"):
        return False
    return bool(resolved["tune"]) or not (tuning.any_recorded(chapter, resolved, root)
                                          or tuning.any_recorded(chapter, resolved, root, borrow=True))


def _free_arms(chapter: str, resolved: dict) -> int:
    """How many arms' rates a run leaves to be chosen: those of :data:`~maelib.tuning.ARM_RATES` left None, or,
    for a chapter whose arms share one ``lr``, every arm (``catalog.Chapter.tuned_arms``) where it is None."""
    if any(k in resolved for k in tuning.ARM_RATES):
        return sum(1 for k in tuning.ARM_RATES if k in resolved and not resolved[k])
    return 0 if resolved.get("lr") else catalog.of(chapter).tuned_arms


def note(chapter: str, resolved: dict, root=None) -> str | None:
    """What a run is about to do about its learning rates, said before it starts when it will choose them
    (a grid of extra trainings) or reuse the default setting's; None when it reuses its own setting's.
    The data are not known before the run, so any recorded data of the same setting count here."""
    if "lr_grid" not in resolved:
        return None
    grid = len(resolved["lr_grid"])
    if "tune" not in resolved:  # series, tabular
        if not tuning.will_choose(chapter, resolved, root):
            return None
        extra = catalog.of(chapter).tuned_arms * (grid - 1)
        if "long_lr_grid" in resolved:  # series: the long-horizon arms choose on the validation months too
            extra += 2 * len(resolved["long_horizons"]) * (len(resolved["long_lr_grid"]) - 1)
        return (f"{chapter}: no recorded choice for this setting and code, so this run chooses each network's "
                f"learning rate on held-out data: about {extra} extra trainings (more where a grid grows)")
    free = _free_arms(chapter, resolved)  # the arms whose rate is to be chosen
    if not free:
        return None
    cost = free * grid
    choose = (f"chooses {free} arms' learning rates on held-out training data: {cost} extra trainings "
              f"(up to {cost + free * GRID_EXTENSIONS} where the grid of {grid} grows), most of the run's time")
    if resolved["tune"]:
        return f"{chapter}: tune is true, so this run {choose}"
    if tuning.any_recorded(chapter, resolved, root):
        return None
    found = tuning.any_recorded(chapter, resolved, root, borrow=True)
    if found:
        return (f"{chapter}: this run changes only what pretraining does ({', '.join(found['borrowed'])}) and "
                f"reuses the learning rates chosen for the default setting; -p tune true chooses them anew ({cost} "
                "extra trainings)")
    return f"{chapter}: no recorded choice for this setting and code, so this run {choose}"
