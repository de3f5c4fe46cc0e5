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
# How much of an image can an MAE hide and still reconstruct? This chapter loads a reference image MAE,
# trained once, at more length than a chapter's run, and committed with its provenance (a chapter's quick run trains for
# minutes and learns little more than each image's mean colour), measures whether its reconstructions
# are worth looking at, and lets you move the mask ratio. In JupyterLab, the live explorer (sliders
# for the ratio and the seed, a choice of validation image, an upload of your own) recomputes every
# frame. In the published book, which has no kernel, the page runs the model itself in your browser
# (served over HTTP; nothing is sent anywhere), and a second control switches between frames computed
# when the book was built, which works offline, even from a file on disk. Each shows the original beside
# what the encoder sees and what the model makes of it.
#
# **Model shown:** {glue:text}`model_label`. With 75% of patches hidden, its error on the hidden pixels of
# {glue:text}`n_quality` held-out images is {glue:text}`q_mae75:.4f`, {glue:text}`q_vs_flat` a flat fill's
# {glue:text}`q_flat75:.4f` ({numref}`table-quality`).

# %% tags=["parameters"]
# Every name here is a parameter (`-p NAME VALUE`); None takes the profile's value (maelib/profiles.py).
profile = "auto"  # smoke, quick or full; auto picks full on a GPU and quick on a CPU
data_dir = None
mae_checkpoint = None  # an mae_final.pt; by default the committed reference model (results/models)
live = True  # show the ipywidgets explorer (the book's build turns it off: it has no kernel)
n_images = None  # validation images in the book's control
ratios = None  # mask ratios the book's control and the loss curve step through
n_seeds = None  # masks drawn per ratio
quality_images = None  # held-out images of the quality table
seed = 0
device = "auto"

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, display
from myst_nb import glue

from maelib import claim_tables, images, profiles, provenance, reference, viz, webmodel, widgets
from maelib.data import tinyimagenet
from maelib.train import pick_device

p = profiles.resolve_namespace("masking", globals())
glue("params", vars(p), display=False)
path, chosen, is_reference = provenance.shown_image_mae(p.profile, p.mae_checkpoint)
mae, saved = images.load_mae(path)
model_label = reference.label(saved, reference.provenance(path), run=not is_reference)
glue("model_label", model_label, display=False)
dev = pick_device(p.device)
mae.to(dev)
glue("device", str(dev), display=False)
size = mae.tokenizer.img_size
val = tinyimagenet.load(20, p.data_dir)
glue("data_source", val["source"], display=False)
val_x, val_y = images.resize(val["val"][0], size), val["val"][1]  # the checkpoint's image size, whatever it is
# the reader's choice: one validation image of each class (at least widgets.MIN_CHOICES images)
choices = widgets.spread_over_classes(val_y, max(widgets.MIN_CHOICES, len(val["classes"])))
gallery, gallery_names = val_x[choices], widgets.gallery_names(val_y, choices, val["names"])
imgs = gallery[torch.linspace(0, len(gallery) - 1, p.n_images).long()]  # the slider's images, classes apart
glue("n_choices", len(gallery), display=False)
glue("n_classes_shown", len({int(val_y[i]) for i in choices}), display=False)
seeds = list(range(p.seed, p.seed + p.n_seeds))
glue("checkpoint_how", chosen, display=False)
glue("checkpoint_profile", saved.get("profile", "unknown"), display=False)
glue("trained_ratio", round(100 * saved["mask_ratio"]), display=False)
glue("patch", mae.tokenizer.patch_size, display=False)
glue("size", size, display=False)
held = val_x[torch.linspace(0, len(val_x) - 1, p.quality_images).long()]  # never seen by the reference model

# %% [markdown]
# ## Is the model worth showing?
#
# The model on this page: {glue:text}`model_label`. On {glue:text}`n_quality` held-out validation
# images (the ones chapter 1 reports on, which no model here was trained on), the table
# compares its mean squared error on the hidden pixels (RGB in [0, 1], the same random masks for all)
# with two predictors that learn nothing: the **flat** predictor, which fills every hidden patch with
# the mean colour of the visible ones, and scikit-image's **biharmonic** inpainting, which extends the
# visible pixels smoothly into the hidden ones.

