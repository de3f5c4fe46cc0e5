# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Summary: the paper's claims against what we measured
#
# The paper makes five claims, one per table; the series chapter adds a sixth, the forecasting literature's.
# Each is judged below by the paper's own comparison, and, where a chapter trains it, by a second one at
# equal compute. {glue:text}`findings`

# %% tags=["parameters"]
profile = "auto"  # smoke, quick or full; only used to label this build
records_dir = None  # a run registry to read alone (default: results/runs and the local results/local)

# %% tags=["remove-cell"]
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from maelib import claim_tables, crossover, profiles, provenance, published, stats, summary, viz

p = profiles.resolve_namespace("summary", globals())
glue("params", vars(p), display=False)
root = Path(p.records_dir) if p.records_dir else None  # None: the published registry and the local one
with warnings.catch_warnings(record=True) as set_aside:  # shown on the page (below), not only in a log
    warnings.simplefilter("always")
    records = summary.load(root)
set_aside = [str(w.message) for w in set_aside if issubclass(w.category, provenance.RecordSetAside)]
rows = summary.claim_rows(records)
BY_CLAIM = {"table": claim_tables.PAPERS}  # tables whose rows are the paper's Tables 1-5
table = claim_tables.claims_table(records)
counts = pd.Series([r["profile"] for r in records]).value_counts() if records else pd.Series(dtype=int)
glue("n_records", len(records), display=False)
glue("n_quick", int(counts.get("quick", 0)), display=False)
glue("n_full", int(counts.get("full", 0)), display=False)
n_other = len(records) - int(counts.get("quick", 0)) - int(counts.get("full", 0))
glue("n_other", f" and {n_other} at other profiles (smoke runs, which only check that a chapter runs, and which no "
     "verdict reads)" if n_other else "", display=False)
glue("min_seeds", summary.MIN_SEEDS, display=False)
glue("min_flip_p", viz.sig(stats.sign_flip_p(list(range(1, summary.MIN_SEEDS + 1))), 3), display=False)
glue("n_claims", len(summary.CLAIMS), display=False)
judged = summary.verdicts(rows)
glue("findings", claim_tables.findings(records), display=False)
kinds = pd.Series(judged).map(lambda v: "inconclusive" if v.startswith("inconclusive") else v).value_counts()
FORMS = {"holds": ("holds", "hold"), "does not hold": ("does not hold", "do not hold"),
         "the paper's effect ruled out": ("rules out the paper's effect", "rule out the paper's effect"),
         "inconclusive": ("is inconclusive", "are inconclusive"), "not run": ("was not run", "were not run")}
parts = [f"{kinds[k]} {FORMS[k][int(kinds[k] != 1)]}" for k in FORMS if kinds.get(k)]
glue("verdict_counts", ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts), display=False)

# %% tags=["remove-input"]
viz.show_table(claim_tables.glance_table(records), "The claims at a glance: each claim in words, the verdict of the "
               "paper's comparison (the MAE arm against scratch trained as long) and of the comparison at the MAE "
               "arm's compute, and the scale it was judged at. The sections below give the numbers, the checks and the "
               "method.", "table-glance")

# %% [markdown]
# A verdict marked "older code" rests on seeds made by another version of the code than this book's. A
# version is not a git commit: it is a hash of the code a chapter's computation reaches (its notebook's
# code cells and the maelib modules they call), so a commit that leaves that code alone keeps the
# version, and seeds made at many commits pool as one. The last section, on each verdict's history,
# says more.

# %% [markdown]
# ## Which mask ratio suits which modality
#
# The paper ends on a hypothesis it does not test: images are redundant, so a high mask ratio makes the MAE
# learn what they show, while time series and tables are dense, "akin to natural language", so a high mask
# ratio may hinder the MAE's learning. Declared before the sweeps, the test is: *the best mask ratio of
# the time series and of the tables is lower than that of images*. Each modality's MAE arm is rerun at
# several pretraining mask ratios (`python -m maelib sweep <chapter> --ratios ...`), the rest of its
# setting as the verdict's, with at least {glue:text}`ratio_min_seeds` seeds a ratio. The best ratio is the
# one with the best mean score, and its interval comes from a bootstrap that redraws each ratio's seeds;
# the test compares two modalities' bootstrap draws. {glue:text}`ratio_verdict`

