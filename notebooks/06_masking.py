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
# # Interactive masking
#
# How much of an image can an MAE hide and still reconstruct? This chapter loads the image MAE that
# the first chapter trained and lets you move the mask ratio. In JupyterLab, the live explorer (sliders
# for the ratio and the seed, a choice of validation image, an upload of your own) recomputes every
# frame. In the published book, which has no kernel, the page runs the model itself in your browser
# (served over HTTP; nothing is sent anywhere), and a second control switches between frames computed
# when the book was built, which works offline, even from a file on disk.

# %% tags=["parameters"]
# Every name here is a parameter (`-p NAME VALUE`); None takes the profile's value (maelib/profiles.py).
profile = "auto"  # smoke, quick or full; auto picks full on a GPU and quick on a CPU
data_dir = None
mae_checkpoint = None  # an mae_final.pt; by default the image chapter's run at this profile
live = True  # show the ipywidgets explorer (the book's build turns it off: it has no kernel)
n_images = None  # validation images in the book's control
ratios = None  # mask ratios the book's control and the loss curve step through
n_seeds = None  # masks drawn per ratio
seed = 0
device = "auto"

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, display
from myst_nb import glue

from maelib import images, profiles, runs, viz, webmodel, widgets
from maelib.data import tinyimagenet
from maelib.train import pick_device

p = profiles.resolve_namespace("masking", globals())
glue("params", vars(p), display=False)
path, chosen = runs.image_mae_checkpoint(p.profile, p.mae_checkpoint)
mae, saved = images.load_mae(path)
dev = pick_device(p.device)
mae.to(dev)
glue("device", str(dev), display=False)
size = mae.tokenizer.img_size
val = tinyimagenet.load(20, p.data_dir)
glue("data_source", val["source"], display=False)
val_x = images.resize(val["val"][0], size)  # the checkpoint's image size, whatever it is
pick = torch.linspace(0, len(val_x) - 1, p.n_images).long()
imgs = val_x[pick]
seeds = list(range(p.seed, p.seed + p.n_seeds))
glue("checkpoint_how", chosen, display=False)
glue("checkpoint_profile", saved.get("profile", "unknown"), display=False)
glue("trained_ratio", round(100 * saved["mask_ratio"]), display=False)
glue("patch", mae.tokenizer.patch_size, display=False)
glue("size", size, display=False)

# %% [markdown]
# ## Live explorer (Jupyter)
#
# Run this notebook in JupyterLab (`make lab`, then open `06_masking.py`: it opens as a notebook) to get
# the explorer. It calls `maelib.widgets.explorer(mae, images)`.

# %% tags=["remove-cell"]
if p.live:
    display(widgets.explorer(mae, imgs))

# %% [markdown]
# ## In the book: the model in your browser
#
# Click or drag over the first picture to hide and show patches, or move the slider for a random mask at
# that ratio; pick a validation image or open one of yours (it stays on your computer). This page computes
# the reconstruction and the loss on hidden patches itself, with this chapter's model
# ({glue:text}`checkpoint_how`) exported to ONNX.

# %% tags=["remove-input"]
if not p.live:
    display(HTML(webmodel.control(mae, imgs)))

# %% [markdown]
# ## In the book: a control that needs no kernel
#
# The model shown is {glue:text}`checkpoint_how`. It was trained on {glue:text}`size`-pixel images in
# {glue:text}`patch`-pixel patches with {glue:text}`trained_ratio`% of them hidden. Move the slider to hide more or fewer patches.

# %% tags=["remove-input"]
frames = widgets.precompute(mae, imgs, p.ratios, seeds)
display(HTML(widgets.static_control(frames)))

# %% [markdown]
# ## The mask-ratio story
#
# The loss on hidden patches, averaged over validation images and seeds, against the mask ratio: how
# hard the model finds the task it was trained on, and the tasks around it.

# %% tags=["hide-input"]
curve = widgets.loss_curve(mae, val_x[:: max(1, len(val_x) // 64)][:64], p.ratios, seeds)
stats = curve.groupby("mask_ratio")["loss"].agg(["mean", "std"]).reset_index()
fig, ax = plt.subplots(figsize=(6.5, 3.5))
viz.mean_std_lines(ax, curve, "mask_ratio", "loss", xlabel="mask ratio", ylabel="loss on hidden patches")
ax.axvline(saved["mask_ratio"], color="grey", ls="--", label="training mask ratio")
ax.legend()
fig.tight_layout()
viz.glue_figure("fig_ratio", fig)
lo, hi = stats.iloc[0], stats.iloc[-1]
glue("loss_lo", float(lo["mean"]), display=False)
glue("loss_hi", float(hi["mean"]), display=False)
glue("r_lo", round(100 * float(lo["mask_ratio"])), display=False)
glue("r_hi", round(100 * float(hi["mask_ratio"])), display=False)
glue("results", {"checkpoint": str(path), "checkpoint_how": chosen, "checkpoint_profile": saved.get("profile"),
                 "loss_by_ratio": {float(r): float(m) for r, m in zip(stats["mask_ratio"], stats["mean"])}},
     display=False)

# %% [markdown]
# ```{glue:figure} fig_ratio
# :name: fig-ratio
# Loss on hidden patches against the mask ratio (mean and standard deviation over seeds; faint dots:
# single seeds).
# ```
#
# With {glue:text}`r_lo`% hidden the loss on the hidden patches is {glue:text}`loss_lo:.3f`; with
# {glue:text}`r_hi`% it is {glue:text}`loss_hi:.3f`.
#
# ## Reruns that add up
#
# Every finished chapter run is recorded in `results/runs/` (parameters, profile, device, seed,
# metrics, wall time, commit). Rerunning the image chapter with other mask ratios,
#
# ```bash
# python -m maelib run images -p mask_ratio 0.5
# python -m maelib run images -p mask_ratio 0.9
# ```
#
# adds rows to the table below and points to the figure.

# %% tags=["hide-input"]
records = runs.load_records("images")
rows = [{"mask ratio": r["resolved"]["mask_ratio"], "profile": r["profile"], "device": r["device"],
         "fine-tune top-1 (%)": 100 * r["metrics"]["acc_finetune"], "scratch top-1 (%)": 100 * r["metrics"]["acc_scratch"],
         "linear probe top-1 (%)": 100 * r["metrics"]["acc_probe"], "finished": r["finished"][:16].replace("T", " ")}
        for r in records if "acc_finetune" in r.get("metrics", {})]
sweep = pd.DataFrame(rows)
glue("n_runs", len(sweep), display=False)
if len(sweep):
    viz.show_table(sweep.sort_values(["profile", "mask ratio"]).set_index("finished"), "The image chapter's recorded "
                   "runs: pretraining mask ratio and validation top-1 (%).", "table-masking-reruns")
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for prof, g in sweep.groupby("profile"):
        g = g.sort_values("mask ratio")
        ax.plot(g["mask ratio"], g["fine-tune top-1 (%)"], marker="o", label=f"fine-tune ({prof})")
        ax.plot(g["mask ratio"], g["linear probe top-1 (%)"], marker="s", ls=":", label=f"linear probe ({prof})")
    ax.set_xlabel("pretraining mask ratio")
    ax.set_ylabel("validation top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()
else:
    display(HTML("<p><em>No image-chapter run is recorded yet.</em></p>"))

# %% [markdown]
# {glue:text}`n_runs` recorded run(s) of the image chapter are shown.