# %% tags=["remove-input"]
q = reference.quality(mae, held, seed=p.seed)
glue("n_quality", len(held), display=False)
table = pd.DataFrame({"mask ratio": [f"{r:.2f}" for r in q["mask_ratio"]],
                      **{name: [f"{v:.4f}" for v in q[k]] for k, name in (("mae", "MAE"), ("flat", "flat predictor"),
                                                                      ("biharmonic", "biharmonic inpainting"))},
                      "MAE against flat": [reference.relative(m, b) for m, b in zip(q["mae"], q["flat"])],
                      "MAE against biharmonic": [reference.relative(m, b) for m, b in zip(q["mae"], q["biharmonic"])]})
viz.show_table(table.set_index("mask ratio"), "Mean squared error on hidden pixels (RGB in [0, 1]) of held-out "
               "images, by mask ratio: the model shown on this page and two predictors that learn nothing.",
               "table-quality")
at75 = q.set_index("mask_ratio").loc[0.75]
glue("q_mae75", float(at75["mae"]), display=False)
glue("q_flat75", float(at75["flat"]), display=False)
glue("q_below75", 100 * float(at75["below_flat"]), display=False)
glue("q_verdict", reference.verdict(float(at75["below_flat"])), display=False)
vs_flat = reference.relative(float(at75["mae"]), float(at75["flat"]))  # "31.3% lower", "the same"
glue("q_vs_flat", f"{vs_flat} as" if vs_flat == "the same" else f"{vs_flat} than", display=False)
glue("q_biharmonic", reference.against("biharmonic inpainting", q["mask_ratio"], q["mae"], q["biharmonic"]), display=False)

# %% [markdown]
# At 75% hidden, the MAE's error is {glue:text}`q_mae75:.4f` against {glue:text}`q_flat75:.4f` for the
# flat predictor: {glue:text}`q_verdict`. {glue:text}`q_biharmonic`

# %% [markdown]
# ## Live explorer (Jupyter)
#
# Run this notebook in JupyterLab (`make lab`, then open `06_masking.py`: it opens as a notebook) to get
# the explorer. It calls `maelib.widgets.explorer(mae, images)`.

# %% tags=["remove-cell"]
if p.live:
    display(widgets.explorer(mae, gallery, names=gallery_names, label=model_label))

# %% [markdown]
# ## In the book: the model in your browser
#
# Press the button to load the model (the page loads none of it before you ask). Then click or drag over
# the second picture to hide and show patches, or move the slider for a random mask at
# that ratio; pick one of {glue:text}`n_choices` validation images, one from each of {glue:text}`n_classes_shown`
# classes, or open one of yours (it stays on your computer). This page computes the reconstruction and the
# loss on hidden patches itself, with the model named above exported to ONNX. Hidden patches are drawn in
# opaque grey here and in every figure: nothing of them reaches the model.

# %% tags=["remove-input"]
if not p.live:
    display(HTML(webmodel.control(mae, gallery, names=gallery_names)))

# %% [markdown]
# ## In the book: a control that needs no kernel
#
# The model shown is {glue:text}`checkpoint_how`. It was trained on {glue:text}`size`-pixel images in
# {glue:text}`patch`-pixel patches with {glue:text}`trained_ratio`% of them hidden. Move the slider to hide more or fewer
# patches of {glue:text}`n_shown` of the validation images above, one a row.

# %% tags=["remove-input"]
frames = widgets.precompute(mae, imgs, p.ratios, seeds)
display(HTML(widgets.static_control(frames, label=model_label, n_images=len(imgs))))

# %% [markdown]
# ## The mask-ratio story
#
# The loss on hidden patches, averaged over validation images and seeds, against the mask ratio: how
# hard the model finds the task it was trained on, and the tasks around it.

# %% tags=["hide-input"]
curve_x = held[:64]
curve = widgets.loss_curve(mae, curve_x, p.ratios, seeds)
stats = curve.groupby("mask_ratio")["loss"].agg(["mean", "std"]).reset_index()
fig, ax = plt.subplots(figsize=(6.5, 3.5))
viz.mean_std_lines(ax, curve, "mask_ratio", "loss", xlabel="mask ratio", ylabel="MSE on hidden pixels")
ax.axvline(saved["mask_ratio"], color="grey", ls="--")
ax.annotate("trained at", (saved["mask_ratio"], 1), xycoords=("data", "axes fraction"), xytext=(-4, -4),
            textcoords="offset points", ha="right", va="top", fontsize=viz.SMALL_PT, color="0.35")  # no legend box