# %% tags=["remove-input"]
ratio_frame = summary.ratio_frame(records)
swept_at = {prof: {t for t, part in ratio_frame[ratio_frame["profile"] == prof].groupby("table") if part["ratio"].nunique() > 1}
            for prof in ("full", "quick")}  # the profile with the most modalities swept, the full one on a tie
ratio_profile = max(swept_at, key=lambda prof: len(swept_at[prof]))
ratio_frame = ratio_frame[ratio_frame["profile"] == ratio_profile]
best_by_profile = summary.best_ratios(ratio_frame)
bests = {t: b for (t, prof), b in best_by_profile.items() if prof == ratio_profile}
ratio_word, ratio_lines = summary.ratio_test(best_by_profile, ratio_profile)
glue("ratio_min_seeds", summary.MIN_RATIO_SEEDS, display=False)
glue("n_ratio_points", len(ratio_frame), display=False)
claim_of = {c.table: c for c in summary.CLAIMS}
swept = [t for t in dict.fromkeys(ratio_frame["table"]) if ratio_frame[ratio_frame["table"] == t]["ratio"].nunique() > 1]
transferred = {c.table for c in summary.CLAIMS if c.ratio_parameter
               and getattr(profiles.resolve(c.chapter, ratio_profile), "mae_checkpoint", None)}
unswept = [f"{summary.modality(c.table)} ({c.table})" + (", whose encoder at this profile is transferred from an image "
           "MAE, so its ratio is that MAE's: its curve needs an image MAE pretrained at each ratio" if c.table in
           transferred else "") for c in summary.CLAIMS if c.ratio_parameter and c.table not in swept]
older = [t for t in swept if ratio_frame[ratio_frame["table"] == t]["code"].iloc[-1] != provenance.version(claim_of[t].chapter)]
glue("ratio_verdict", f"At the {ratio_profile} profile the hypothesis is {ratio_word}. " + " ".join(ratio_lines)
     + (f" Not swept at its newest code version yet: {'; '.join(unswept)}." if unswept else "")
     + (f" Swept by older code than this book's: {', '.join(older)}." if older else ""), display=False)
anchors = {c.table: published.MASK_RATIOS[c.chapter] for c in summary.CLAIMS  # the published ratios drawn
           if c.ratio_parameter and c.chapter in published.MASK_RATIOS}
if swept:
    fig = viz.ratio_panels(ratio_frame[ratio_frame["table"].isin(swept)], bests, claim_of, anchors,
                           {t: f"{summary.modality(t)} ({t})" for t in swept})
else:
    fig = viz.message_figure("No mask-ratio sweep is recorded yet.")
viz.glue_figure("fig_ratio_modalities", fig)
ratio_rows = []
for t in swept:
    part, c = ratio_frame[ratio_frame["table"] == t], claim_of[t]
    b = bests.get(t)
    ratio_rows.append({"modality": f"{summary.modality(t)} ({t})", "metric": c.metric,
                       "ratios (seeds)": ", ".join(f"{r:g} ({n})" for r, n in part.groupby("ratio").size().items()),
                       "best ratio [95% interval]": f"{b['best']:g} [{b['low']:g}, {b['high']:g}]" if b else "–",
                       "share of draws best": f"{b['share'][b['best']]:.0%}" if b else "–",
                       "published": anchors[t].legend if t in anchors else "–"})
if ratio_rows:
    viz.show_table(pd.DataFrame(ratio_rows).set_index("modality"), "The best pretraining mask ratio per modality: "
                   "the ratios run with their seeds, the ratio of the best mean score with its bootstrap interval "
                   "and the share of draws in which it was best, and the ratio a published anchor used.",
                   "table-ratio-best")
    display(Markdown("The table gives, per modality swept, the ratios run with their seeds, the best ratio with "
                     "its interval, and the ratio a published anchor used; the figure below draws every seed."))

