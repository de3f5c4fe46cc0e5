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
# Each of the paper's tables makes a claim: MAE pretraining helps (or, for tables, does not). This
# chapter sets each claim beside the runs recorded in the run registry (`results/runs/`, one JSON
# file per finished run, written by `maelib.runs`): the runs of every chapter at its default
# parameters, grouped over seeds, at the quick profile (CPU) and the full profile (GPU) where they
# exist. A verdict needs at least three seeds and a gap larger than twice its standard error; anything
# less is called inconclusive, with its reason.

# %% tags=["parameters"]
profile = "auto"  # smoke, quick or full; only used to label this build
records_dir = None  # the run registry (default: results/runs)

# %% tags=["remove-cell"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from maelib import profiles, runs, summary, viz

p = profiles.resolve_namespace("summary", globals())
glue("params", vars(p), display=False)
root = Path(p.records_dir) if p.records_dir else runs.RECORDS
records = summary.load(root)
table = summary.claims_table(records)
counts = pd.Series([r["profile"] for r in records]).value_counts() if records else pd.Series(dtype=int)
glue("n_records", len(records), display=False)
glue("n_quick", int(counts.get("quick", 0)), display=False)
glue("n_full", int(counts.get("full", 0)), display=False)
glue("claims", table.style.set_properties(**{"text-align": "left", "font-size": "0.85em"}), display=False)
verdicts = table["verdict"].value_counts()
for key in ("holds", "does not hold", "inconclusive"):
    glue(f"n_{key.replace(' ', '_')}", int(verdicts.get(key, 0)), display=False)
FORMS = {"holds": ("holds", "hold"), "does not hold": ("does not hold", "do not hold"),
         "inconclusive": ("is inconclusive", "are inconclusive"),
         "no paper numbers": ("has no paper numbers", "have no paper numbers"), "not run": ("was not run", "were not run")}
parts = [f"{verdicts[k]} {FORMS[k][int(verdicts[k] != 1)]}" for k in FORMS if verdicts.get(k)]
glue("verdict_counts", ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts), display=False)

# %% [markdown]
# The registry holds {glue:text}`n_records` finished runs: {glue:text}`n_quick` at the quick profile
# and {glue:text}`n_full` at the full profile.
#
# ```{glue:figure} claims
# :name: claims
# Each claim of the paper, the paper's numbers, ours (mean ± standard deviation over seeds), and the
# verdict of the most complete profile.
# ```
#
# Of the five claims, {glue:text}`verdict_counts` on the runs recorded so far.

# %% tags=["remove-input"]
if not (table["verdict"] == "holds").any() and not (table["verdict"] == "does not hold").any():
    display(Markdown(":::{admonition} No firm verdict yet\n:class: note\nNo claim reached a firm verdict: either "
                     "too few seeds are recorded or the gaps are within the noise. Record more runs with "
                     "`python -m maelib sweep <chapter> --seeds 0 1 2`.\n:::"))

# %% [markdown]
# ## The mask ratio across modalities
#
# The paper's question, asked of each modality: how does the downstream result move with the mask
# ratio used in pretraining? Runs that changed only the mask ratio (`python -m maelib sweep`) are
# gathered here, with error bars over seeds.

# %% tags=["remove-input"]
sweep = summary.sweep_frame(records)
glue("n_sweep", len(sweep), display=False)
quick_series = profiles.PROFILES["series"]["quick"]
n_tok = quick_series["lag"] // quick_series["patch_size"]
glue("series_tokens", n_tok, display=False)
glue("series_same", round(1 - 2 / n_tok, 2), display=False)
chapters = list(dict.fromkeys(sweep["chapter"]))
if chapters:
    fig, axes = plt.subplots(1, len(chapters), figsize=(4.3 * len(chapters), 3.4), squeeze=False)
    for ax, chapter in zip(axes[0], chapters):
        part = sweep[sweep["chapter"] == chapter]
        viz.mean_std_lines(ax, part, "mask_ratio", "value", "profile", xlabel="mask ratio",
                           ylabel=part["metric"].iloc[0],
                           label=lambda prof, s: f"{prof} (seeds per point: {s['count'].min()}-{s['count'].max()})")
        ax.set_title(chapter, fontsize=10)
    fig.tight_layout()
else:
    fig = viz.message_figure("No mask-ratio sweep is recorded yet.")
viz.glue_figure("fig_sweep", fig)

# %% [markdown]
# ```{glue:figure} fig_sweep
# :name: fig-sweep
# The downstream metric against the pretraining mask ratio, per modality ({glue:text}`n_sweep` runs;
# mean and standard deviation over seeds, faint dots: single runs).
# ```
#
# A mask hides a whole number of tokens, `L - max(1, int(L * (1 - ratio)))` of `L`: with few tokens,
# neighbouring ratios hide the same number and give the same run. A quick-profile series window has
# {glue:text}`series_tokens` patches, so every ratio above {glue:text}`series_same` leaves a single
# patch visible.

# %% tags=["remove-cell"]
glue("results", {"verdicts": table["verdict"].to_dict(), "n_records": len(records)}, display=False)