fig.tight_layout()
viz.glue_figure("fig_ratio", fig)
lo, hi = stats.iloc[0], stats.iloc[-1]
glue("loss_lo", float(lo["mean"]), display=False)
glue("loss_hi", float(hi["mean"]), display=False)
glue("r_lo", round(100 * float(lo["mask_ratio"])), display=False)
glue("r_hi", round(100 * float(hi["mask_ratio"])), display=False)
glue("results", {"checkpoint": str(path), "checkpoint_how": chosen, "checkpoint_profile": saved.get("profile"),
                 "model": model_label, "quality": q.to_dict("records"),
                 "loss_by_ratio": {float(r): float(m) for r, m in zip(stats["mask_ratio"], stats["mean"])}},
     display=False)
# the same measure on other images: the slider's frames, one image at a time, the curve, the table
r_show = min(p.ratios, key=lambda r: abs(r - 0.75))
slider_loss = next(loss for r, _, loss in frames[p.seed] if r == r_show)
single = widgets.reconstructions(mae, imgs, r_show, p.seed)["loss"]
glue("r_show", round(100 * r_show), display=False)
glue("slider_loss", slider_loss, display=False)
glue("n_shown", len(imgs), display=False)
glue("seed_shown", p.seed, display=False)
glue("single_lo", float(single.min()), display=False)
glue("single_hi", float(single.max()), display=False)
glue("curve_loss", float(stats.set_index("mask_ratio").loc[r_show, "mean"]), display=False)
glue("n_curve", len(curve_x), display=False)
glue("n_curve_seeds", len(seeds), display=False)

# %% [markdown]
# ```{glue:figure} fig_ratio
# :name: fig-ratio
# The mean squared error on hidden pixels of the model on this page against the mask ratio, over
# {glue:text}`n_curve` held-out images (mean and standard deviation over seeds; faint dots: single seeds).
# ```
#
# With {glue:text}`r_lo`% hidden the error on the hidden pixels is {glue:text}`loss_lo:.4f`; with
# {glue:text}`r_hi`% it is {glue:text}`loss_hi:.4f`.
#
# Every loss on this page is this one measure, on different images. At {glue:text}`r_show`% hidden, the
# precomputed slider's frame averages the {glue:text}`n_shown` pictures it shows
# ({glue:text}`slider_loss:.4f` at seed {glue:text}`seed_shown`); the curve averages {glue:text}`n_curve`
# held-out images over {glue:text}`n_curve_seeds` seeds ({glue:text}`curve_loss:.4f`); the quality table
# averages {glue:text}`n_quality` images ({glue:text}`q_mae75:.4f` at 75%). One picture alone, as the in-browser
# control and the live explorer show it, ranges from {glue:text}`single_lo:.4f` to
# {glue:text}`single_hi:.4f` among the slider's pictures: some images are simply harder to fill in.
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
# adds rows to the table below; the summary chapter draws the mask-ratio curve of every modality swept at
# its newest code version, with its seeds and its best ratio ({numref}`fig-ratio-modalities`).

# %% tags=["hide-input"]
records = provenance.load_records("images")
current = provenance.version("images")[:8]  # the version the summary pools the image chapter's seeds by
n_runs, table = claim_tables.image_reruns(records, current)
glue("n_runs", n_runs, display=False)
glue("n_runs_text", viz.count(n_runs, "run"), display=False)
n_current = int(table.loc[table["code"].str.startswith(current), "seeds"].sum()) if len(table) else 0
glue("n_current", f"{n_current} of them {'is' if n_current == 1 else 'are'}", display=False)
glue("code_now", current, display=False)
if len(table):
    viz.show_table(table.set_index("code"), "The image chapter's recorded runs, one row per code version and "
                   "setting (a short hash of the parameters and data, as in the summary's history of each claim; "
                   "its pretraining mask ratio beside it): validation top-1 (%), the mean over the seeds counted.",
                   "table-masking-reruns")
else:
    display(HTML("<p><em>No image-chapter run is recorded yet.</em></p>"))

# %% [markdown]
# The registry holds {glue:text}`n_runs_text` of the image chapter; {glue:text}`n_current` of
# this book's code version ({glue:text}`code_now`). A version is not a git commit: it is a hash of the
# code the image chapter's computation reaches, so commits that leave that code alone share it (the
# summary's history section says more). Rows of different code versions are not comparable run for run: the summary's mask-ratio curves pool, for each profile, only the runs of the newest code
# version that has any (seeds of different code are never pooled), so runs of older versions appear here
# but not there.