# %% [markdown]
# ```{glue:figure} fig_ratio_modalities
# :name: fig-ratio-modalities
# The downstream metric (on the claim's reported split) against the pretraining mask ratio, one panel per
# modality swept (each at the newest code version that swept it): every seed (dots) and the mean per ratio (line); in grey, the arm without
# pretraining, which has no ratio (mean ± sd of its seeds); in green, the 95% bootstrap interval of the
# best ratio (a bracket at the top: the ratios it spans) and the best mean (starred); dashed, a published
# ratio of that modality.
# ```
#
# The [interactive masking chapter](06_masking) shows what a ratio hides in an image, and lets you move
# it.

# %% [markdown]
# ## When MAE pretraining pays: compute and labels
#
# Whether MAE + fine-tuning beats scratch depends on the compute each arm gets and on how many labels
# there are. The [chapter on when MAE pretraining pays](09_payoff) draws both arms' curves of validation top-1
# against training FLOPs (the MAE arm's pretraining counted in full), on all of Chapter 1's labelled images
# and on a fraction of them, and reads off the compute from which the MAE curve stays above scratch's: the
# crossover, declared before the runs, with an interval over seeds.
#
# {glue:text}`payoff_sentence`
#
# {glue:text}`payoff_check`

# %% tags=["remove-input"]
pay = crossover.frame(records)
pay_profile = "full" if pay["profile"].eq("full").any() else "quick"
pay = pay[pay["profile"] == pay_profile]
if len(pay):
    pay_cross = crossover.crossovers(crossover.gaps(pay))
    fig = viz.payoff_panels(pay, (crossover.MAE_ARM, crossover.SCRATCH), pay_cross)
    n_pay = pay["seed"].nunique()
    check = crossover.branch_check(pay, records, pay_profile, profiles.resolve("payoff", pay_profile).finetune_epochs)
    checked = "; ".join(f"{arm} {viz.sig(np.mean(c['branch']))}% against {viz.sig(np.mean(c['separate']))}% "
                        f"± {viz.sig(np.std(c['separate'], ddof=1), 2)} ({'within' if c['within'] else 'outside'} two "
                        "standard deviations)" for arm, c in check.items())
    glue("payoff_sentence", (crossover.sentence(pay_cross) or "No MAE budget lies within scratch's compute yet.")
         + f" From {viz.count(n_pay, 'seed')} at the {pay_profile} profile"
         + ("" if n_pay >= summary.MIN_RATIO_SEEDS else f", fewer than the {summary.MIN_RATIO_SEEDS} this needs: "
            "read it as a first look") + ".", display=False)
    glue("payoff_check", f"Each budget is a branch of one warmup-stable-decay run. At Chapter 1's budget on all "
         f"the labels, the branches against Chapter 1's separate runs with a cosine decay (mean of its seeds ± sd): "
         f"{checked}." if checked else "", display=False)
else:
    fig = viz.message_figure("No run of the chapter on when MAE pretraining pays is recorded yet.")
    glue("payoff_sentence", "No run of it is recorded yet (`python -m maelib sweep payoff --seeds 0 1 2`).",
         display=False)
    glue("payoff_check", "", display=False)
viz.glue_figure("fig_payoff_summary", fig)

# %% [markdown]
# ```{glue:figure} fig_payoff_summary
# :name: fig-payoff-summary
# Validation top-1 against training compute (log scale), per label fraction: each arm's mean per budget
# (line) and every seed (dots); dotted, the crossover, and shaded, its 95% interval over seeds where there
# is one.
# ```

# %% [markdown]
# ## Is each verdict meaningful?
#
# A verdict means something only where the MAE had a task, learned it, and every arm finished learning. An
# MAE has a task when a sample holds enough tokens that the visible quarter says something about the rest
# (at least 64 for an image, as the reference model that reconstructs, and 48 for a volume). The MAE learned
# when its held-out loss on hidden tokens is at most 0.7 of the flat predictor's, which fills every hidden
# token with the mean of the visible ones; an arm finished when its validation metric gained less than a
# stated amount over its last fifth of epochs, on average over the seeds (half a point of top-1, 0.005 of
# mIoU or Dice; one seed's gain is the difference of two noisy evaluations, and the average of the seeds is
# the less noisy estimate). A verdict
# whose judged runs fail any of these checks is marked "not meaningful at this scale" in the tables. An
# arm still improving marks the comparisons it is in: the MAE arm both, scratch trained as long the
# paper's, and the budget-matched scratch arm the comparison at the MAE arm's compute.

