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
# # When MAE pretraining pays: compute and labels
#
# Chapter 1 compares MAE + fine-tuning with scratch at one budget. Whether MAE beats scratch depends on how
# much compute each arm gets and how many labels there are, and no study we know of measures where the two
# meet at equal compute on small data: the MAE paper {cite}`he2022mae` and the seed paper each give single
# points. This chapter draws both arms' curves of validation top-1 against training FLOPs, on all of
# Chapter 1's labelled images and on {glue:text}`few_pct` of them, and reads off where the MAE curve
# overtakes scratch.
#
# Declared before the runs:
# - **Points.** One MAE pretrains per seed, as Chapter 1's does, on every training image and the unlabelled
#   ones (labels play no part in pretraining, so it is the same with a tenth of the labels). Its encoder is
#   fine-tuned, and the same ViT trained from scratch, for {glue:text}`n_budgets`;
#   scratch also gets longer budgets, doubling, until its compute reaches the MAE arm's largest, so that the
#   two curves share a range.
# - **Compute.** A point's FLOPs are its supervised passes' and, for the MAE arm, the whole pretraining's,
#   per image as torch's FlopCounterMode counts one step of each kind.
# - **The gap and the crossover.** At each MAE budget inside scratch's range, the gap is MAE minus scratch,
#   scratch read off its own curve at the same FLOPs (linear in log FLOPs), seed by seed. The crossover is
#   the least compute from which the mean gap stays positive, with an interval from redrawing the seeds; or
#   none in the range measured, with the way the gap trends.
#
# The summary pools every seed; this page shows one run.
#
# Rerun it with fewer labels: `python -m maelib run payoff -p few_labels 0.05`.

# %% tags=["parameters"]
# Every name here is a parameter (`-p NAME VALUE`); None takes the profile's value (maelib/profiles.py).
profile = "auto"  # smoke, quick or full; auto picks full on a GPU and quick on a CPU
data_dir = None  # folder holding tinyimagenet/ (default: $MAELIB_DATA, then the cache)
seed = 0
device = "auto"
precision = None  # "fp32", "bf16" or "auto" (bf16 where the device is fast at it); None: the profile's
checkpoint_dir = None  # where checkpoints go (default: the maelib cache)
synthetic = False  # True uses an offline stand-in (coloured gratings) instead of TinyImageNet
n_classes = None  # 20 (the staged subset) up to 200
unlabelled = None  # images of the other 180 classes that only MAE pretraining sees (0: none)
limit = None  # at most this many training (and validation) images
img_size = None
patch_size = None
dim = None  # the ViT: width, blocks, heads
depth = None
heads = None
decoder_dim = None  # the MAE's decoder: width and blocks
decoder_depth = None
mask_ratio = None  # the fraction of patches hidden in pretraining
norm_target = None  # predict each patch normalised by its own mean and variance
pretrain_epochs = None
pretrain_lr = None  # base learning rate, scaled by batch_size / 256
batch_size = None
epochs = None  # the budgets on all the labelled images: passes over them
few_labels = None  # the fraction of the labelled images of the second curve
few_label_epochs = None  # its budgets: passes over those images
cooldown = None  # the share of a budget over which its branch decays the learning rate to zero
finetune_epochs = None  # the schedule held-out data chooses the rates for, where they are not given
finetune_lr = None  # the MAE arm's base learning rate; None: chosen from lr_grid on held-out training images
scratch_lr = None  # the scratch arm's; None: chosen from lr_grid
lr_grid = None
tune = None  # true: choose the learning rates anew even where only pretraining changed
layer_decay = None  # layer-wise learning-rate decay when fine-tuning the MAE encoder (not for scratch)
drop_path = None

# %% tags=["remove-cell"]
import time

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from maelib import crossover, images, payoff, profiles, provenance, tuning, viz
from maelib.mae import LEARNED as mae_criterion
from maelib.report import Results
from maelib.train import pick_device, seed_everything

p = profiles.resolve_namespace("payoff", globals())
glue("params", vars(p), display=False)
dev = pick_device(p.device)
seed_everything(p.seed)
started = time.time()
data = images.load_data(p)
ckpt = provenance.checkpoint_dir("payoff", p, data.get("source"))
flops = images.flops_per_sample(p)  # forward and backward FLOPs per image of a pretraining and a supervised step
pre = images.pretraining(p, data, flops)  # its passes over its own images, which every MAE point counts
n_train = len(data["train"][1])
glue("n_train", n_train, display=False)
glue("few_pct", f"{p.few_labels:.0%}", display=False)
glue("budgets_all", ", ".join(map(str, p.epochs)), display=False)
glue("n_budgets", f"{viz.count(len(p.epochs), 'budget')} on all the labels (spanning {p.epochs[-1] / p.epochs[0]:g}x) "
     f"and {len(p.few_label_epochs)} on the few (spanning {p.few_label_epochs[-1] / p.few_label_epochs[0]:g}x)",
     display=False)
glue("budgets_few", ", ".join(map(str, p.few_label_epochs)), display=False)
glue("cooldown_pct", f"{p.cooldown:.0%}", display=False)
glue("pre_what", pre.what, display=False)
glue("pre_tflop", crossover.tflop(pre.flops), display=False)

# %% tags=["remove-input"]
if p.synthetic:
    display(Markdown(":::{admonition} Offline stand-in\n:class: warning\nThis run used **synthetic coloured "
                     "gratings**, not TinyImageNet (parameter `synthetic=True`). Its numbers say nothing about "
                     "MAE pretraining.\n:::"))
