"""Does bf16 change what the study concludes? The same seeds of a chapter in fp32 and in bf16, side by side.

Reads the run registry (``results/runs``): for each chapter named, the runs of the newest code version that has
both at the quick profile, one group per precision (fp32 runs were asked for with ``-p precision fp32``; bf16 is
what ``precision="auto"`` gives on a CPU with bf16 units), each with the chapter's default parameters
otherwise. For every arm of the chapter's claim and for the claim's gap (MAE arm minus each baseline), it
prints the paired difference bf16 - fp32 over the seeds both precisions ran (mean, 95% t-interval, p) beside
the seed-to-seed spread (sd) of the fp32 runs: a precision that changes nothing of substance leaves the
difference well inside that spread.

    python -m maelib sweep tabular --seeds 0 1 2 3 4 -p precision bf16   # fp32 is the profile's
    python -m maelib sweep tabular --seeds 0 1 2 3 4
    R="-p finetune_lr 0.004 -p scratch_lr 0.002 -p matched_lr 0.002"   # the default setting's chosen rates
    python -m maelib sweep images --seeds 0 1 2 3 4 -p precision fp32 $R
    python -m maelib sweep images --seeds 0 1 2 3 4 -p precision bf16 $R
    python benchmarks/precision_agreement.py images tabular
"""

from __future__ import annotations

import argparse

import numpy as np

from maelib import estimates, provenance, stats, summary, tuning

CONTROL = set(tuning.CONTROL) | {"precision"} | set(tuning.ARM_RATES)  # rates given alike to both precisions


def per_seed(chapter: str, profile: str) -> tuple[str | None, dict[str, dict[int, dict]]]:
    """(version, precision -> seed -> that seed's claim values) for the newest code version at which
    ``chapter`` has runs in both precisions whose only given parameters are controls and the precision."""
    by_version: dict[str, dict] = {}
    for r in provenance.load_records(chapter):
        if r["profile"] != profile or set(r["parameters"]) - CONTROL:
            continue
        prec = estimates.precision_of(r)
        for values in summary.seed_values(r):
            by_version.setdefault(provenance.pool_version(r), {}).setdefault(prec, {})[values["seed"]] = values
    both = [v for v, groups in by_version.items() if set(groups) >= {"fp32", "bf16"}]  # oldest first
    return (both[-1], by_version[both[-1]]) if both else (None, {})


def compare(chapter: str, profile: str) -> None:
    version, groups = per_seed(chapter, profile)
    if version is None:
        print(f"{chapter}: no code version has runs in both precisions at the {profile} profile")
        return
    seeds = sorted(set(groups["fp32"]) & set(groups["bf16"]))
    fp32, bf16 = ([groups[p][s] for s in seeds] for p in ("fp32", "bf16"))
    arms = [k for k in fp32[0] if k not in ("seed",) and isinstance(fp32[0][k], (int, float))]
    rows = {arm: ([v[arm] for v in bf16], [v[arm] for v in fp32]) for arm in arms}
    for base in (a for a in arms if a.startswith("baseline")):
        rows[f"gap: mae - {base}"] = tuple([v["mae"] - v[base] for v in vals] for vals in (bf16, fp32))
    print(f"\n{chapter} ({profile}, code version {version[:8]}), seeds {seeds}: bf16 - fp32, paired")
    print("| value | fp32 mean (sd) | bf16 mean (sd) | bf16 - fp32 [95% CI] | p | |diff| / fp32 sd |")
    print("|---|---|---|---|---|---|")
    for name, (b, f) in rows.items():
        st = stats.paired(b, f)
        sd = float(np.std(f, ddof=1))
        print(f"| {name} | {np.mean(f):.4g} ({sd:.2g}) | {np.mean(b):.4g} ({np.std(b, ddof=1):.2g}) | "
              f"{st['gap']:+.3g} [{st['lo']:+.3g}, {st['hi']:+.3g}] | {st['p']:.2g} | {abs(st['gap']) / sd:.2f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="+")
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args(argv)
    for chapter in args.chapters:
        compare(chapter, args.profile)


if __name__ == "__main__":
    main()