# %% tags=["remove-input"]
glue("checks_sentence", claim_tables.checks_sentence(records), display=False)
viz.show_table(claim_tables.checks_table(records), "The checks of each verdict's judged runs: the MAE's worst seed "
               "against the flat predictor, each arm's gain over its last fifth of epochs, averaged over the seeds (the forecasters "
               "keep their best validation epoch instead), and what the interval covers.", "table-checks")

# %% [markdown]
# {glue:text}`checks_sentence`

# %% [markdown]
# ## How the verdicts are made
#
#
# Each of the paper's tables makes a claim: that MAE pretraining helps (images, 2D and 3D segmentation)
# or that it does not (time series, tables). The series chapter adds a second claim, the forecasting
# literature's: that masked pretraining helps a patch transformer forecast 96 hours ahead (PatchTST, whose
# only pretrained ETTh1 numbers are multivariate; its direction is what ours is judged against). This
# chapter sets each claim beside the runs recorded in the run registry (`results/runs/`, one JSON
# file per finished run, written by `maelib.runs`): the runs of every chapter at its default
# parameters, at the quick profile (CPU) and the full profile (GPU) where they exist.
#
# Each run records, per seed, its MAE arm and its baseline, trained with the same seed. The comparison is
# paired: the gap per seed (MAE minus baseline, signed so that a positive gap means the MAE did better),
# its mean over seeds, the 95% t-interval of that mean, the t-test's p of a zero gap and an exact
# sign-flip p (every one of the 2ⁿ sign patterns of n gaps; with five seeds it cannot fall below
# {glue:text}`min_flip_p`). The claims of one profile form a family, so each p is also given after Holm's
# correction, and a gap counts only when it survives it. Seeds are pooled only when one version of the
# code (the library and the chapter's notebook) made them on one setting and dataset. Where the runs
# recorded each arm's score on every test item (an image, a window, a frame, a volume, a row), the interval
# and the p come from a paired bootstrap that draws the seeds and the test items together, so they hold the
# test set's own sampling error as well as the training noise (initialisation, masks, batch order); runs
# made before items were recorded give the t-interval over seeds alone, and the table of checks says which.
#
# Each claim is judged by the paper's own comparison: the MAE arm against scratch trained for the same
# supervised epochs. Where a chapter also trains scratch on the MAE arm's whole compute, its pretraining and
# fine-tuning together (images, 2D and 3D segmentation), that second comparison gets a verdict of its own
# in the last column: was the pretraining worth its compute? Both comparisons were declared before any
# run, and neither is chosen by which one scored better. The compute is counted in FLOPs (forward and
# backward, by torch's `FlopCounterMode` on each arm's real step), and the table of the two comparisons
# gives each arm's. Runs made before FLOPs were counted matched passes instead, which gave that scratch
# arm more compute than the MAE arm (a pretraining pass encodes only the visible tokens); the table says
# which runs those are.
#
# A verdict needs at least five seeds. It *holds* when the interval excludes zero on the paper's side
# (and the gap survives Holm's correction); where the interval also excludes the paper's gap, the reason
# adds that it holds in direction but the paper's magnitude is ruled out. It *does not hold* when the
# interval excludes zero on the other side. When the interval includes zero but excludes the paper's gap,
# *the paper's effect is ruled out*: the MAE may differ a little, but not by as much as the paper found.
# When the interval includes both zero and the paper's gap, the verdict is *inconclusive (underpowered)*, and the power to detect the paper's gap
# with the observed spread, and the number of seeds that would give 80%, say how far the runs are from an
# answer.


# %% tags=["remove-input"]
if set_aside:  # records that could not be read or do not follow the schema: named, and left out
    display(Markdown(":::{admonition} Records set aside\n:class: warning\n" + "\n".join(
        f"- {m}" for m in set_aside) + "\n:::"))