else:
    display(Markdown(f"This run: profile **{p.profile}** on **{dev}**, seed {p.seed}, TinyImageNet, "
                     f"{p.n_classes} classes ({n_train:,} labelled training images; {len(data['val'][1]):,} "
                     "validation images score every point)."))
    if viz.provenance_note(data["source"]):
        display(Markdown(viz.provenance_note(data["source"])))

# %% [markdown]
# ## Pretraining, once a seed
#
# The MAE pretrains on {glue:text}`pre_what`, as Chapter 1's does: {glue:text}`pre_tflop` of compute, which
# every MAE point below counts in full, at both label fractions.

# %% tags=["hide-input"]
seed_everything(p.seed)
mae = images.make_mae(p)
pre_hist = images.pretrain(mae, data, p, dev, ckpt)
flat_ratio = images.versus_flat(mae, data, p)  # did it learn? (maelib.mae.LEARNED)
glue("pre_final", float(pre_hist["val_loss"].iloc[-1]), display=False)
glue("flat_ratio", viz.sig(flat_ratio, 2), display=False)
glue("flat_verdict", "within the study's criterion (at most " f"{mae_criterion})" if flat_ratio <= mae_criterion
     else f"above the study's criterion (at most {mae_criterion}): this MAE learned little more than a flat fill, "
     "so its curve says little about what a trained MAE is worth", display=False)

# %% [markdown]
# Its held-out loss on hidden patches ends at {glue:text}`pre_final:.3f`, {glue:text}`flat_ratio` of the
# loss of filling each hidden patch with the mean of the visible ones: {glue:text}`flat_verdict`.
#
# ## The learning rates
#
# Each arm trains at one base learning rate at every budget and both label fractions: {glue:text}`lr_source`.
# Choosing a rate per budget on held-out data would cost about three times the curves themselves. So a long
# budget may train at a rate a little off its best, for either arm.

# %% tags=["hide-input"]
arms = payoff.arms(mae, p)
rates = tuning.arm_rates("payoff", p, data.get("source"), {arm: a.lr for arm, a in arms.items()},
                         lambda arm: images.choose_lr(arms[arm].build, data, p, dev, arm, ckpt, arms[arm].layer_decay,
                                                      epochs=arms[arm].epochs))
fixed = f"MAE + fine-tune {viz.sig(rates.lr[payoff.MAE_ARM])}, scratch {viz.sig(rates.lr[payoff.SCRATCH])}"
glue("lr_source", f"chosen by {rates.source} ({fixed})" if any(rates.grid.values()) else
     f"fixed by this run's parameters ({fixed}); the quick profile's are those Chapter 1 chose on held-out "
     "training images for its own schedule", display=False)

# %% [markdown]
# ## The curves
#
# Each arm trains once per label fraction along a warmup-stable-decay schedule {cite}`hagele2024scaling`: a
# linear warmup, then a constant rate. {glue:text}`cooldown_pct` of each budget before its end, a branch leaves that run and decays
# the rate linearly to zero by the budget's last epoch, where it is scored. A branch takes exactly the steps a
# separate run of its budget would (the same batches and random draws, epoch by epoch), so four budgets cost
# little more than the longest. Budgets: {glue:text}`budgets_all` passes over all {glue:text}`n_train`
# labelled images, and {glue:text}`budgets_few` over {glue:text}`few_pct` of them; scratch continues,
# doubling, until its compute reaches the MAE arm's largest.

# %% tags=["hide-input"]
points = payoff.train_points(mae, data, p, dev, pre, flops, rates.lr, ckpt)
points.insert(0, "seed", p.seed)
gaps = crossover.gaps(points)
cross = crossover.crossovers(gaps)
fig = viz.payoff_panels(points, (payoff.MAE_ARM, payoff.SCRATCH), cross)
viz.glue_figure("fig_payoff", fig)
glue("payoff_sentence", crossover.sentence(cross) or "No MAE budget lies within scratch's range of compute in "
     "this run, so it gives no crossover.", display=False)
shown = points.assign(**{"fraction": points["fraction"].map("{:.0%}".format),
                         "TFLOP": points["flops"] / 1e12}).drop(columns=["seed", "flops"])
shown = shown.rename(columns={"fraction": "labels", "epochs": "budget (epochs)", "labelled": "labelled images", "steps": "optimizer steps",
                              "top1": "top-1 (%)"}).set_index("arm")

# %% [markdown]
# ```{glue:figure} fig_payoff
# :name: fig-payoff
# Validation top-1 against training compute (log scale) for this seed: all the labels on the left,
# {glue:text}`few_pct` of them on the right. The MAE arm's compute starts at its pretraining's.
# ```
#
# {glue:text}`payoff_sentence` With one seed the crossover has no interval; the summary pools every seed.

# %% tags=["remove-input"]
viz.show_table(shown, "Every point of this run: its arm, the share of the labelled images it trained on, its budget "
               "(epochs), its optimizer steps and compute (the MAE arm's pretraining included) and its "
               "validation top-1.", "table-payoff-points")

# %% [markdown]
# {numref}`table-payoff-points` lists every point of {numref}`fig-payoff`.

# %% tags=["remove-cell"]
results = Results(lr=rates.lr, lr_grid=rates.grid, wall_s=time.time() - started,
                  details={"points": [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
                                      for row in points.drop(columns="seed").to_dict("records")], "mae_vs_flat": flat_ratio,
                           "pretrain_val_loss": float(pre_hist["val_loss"].iloc[-1])})
glue("results", results.to_json(), display=False)
