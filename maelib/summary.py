"""The summary: each claim of the paper against the recorded runs, from the run registry's queries.

Numbers come from the run registry (``results/runs``, written by :mod:`maelib.runs`), never typed in.
Each chapter records, per seed, the value of its MAE arm and of its baseline (``metrics.claim``). For a
claim and a profile, the runs made with the chapter's default parameters are grouped by what they
computed (:func:`maelib.tuning.setting`: the resolved parameters, seeds aside, and the data read) and by
the version that computed them (:func:`maelib.provenance.pool_version`: the code the chapter's notebook
reaches and its code cells): seeds are never pooled across versions. The newest group with at least
``MIN_SEEDS`` seeds is judged (else the newest group, which is then inconclusive).

Each claim has two comparisons, declared here before any result and never swapped by one: the paper's
(the MAE arm against scratch trained for the same supervised epochs), which gives the claim's verdict, and,
where a chapter trains it, the compute comparison (against scratch given the MAE arm's pretraining and
fine-tuning FLOPs, :func:`maelib.train.matched_epochs`; passes in runs made before FLOPs were counted), which
gets a verdict of its own (:func:`maelib.stats.compare`) and answers another question: was the pretraining
worth its compute? The statistics of a
verdict (the paired gap, its interval, the t-test's and the sign-flip p, Holm's adjustment across the
claims, the power at the paper's gap) are :mod:`maelib.stats`'s; this module gathers the values per claim and judges them, and
:mod:`maelib.claim_tables` lays out what the summary chapter shows.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from . import profiles, provenance, stats
from .catalog import CLAIMS, Claim, reference_text, reference_value  # noqa: F401 (the summary's names)
from .stats import MIN_SEEDS
from .tuning import setting




def paper_cell(c: Claim, group: dict | None) -> tuple[tuple[str, str, str], str]:
    """The paper's MAE cell a claim is judged against, and a note on it: for a claim whose MAE arm is
    chosen on validation among several options (Table 2's mask ratios), the paper's row for the option
    chosen most often by the group's seeds; otherwise the claim's own cell and no note."""
    chosen = [v.get("chosen") for v in group["seeds"].values()] if group and c.mae_row_by_choice else []
    ratios = [m.group(1) for text in chosen if text and (m := re.search(r"mask (\d*\.?\d+)", text))]
    if not ratios:
        return c.paper_mae_cell, ""
    ratio = max(set(ratios), key=ratios.count)
    row = c.mae_row_by_choice.format(f"{float(ratio):.2f}")
    share = f"{ratios.count(ratio)} of {len(ratios)} seeds" if len(set(ratios)) > 1 else "every seed"
    return (c.paper_mae_cell[0], row, c.paper_mae_cell[2]), f"the paper's row at mask {float(ratio):.2f}, which " \
        f"validation chose for {share}"


def dataset_of(record: dict, chapter: str) -> str:
    """The registry name of the data a run read (``"<name> (unverified copy)"`` when its checksum differed)."""
    data = record.get("data") or {}
    name = (provenance.results_of(record).dataset or data.get("dataset")
            or {"images": "tinyimagenet", "series": "ett", "tabular": "housing"}.get(chapter))
    return f"{name} (unverified copy)" if data.get("verified") is False else name


def seed_values(record: dict, key: str = "claim") -> list[dict]:
    """The per-seed values a record holds for one of its chapter's claims (metrics entry ``key``, a
    :class:`maelib.report.SeedValues`): [{seed, mae, baseline, ...}]; [] when it holds none. A malformed
    entry is a ValueError naming the record."""
    try:
        entry = provenance.results_of(record).claims.get(key)
        return entry.per_seed() if entry else []
    except ValueError as e:
        raise ValueError(f"the {record['chapter']} run record finished {record['finished']} has a malformed "
                         f"metrics.{key}: {e}") from None


def seeds_needed(chapter: str, profile: str, records: list[dict]) -> tuple[list[int], str]:
    """The seeds a verdict sweep of ``chapter`` at ``profile`` still has to run, and why: for each of the
    chapter's claims, the seeds that give 80% power at the paper's gap with the spread of the seeds this
    version of the code recorded, in the gap the verdict judges (the paper's comparison); at
    least five, at most twenty, or five while fewer than two are recorded (a pilot); the most any claim
    needs, less the seeds already recorded. Only runs with the profile's parameters as they are now count:
    after a profile changes (a grid, a schedule), the sweep starts the new setting's pilot."""
    want, recorded, why = stats.MIN_SEEDS, set(), []
    now = _parameters(setting({"resolved": vars(profiles.resolve(chapter, profile))}))
    for c in (c for c in CLAIMS if c.chapter == chapter):
        current = [g for g in groups(records, chapter, profile, c.key)
                   if g["code"] == provenance.version(chapter) and _parameters(g["setting"]) == now]
        vals = list(current[0]["seeds"].values()) if current else []
        recorded |= {v["seed"] for v in vals}
        if len(vals) < 2:
            why.append(f"{c.table}: {len(vals)} seed{'' if len(vals) == 1 else 's'} at this version and setting, so a "
                       f"pilot of {stats.MIN_SEEDS}")
            continue
        base = _values(current[0], "baseline")  # the comparison the verdict judges, as in claim_rows
        st = paper_comparison(c, current[0])
        gap = c.paper_gap_here(c.paper_mae, float(np.mean(base)))
        _, n = power_at_paper(c, c.paper_mae, _values(current[0], "mae"), base, st)
        want = max(want, n or stats.MAX_SEEDS)
        spread = f"the spread of {len(vals)} recorded seeds" + ("' ratios" if c.as_ratio else f" (sd {st['sd']:.3g})")
        why.append(f"{c.table}: {n} seeds for {stats.TARGET_POWER:.0%} power at the paper's gap ({gap:.3g}) with "
                   f"{spread}" if n else f"{c.table}: {stats.MAX_SEEDS} seeds, the most a sweep runs; "
                   f"{stats.TARGET_POWER:.0%} power at the paper's gap ({gap:.3g}) would need more with {spread}")
    return [s for s in range(want) if s not in recorded], "; ".join(why)


def _parameters(setting_text: str) -> dict:
    """A setting's parameters, without the data it read."""
    return {k: v for k, v in json.loads(setting_text).items() if k != "_data"}


def groups(records: list[dict], chapter: str, profile: str, key: str = "claim") -> list[dict]:
    """The default-parameter runs of ``chapter`` at ``profile``, grouped by setting and code hash, newest
    group first. Each group: {"code", "setting", "dataset", "finished", "seeds": {seed: values}, "budget"}
    with the newest value per seed, and each arm's training budget (:attr:`maelib.report.Results.budget`;
    {} where the runs did not count it)."""
    out: dict[tuple, dict] = {}
    for r in records:  # oldest first, so newer values replace older ones
        if r["chapter"] != chapter or r["profile"] != profile or not provenance.is_default(r):
            continue
        values = seed_values(r, key)
        if not values:
            continue
        group = (setting(r), provenance.pool_version(r))
        g = out.setdefault(group, {"code": group[1], "setting": group[0], "seeds": {}, "budget": {}})
        g.update(finished=r["finished"], dataset=dataset_of(r, chapter))
        g["budget"] = provenance.results_of(r).budget or g["budget"]  # each arm's FLOPs, where the run counted them
        for v in values:
            g["seeds"][v["seed"]] = v
    return sorted(out.values(), key=lambda g: g["finished"], reverse=True)


def judged_group(records: list[dict], chapter: str, profile: str, key: str = "claim") -> dict | None:
    """The newest group with at least MIN_SEEDS seeds, else the newest group (None without runs)."""
    found = groups(records, chapter, profile, key)
    enough = [g for g in found if len(g["seeds"]) >= MIN_SEEDS]
    return (enough or found or [None])[0]


def judged(part: pd.DataFrame) -> pd.Series | None:
    """Of one claim's rows (one per profile), the one its verdict comes from: the full profile's when it
    has at least MIN_SEEDS seeds, else the quick one's when it has, else the one with the most seeds
    (the full profile on a tie); None when no profile was run."""
    run = part[part["n"] > 0]
    if run.empty:
        return None
    enough = run[run["n"] >= MIN_SEEDS]
    pool = enough if len(enough) else run[run["n"] == run["n"].max()]
    full = pool[pool["profile"] == "full"]
    return (full if len(full) else pool).iloc[0]


def _values(group: dict | None, name: str) -> list | None:
    """One per-seed entry (``mae``, ``baseline``, ``floor``, ``baseline_fair``, a curve, the items) of a
    group, None if absent."""
    vals = list(group["seeds"].values()) if group else []
    return [v[name] for v in vals] if vals and name in vals[0] else ([] if name in ("mae", "baseline") else None)


LEARNS = 0.5  # every arm learns: no seed of an arm below this fraction of that arm's median (higher is better)
ARMS = (("mae", None), ("baseline", None), ("baseline_matched", "budget-matched scratch"))  # per-seed keys


def arm_label(c: Claim, key: str) -> str:
    """The name of one of :data:`ARMS` in claim ``c``'s tables."""
    return dict(ARMS)[key] or {"mae": c.mae_label, "baseline": c.base_label}[key]


def learned(values, higher_is_better: bool) -> bool:
    """Whether every seed of one arm learned: its worst seed within :data:`LEARNS` of the arm's median (for
    an error metric, at most 1 / LEARNS times the median)."""
    med = float(np.median(values))
    return min(values) >= LEARNS * med if higher_is_better else max(values) <= med / LEARNS


ITEMS_OF = {"baseline": "baseline_items", "baseline_matched": "matched_items"}  # an arm's per-item entry


def item_aggregate(items: list) -> str:
    """How per-item values give a seed's score, by their shape (:data:`maelib.stats.AGGREGATES`): a number
    per item is averaged ("mean"), a [sum, count] pair is a ratio of sums ("ratio"), a [intersections,
    unions] pair of per-class lists an mIoU ("iou"). A record names none: its claim holds per-seed lists only
    (:func:`maelib.provenance.claim_problem`)."""
    return {2: "mean", 3: "ratio", 4: "iou"}[np.ndim(items)]


def paper_comparison(c: Claim, g: dict | None, baseline: str = "baseline") -> dict:
    """The statistics of the MAE arm against ``baseline`` (the paper's comparison, the verdict's; or
    "baseline_matched", the compute comparison): with the test items' sampling error
    (:func:`maelib.stats.paired_items`) where every seed recorded both arms' per-item scores, else over seeds
    alone (:func:`maelib.stats.paired`); ``over`` says which."""
    mae_items, base_items = _values(g, "mae_items"), _values(g, ITEMS_OF[baseline])
    if mae_items and base_items and len({len(v) for v in mae_items + base_items}) == 1:
        metric = item_aggregate(mae_items)
        st = stats.paired_items(mae_items, base_items, c.higher_is_better, metric)
        scale = item_scale(_values(g, "mae"), stats.item_scores(np.asarray(mae_items, float), metric))
        return {**st, **{k: st[k] * scale for k in ("gap", "sd", "lo", "hi")}, "over": "seeds and test items"}
    return {**stats.paired(_values(g, "mae"), _values(g, baseline), c.higher_is_better), "over": "seeds"}


def item_scale(seed_values, item_scores) -> float:
    """What turns a score made from per-item values into the metric the seeds recorded, the power of ten
    nearest their ratio: 100 where the items are 0/1 hits and the metric a percentage (top-1 %), else 1 (a
    per-item Dice's mean may differ a little from the recorded one, which leaves out absent classes)."""
    return float(10.0 ** round(np.log10(abs(float(np.mean(seed_values)) / float(np.mean(item_scores))))))


def power_at_paper(c: Claim, paper_mae: float, mae, base, st: dict) -> tuple[float, int | None]:
    """The power at the paper's gap with the observed spread, and the seeds that would give 80%. Where the
    paper's gap is a ratio (:attr:`~maelib.catalog.Claim.as_ratio`), both on the log-ratio scale
    (:func:`maelib.stats.log_gaps`): the paper's ratio against the spread of our seeds' ratios."""
    if c.as_ratio and mae and base and min(min(mae), min(base)) > 0:
        logs = stats.log_gaps(mae, base, c.higher_is_better)
        effect = c.sign * float(np.log(paper_mae / c.paper_base))
        sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else float("nan")
        return stats.power(effect, sd, len(logs)), stats.seeds_for_power(effect, sd)
    gap = c.paper_gap_here(paper_mae, float(np.mean(base)) if base else float("nan"))
    return stats.power(gap, st["sd"], st["n"]), stats.seeds_for_power(gap, st["sd"])


def mae_check(g: dict | None) -> dict | None:
    """Whether the MAE learned, per seed (:func:`maelib.mae.versus_flat`): {n, worst (the largest ratio of
    its held-out loss to the flat predictor's), failed (seeds above :data:`maelib.mae.LEARNED`)}; None where
    the runs did not measure it."""
    from .mae import LEARNED

    ratios = _values(g, "mae_vs_flat")
    if not ratios:
        return None
    return {"n": len(ratios), "worst": float(max(ratios)), "failed": int(sum(r > LEARNED for r in ratios))}


CURVE_KEYS = (("mae", "mae_curve"), ("baseline", "baseline_curve"), ("baseline_matched", "matched_curve"))


def convergence(c: Claim, g: dict | None) -> dict[str, float]:
    """Each arm's gain over the last fifth of its supervised epochs (:func:`maelib.stats.last_fifth_gain`),
    averaged over the seeds, by arm key of :data:`ARMS`; {} where the runs recorded no curves or the claim
    states no tolerance. The mean, not the largest: one seed's gain is the difference of two noisy evaluations
    (0.01 mIoU apart from epoch to epoch on 101 frames), so the largest of n seeds grows with n and would call
    an arm unfinished for having more seeds."""
    if c.converged_within is None:
        return {}
    out = {}
    for key, curve in CURVE_KEYS:
        gains = [stats.last_fifth_gain(v, c.higher_is_better) for v in _values(g, curve) or []]
        if any(np.isfinite(gains)):
            out[key] = float(np.nanmean(gains))
    return out


VOLUME_PATCH = 16  # UNETR's patch in voxels, fixed by MONAI's UNETR (maelib.volumes.PATCH, which is computing)


def tokens(c: Claim, resolved: dict) -> tuple[int, list[int]] | None:
    """A claim's tokens per sample and the distinct numbers of them its MAE (or masked forecaster) sees, from
    a group's resolved parameters: (64, [16]); several where validation chooses among mask ratios; None where
    its tokens are not fixed patches (tables)."""
    from .masking import visible_count

    get = resolved.get
    if c.key == "claim_long":
        n, ratios = get("long_lag") // get("long_patch"), [get("long_mask_ratio")]
    elif c.chapter == "series":
        n, ratios = get("lag"), get("mask_ratios") or [get("mask_ratio")]  # the paper's rows: a token an hour
    elif c.chapter in ("images", "segmentation"):
        n, ratios = (get("img_size") // get("patch_size")) ** 2, [get("mask_ratio")]
    elif c.chapter == "volumes":
        n, ratios = int(np.prod([r // VOLUME_PATCH for r in get("roi")])), [get("mask_ratio")]
    else:
        return None
    return n, sorted({visible_count(n, r) for r in ratios})


def degenerate(c: Claim, group: dict | None) -> str | None:
    """Why a group's MAE task is degenerate, where it has fewer tokens a sample than the claim asks
    (:attr:`~maelib.catalog.Claim.min_tokens`: with a handful of tokens, three quarters hidden leaves too
    little to infer the rest from); None where it is not, or the claim sets no floor."""
    got = tokens(c, json.loads(group["setting"])) if group and c.min_tokens else None
    if not got or got[0] >= c.min_tokens:
        return None
    return (f"the MAE task is degenerate at this scale ({got[0]} tokens a sample, {got[1][-1]} seen; at least "
            f"{c.min_tokens} make a task), so the verdict is not meaningful at this scale")


PAPER_ARMS = ("mae", "baseline")  # the arms of the paper's comparison, by key of ARMS
COMPUTE_ARMS = ("mae", "baseline_matched")  # the arms of the comparison at the MAE arm's compute


def _notes(c: Claim, group: dict | None, mae, base, floor, arms: tuple[str, ...] = PAPER_ARMS) -> str:
    """The caveats a verdict's reason carries: another dataset than the paper's, an arm with a seed that
    did not learn (:func:`learned`), both forecasters worse than persistence, an MAE that did not learn its
    task or had too few tokens for one, one of the compared ``arms`` still improving at its last epoch
    (:func:`convergence`: an arm outside the comparison does not mark it), seeds made by another version than
    this book's code."""
    notes = []
    failed = [arm_label(c, key) for key, _ in ARMS
              if _values(group, key) and not learned(_values(group, key), c.higher_is_better)]
    if failed:
        notes.append(f"not every seed learned ({', '.join(failed)}: a seed far worse than its arm's median, "
                     "by the learning table's criterion), so the comparison says little")
    if group and group["dataset"] != c.paper_dataset:
        notes.append("a different dataset from the paper's")
    if floor is not None and np.mean(mae) > np.mean(floor) and np.mean(base) > np.mean(floor):
        notes.append("both arms are worse than the persistence floor")
    checked = mae_check(group)
    if checked and checked["failed"]:
        notes.append(f"the MAE did not learn on {checked['failed']} of {checked['n']} seeds (its held-out loss above "
                     "0.7 of the flat predictor's), so the verdict is not meaningful at this scale")
    too_few = degenerate(c, group)
    if too_few:
        notes.append(too_few)
    unfinished = [arm_label(c, k) for k, gain in convergence(c, group).items()
                  if k in arms and gain >= c.converged_within]
    if unfinished:
        notes.append(f"still improving at the last epoch ({', '.join(unfinished)}: a mean gain of at least "
                     f"{c.converged_within:g} over the last fifth), so the verdict is not meaningful at this scale")
    if group and group["code"] != provenance.version(c.chapter):
        notes.append("made by an older version of the code than this book's")
    return "".join(f"; {n}" for n in notes)


def _row(c: Claim, g: dict | None, profile: str) -> dict:
    """One claim's row at one profile from its judged group ``g`` (None: not run), verdict aside."""
    mae, base, fair = _values(g, "mae"), _values(g, "baseline"), _values(g, "baseline_fair")
    st = paper_comparison(c, g)  # the paper's comparison: the verdict
    matched = _values(g, "baseline_matched")  # the compute comparison, where the chapter trains that arm
    matched_st = paper_comparison(c, g, "baseline_matched") if matched and mae else None
    cell, cell_note = paper_cell(c, g)
    paper_gap = c.paper_gap_here(reference_value(cell), np.mean(base) if base else float("nan"))
    if c.as_ratio:
        ratio = reference_value(cell) / c.paper_base
        why = "its error scale is not stated" if c.paper_scale_unknown else "its errors are of other data"
        cell_note += ("; " if cell_note else "") + (f"{why}, so its gap is its ratio (MAE / baseline = {ratio:.3g}) "
                                                    "at our baseline's scale, and its power is on the log-ratio scale")
    power, need = power_at_paper(c, reference_value(cell), mae, base, st)
    return {"table": c.table, "claim": c.claim, "profile": profile, "metric": c.metric, **st,
            "power": power, "seeds_for_power": need, "mae_check": mae_check(g), "convergence": convergence(c, g),
            "mae": np.mean(mae) if mae else float("nan"), "baseline": np.mean(base) if base else float("nan"),
            "fair": np.mean(fair) if fair else float("nan"),
            "fair_gap": stats.paired(mae, fair, c.higher_is_better) if fair else None,
            "paper_cell": cell, "paper_note": cell_note, "paper_mae": reference_value(cell),
            "paper_base": c.paper_base, "paper_gap": paper_gap,
            "dataset": g["dataset"] if g else "", "code": (g["code"] or "")[:8] if g else "",
            "current": bool(g) and g["code"] == provenance.version(c.chapter),
            "matched_gap": matched_st, "budget": g["budget"] if g else {},
            "matched_verdict": stats.compare(matched_st) if matched_st else None,
            "matched_notes": _notes(c, g, mae, matched, None, COMPUTE_ARMS) if matched_st else "",
            "notes": _notes(c, g, mae, base, _values(g, "floor")) if g else ""}


def claim_rows(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """One row per claim and profile, from the group judged (the newest version with enough seeds):
    n, the arms' means, :func:`maelib.stats.paired`'s gap, interval, sd and p values, the Holm-adjusted p
    across the claims of that profile, the paper's cell and gap, the power at the paper's gap and the
    seeds that would give 80%, the version, the verdict and why."""
    frame = pd.DataFrame([_row(c, judged_group(records, c.chapter, prof, c.key), prof)
                          for c in CLAIMS for prof in profiles])
    frame["p_holm"] = np.nan
    for _, part in frame.groupby("profile"):  # the family: the claims judged at one profile
        frame.loc[part.index, "p_holm"] = stats.holm(part["p"].where(part["n"] >= MIN_SEEDS))
    family = frame.groupby("profile")["p_holm"].transform(lambda v: int(v.notna().sum()))
    words = [stats.decide(r.to_dict(), r["paper_gap"], p_family=None if np.isnan(r["p_holm"]) else r["p_holm"],
                          family=int(family[i])) for i, r in frame.iterrows()]
    frame["verdict"] = [w for w, _ in words]
    frame["reason"] = [why + notes for (_, why), notes in zip(words, frame["notes"])]
    return frame


def verdicts(rows: pd.DataFrame) -> dict[str, str]:
    """Each claim's verdict (:func:`judged` row of :func:`claim_rows`)."""
    out = {}
    for table, part in rows.groupby("table", sort=False):
        row = judged(part)
        out[table] = row["verdict"] if row is not None else "not run"
    return out


def ratio_frame(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """The mask-ratio sweeps of every claim whose MAE has a mask ratio (:attr:`~maelib.catalog.Claim.ratio_parameter`):
    runs that changed that parameter alone (the default ratio's runs included), one row per seed: table,
    chapter, profile, code, ratio, seed, mae, baseline (the claim's values, on its reported split), wall_s
    (the run's wall time, shared among the seeds it ran). Seeds are
    pooled by a verdict's rules: per claim and profile only the newest code version's runs, and of those only
    the runs whose setting apart from the ratio is the newest run's; the newest value per ratio and seed."""
    rows = []
    for c in (c for c in CLAIMS if c.ratio_parameter):
        for r in records:  # oldest first
            if (r["chapter"] != c.chapter or r["profile"] not in profiles
                    or not set(provenance.own_parameters(r)) <= {c.ratio_parameter}
                    or c.ratio_parameter not in r["resolved"] or not _pretrained_at_its_ratio(r["resolved"])):
                continue
            rest = {k: v for k, v in json.loads(setting(r)).items() if k != c.ratio_parameter}
            for v in seed_values(r, c.key):
                rows.append({"table": c.table, "chapter": c.chapter, "profile": r["profile"],
                             "code": provenance.pool_version(r), "rest": json.dumps(rest, sort_keys=True),
                             "ratio": float(r["resolved"][c.ratio_parameter]), "seed": v["seed"], "mae": v["mae"],
                             "baseline": v["baseline"], "wall_s": r["wall_s"] / max(1, len(seed_values(r, c.key)))})
    columns = ["table", "chapter", "profile", "code", "rest", "ratio", "seed", "mae", "baseline", "wall_s"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["code"] = frame["code"].fillna("")  # a record of no version is a version of its own, not skipped
    newest = frame.groupby(["table", "profile"])[["code", "rest"]].transform("last")
    frame = frame[frame["code"].eq(newest["code"]) & frame["rest"].eq(newest["rest"])]
    frame = frame.drop_duplicates(["table", "profile", "ratio", "seed"], keep="last")
    return frame.drop(columns="rest").sort_values(["table", "profile", "ratio", "seed"]).reset_index(drop=True)


def _pretrained_at_its_ratio(resolved: dict) -> bool:
    """Whether a run's MAE was pretrained at the mask ratio it names: one pretrained in the run is, a transferred
    reference encoder only at the reference's ratio (runs before :mod:`maelib.profiles` refused another said
    0.5 and read the 0.75 encoder), a checkpoint given by path never surely."""
    given = resolved.get("mae_checkpoint")
    return not given or (given == profiles.REFERENCE and np.isclose(resolved.get("mask_ratio"),
                                                                    profiles.REFERENCE_MASK_RATIO))


MIN_RATIO_SEEDS = 3  # seeds a ratio needs before its curve names a best ratio (issue #35)


def best_ratios(frame: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """The best mask ratio of each claim and profile of :func:`ratio_frame`, where at least two ratios have
    :data:`MIN_RATIO_SEEDS` seeds each (the others are left out of it): :func:`maelib.stats.best_ratio`'s
    result, with ``ratios`` (those it read) and ``seeds`` (the fewest a ratio had)."""
    out = {}
    for (table, prof), part in frame.groupby(["table", "profile"], sort=False):
        c = next(c for c in CLAIMS if c.table == table)
        values = {r: g["mae"].tolist() for r, g in part.groupby("ratio") if len(g) >= MIN_RATIO_SEEDS}
        if len(values) >= 2:  # each claim its own resampling: the draws of two modalities are independent
            seed = CLAIMS.index(c)
            out[table, prof] = {**stats.best_ratio(values, c.higher_is_better, seed=seed), "ratios": sorted(values),
                                "seeds": min(len(v) for v in values.values())}
    return out


def ratio_commands(frame: pd.DataFrame) -> list[tuple[str, float]]:
    """The commands that rerun the sweeps of :func:`ratio_frame` (the ratios other than a chapter's default,
    with their seeds), one per claim and profile, each with the hours its runs took (their wall times
    summed: runs side by side on a machine's cores take less wall time than that)."""
    out = []
    for (table, prof), part in frame.groupby(["table", "profile"], sort=False):
        c = next(c for c in CLAIMS if c.table == table)
        default = getattr(profiles.resolve(c.chapter, prof), c.ratio_parameter)
        swept = part[~np.isclose(part["ratio"], default)]
        if swept.empty:
            continue
        ratios = " ".join(f"{r:g}" for r in sorted(swept["ratio"].unique()))
        seeds = " ".join(map(str, sorted(swept["seed"].unique())))
        run = f"python -m maelib sweep {c.chapter} --profile {prof}"
        line = (f"{run} --ratios {ratios} --seeds {seeds} --publish" if c.ratio_parameter == "mask_ratio" else
                f"for R in {ratios}; do\n  {run} -p {c.ratio_parameter} $R --seeds {seeds} --publish\ndone")
        out.append((line, float(swept["wall_s"].sum()) / 3600))
    return out


# The paper's closing hypothesis, declared before the sweeps (issue #35): dense modalities want a lower mask
# ratio than images. Each pair reads "A's best ratio is lower than B's".
RATIO_HYPOTHESIS = (("PatchTST, H = 96", "Table 1"), ("Table 5", "Table 1"))
MODALITY = {"images": "images", "series": "time series", "segmentation": "2D segmentation",
            "volumes": "3D segmentation", "tabular": "tables"}  # each chapter's modality, as the paper names them


def modality(table: str) -> str:
    """The modality of a claim (its chapter's), as the paper names it."""
    return MODALITY[next(c.chapter for c in CLAIMS if c.table == table)]


def ratio_test(bests: dict[tuple[str, str], dict], profile: str) -> tuple[str, list[str]]:
    """The pre-declared test of :data:`RATIO_HYPOTHESIS` at ``profile``: "holds" where every pair's lower best
    ratio holds (:func:`maelib.stats.lower_best`), "ruled out" where one is ruled out, else "undecided"; and
    a sentence per pair (its share of bootstrap draws, or what is missing)."""
    words, lines = [], []
    for a, b in RATIO_HYPOTHESIS:
        names = f"{modality(a).capitalize()}' best ratio below that of {modality(b)}"
        missing = [modality(t) for t in (a, b) if (t, profile) not in bests]
        if missing:
            words.append("undecided")
            lines.append(f"{names}: undecided, as no curve of {' or '.join(missing)} has {MIN_RATIO_SEEDS} seeds a "
                         "ratio at its newest code version yet.")
            continue
        word, share = stats.lower_best(bests[a, profile]["draws"], bests[b, profile]["draws"])
        words.append(word)
        lines.append(f"{names}: {word} ({share:.0%} of the bootstrap draws put it lower).")
    verdict = "ruled out" if "ruled out" in words else "holds" if all(w == "holds" for w in words) else "undecided"
    return verdict, lines


def load(root=None) -> list[dict]:
    return provenance.load_records(root=root)