# %% tags=["hide-input"]
fig = viz.forest(rows)  # the paired gap of each claim per profile, and the paper's
viz.glue_figure("fig_forest", fig)

# %% [markdown]
# The registry holds {glue:text}`n_records` finished runs: {glue:text}`n_quick` at the quick profile,
# {glue:text}`n_full` at the full one{glue:text}`n_other`. The verdicts read the quick and the full
# profile, the full one where it has enough seeds.
#
# ```{glue:figure} fig_forest
# :name: fig-forest
# Each claim's paired gap per profile with runs (dots: mean over seeds, bars: 95% interval, n: seeds),
# oriented so that right means the MAE did better, with zero in the middle; above each panel, the side on
# which the paper found the MAE; dashed, the paper's gap on our scale (the gap the power is computed for;
# the paper ran other data and models), or its value where it lies far off the panel's scale. Each panel
# has its own scale: the metrics differ.
# ```

# %% tags=["hide-input", "nbval-check-output"]
viz.show_table(table, "Each claim of the paper: the paper's numbers (MAE / baseline, as printed), then, from the "
               "profile judged, our paired gap (MAE minus baseline, positive = MAE better; mean, 95% interval, "
               "seeds), its p values (t-test, Holm-adjusted across the claims, exact sign-flip), the power to "
               "detect the paper's gap, and the verdict; last, the verdict of the compute comparison (scratch "
               "given the MAE arm's compute), where the chapter trains it.", "table-claims")
notes = claim_tables.paper_notes(records)  # the long texts under the table, which keeps its cells short
if claim_tables.SCALE_MARK in table.to_string():
    display(Markdown(f"{claim_tables.SCALE_MARK} {claim_tables.NOT_MEANINGFUL}: the judged runs fail a check of "
                     "the checks table above (an MAE that did not learn, too few tokens, or an arm still improving)."))
reasons = claim_tables.verdict_reasons(records)
if reasons:
    display(Markdown("Why each verdict, with its caveats:\n\n" + "\n".join(
        f"- **{t}**: {why}." for t, why in reasons.items())))
if notes:
    display(Markdown("The paper's cells marked " + claim_tables.NOTE_MARK + ":\n\n" + "\n".join(
        f"- {t}: {n}." for t, n in notes.items())))

# %% [markdown]
# Every verdict's scale: the profile it comes from, the data (and where they stand in for the paper's),
# the model's size and the version of the code that made its seeds ("older" where that is not this book's
# code: such a verdict awaits a rerun).

# %% tags=["hide-input"]
viz.show_table(claim_tables.scale_table(records), "The scale of each verdict: profile, data, model width and depth, "
               "and the code version that made its seeds.", "table-claims-scale")

# %% [markdown]
# Where the data stand in for the paper's, the direction of a gap compares with the paper's, not its size;
# where the model is smaller than the paper's, so may be the effect.

# %% tags=["hide-input"]
budget = claim_tables.budget_table(records)
if len(budget):
    viz.show_table(budget.set_index(["table", "profile"]).rename_axis(index=BY_CLAIM),
                   "The claims with two scratch arms, both comparisons declared before the runs: the paper's "
                   "(scratch trained as long as the MAE arm's fine-tuning), which gives the verdict, and scratch "
                   "given the MAE arm's pretraining and fine-tuning compute, with its own verdict (positive gap = "
                   "MAE better); last, each arm's training FLOPs and supervised epochs.", "table-claims-budget")
    display(Markdown("Why each verdict at the MAE arm's compute, with its caveats:\n\n" + "\n".join(
        f"- **{t}**: {why}." for t, why in claim_tables.compute_reasons(records).items())))

# %% [markdown]
# A comparison means something only when every arm learned. The criterion, checked on every judged group:
# no seed of an arm is worse than half that arm's median (for an error, more than twice it), and a
# forecaster is at least as good as persistence (the next value equals the last); an arm that fails it is
# marked below, and its claim should be read with that in mind.

# %% tags=["hide-input"]
learning = claim_tables.learning_table(records)
if len(learning):
    viz.show_table(learning.set_index(["table", "profile", "arm"]).rename_axis(index=BY_CLAIM),
                   "Did every arm learn? Per claim, profile and arm of the judged group: the median and the worst "
                   "seed, whether the worst is within half of the median, and, for forecasters, whether the arm is "
                   "as good as persistence on average.", "table-claims-learning")

# %% [markdown]
# Each arm's learning rate was chosen on held-out training data by the run of seed 0, from a grid that
# grows (by doubling or halving, at most twice) past an end where the best rate lay; the other seeds
# reuse the choice. A rate at an end of what was tried may still be short of the best, and the table
# says where each one lies.

# %% tags=["hide-input"]
rates = claim_tables.rate_table(records)
ends = rates[rates["where"].str.startswith("at the")]
glue("rate_ends", "Every arm's rate lies inside the rates tried." if len(rates) and not len(ends) else
     f"At an end: {'; '.join(f'{r.chapter} ({r.profile}), {r.arm}' for r in ends.itertuples())}." if len(ends)
     else "", display=False)
if len(rates):
    viz.show_table(rates.set_index(["chapter", "profile", "arm"]), "Each arm's learning rate: the rates its "
                   "seed-0 run tried on held-out training data, the one it chose, and where that lies among them.",
                   "table-claims-rates")

# %% [markdown]
# {glue:text}`rate_ends`

# %% tags=["hide-input"]
evidence = claim_tables.evidence_table(records)
if len(evidence):
    viz.show_table(evidence, "The evidence per claim and profile: the paired gap, the spread of the gaps over "
                   "seeds, the three p values, the power at the paper's gap, the seeds that 80% power would "
                   "need (at most 20), the version and the verdict.", "table-claims-evidence")
else:
    display(Markdown("*No claim has recorded runs yet.*"))

# %% [markdown]
# Of the {glue:text}`n_claims` claims, {glue:text}`verdict_counts` on the runs recorded so far.
#
# Two claims need a note. In Table 5 the paper's feed-forward imputer, as we read it, learns from the
# true values of hidden training cells, so the claim is judged against it as the paper ran it, and a
# fair baseline is shown beside it (below). In Table 2 the paper's masked rows are three; the claim takes,
# per seed, the masked forecaster with the lowest validation error, and where both forecasters are worse
# than persistence (the next hour equals the last), the verdict's reason says so.

# %% tags=["remove-input"]
fair = [{"profile": r["profile"], "MAE": r["mae"], "paper's baseline": r["baseline"], "fair baseline": r["fair"],
         "gap to the fair baseline": r["fair_gap"]["gap"],
         "95% interval": f"[{viz.sig(r['fair_gap']['lo'])}, {viz.sig(r['fair_gap']['hi'])}]", "seeds": r["fair_gap"]["n"]}
        for _, r in rows.iterrows() if r["fair_gap"] is not None and r["n"]]
if fair:
    viz.show_table(pd.DataFrame(fair).set_index("profile"), "The paper's Table 5 beside a fair baseline (a "
                   "feed-forward imputer that learns from re-masked observed cells, as the MAE does): MSE over "
                   "every hidden cell, the gap signed so that positive = MAE better.", "table-claims-fair")
    last = summary.judged(rows[rows["fair_gap"].notna() & (rows["n"] > 0)])  # the profile the verdict reads
    if last is not None and last["fair_gap"]["n"] >= 2:
        reading = {"better": "the MAE is better than a baseline trained as it is",
                   "worse": "the MAE is worse than a baseline trained as it is, too",
                   "no detectable difference": "the interval includes 0: no detectable difference from a "
                                               "baseline trained as it is"}[stats.direction(last["fair_gap"])]
        display(Markdown(f"Against the fair baseline, the MAE's gap at the {last['profile']} profile is "
                         f"{viz.sig(last['fair_gap']['gap'])} [{viz.sig(last['fair_gap']['lo'])}, "
                         f"{viz.sig(last['fair_gap']['hi'])}]: {reading}."))

# %% tags=["remove-input"]
if not any(kinds.get(k) for k in ("holds", "does not hold", "the paper's effect ruled out")):
    display(Markdown(":::{admonition} No firm verdict yet\n:class: note\nNo claim reached a firm verdict: either "
                     "too few seeds are recorded or the gaps' intervals include zero. Record more seeds with "
                     "`python -m maelib sweep <chapter> --seeds 0 1 2 3 4`.\n:::"))

# %% [markdown]
# ## Over the whole fine-tuning run
#
# Two of the paper's claims are about the whole run, not its end: MAE initialisation is "effective for
# all epochs trained" (Table 3), and reaches its score "in fewer number of training epochs" (Table 4).
# Runs record each arm's validation score after every epoch; below, the mean curve of each arm with a
# band of one standard deviation over the seeds of the judged group, and the epochs each arm needed to
# reach {glue:text}`reach_pct`% of the final score of the scratch arm trained as long as the MAE arm's
# fine-tuning (a run that never gets there counts one epoch past its end). The budget-matched scratch arm
# trains for more epochs than the other two and its runs do not record its curve, so it is not drawn
# here; its final scores are in the table of the two comparisons above.

# %% tags=["hide-input"]
panels, ylabels = {}, {}
for c in summary.CLAIMS:
    row = summary.judged(rows[rows["table"] == c.table])
    got = claim_tables.curves(records, c, row["profile"]) if row is not None else {}
    if got:
        panels[f"{c.table} ({row['profile']})"] = got
        ylabels[f"{c.table} ({row['profile']})"] = f"validation {c.metric}"
glue("reach_pct", round(100 * claim_tables.REACH), display=False)
if panels:
    viz.show_figure(viz.curve_bands(panels, ylabels), "Validation score after every fine-tuning epoch, per arm: "
                    "the mean over the judged group's seeds, with a band of one standard deviation.")
else:
    display(Markdown("*No run of these claims has recorded its per-epoch curves yet.*"))
epochs = claim_tables.epochs_table(records)
if len(epochs):
    viz.show_table(epochs.set_index(["table", "profile"]).rename_axis(index=BY_CLAIM),
                   f"Epochs to reach {claim_tables.REACH:.0%} of the short scratch arm's final score, per arm (mean "
                   "over seeds), and the paired gap in epochs (positive = the MAE arm got there sooner).",
                   "table-claims-epochs")
    display(Markdown("Read per claim: " + "; ".join(f"{r.table} ({r.profile}), {r.reading}" for r in epochs.itertuples())
                     + ". The paper's \"fewer epochs\" holds only where the MAE arm gets there sooner."))

# %% [markdown]
# ## The history of each verdict
#
# Every protocol iteration a claim went through: each version of the code that recorded seeds of a
# claim's default setting, newest first, with its seeds and gap. Only one group per claim and profile is
# judged (the newest with at least five seeds); the others stay visible here. Versions whose seeds hold
# the same values to the bit (a change of the code that moved no number) share a row.
#
# A *version* is not a git commit. It is a hash of the code one chapter's computation can reach: its
# notebook's code cells and the maelib modules they import that compute (followed through the source).
# The parameters and the data are kept apart beside it, as the *setting*. A commit that touches another
# chapter's module, a table's layout or only prose leaves the version alone, so seeds made at many
# commits pool as one; the commit each run was made at is in its record and in the line under each
# chapter's title.

# %% tags=["hide-input"]
hist = claim_tables.history(records)
if len(hist):
    viz.show_table(hist.set_index(["table", "profile"]).rename_axis(index=BY_CLAIM),
                   "Each claim's groups of seeds by code version (newest first; a setting is a short hash of the "
                   "parameters and data): when its last seed finished, the paired gap with its 95% interval and "
                   "seeds, whether it is this book's code, and which group is judged.", "table-claims-history")
    display(Markdown("Each claim is judged on the group marked \"yes\"; the rows below it show how its gap moved "
                     "as the protocol changed, and no group is pooled with another."))
else:
    display(Markdown("*No claim has recorded runs yet.*"))

# %% tags=["remove-cell"]
glue("results", {"verdicts": judged, "n_records": len(records),
                 "claims": json.loads(rows.drop(columns=["fair_gap", "matched_gap"]).to_json(orient="records",
                                                                                          default_handler=str))},
     display=False)
