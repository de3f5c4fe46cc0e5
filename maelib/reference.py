"""The reference image MAE: trained once, committed, shown wherever the book shows reconstructions.

A chapter's quick run trains for minutes and its MAE learns little more than each image's mean colour.
The reference model is trained once, for half an hour to an hour in the background, on every staged TinyImageNet
image that chapter 1 does not evaluate on, and committed in fp16 under ``results/models/`` with a
provenance file beside it. ``python -m maelib reference train`` makes it (checkpointed every epoch,
resumable: run the same command again after a kill); :func:`quality` measures it against two baselines.

Data, labels unused:

- training: the 20-class subset's 10,000 training images and the 200-class validation images of the
  180 classes that are not in the subset (9,000);
- held out: the subset's 1,000 validation images, the ones chapter 1 reports on (:func:`held_out`).
"""

from __future__ import annotations

import argparse
import json
import platform
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from .data import TensorLoader, normalize, random_resized_crop_flip
from .data import tinyimagenet
from .data.registry import cache_dir, locate, sha256
from .files import atomic_path
from .images import MEAN, STD, denormalize, resize, save_mae
from .mae import MaskedAutoencoder
from .masking import random_masking
from .tokens import Patches2d
from .train import TrainConfig, fit, param_groups


ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "results" / "models" / "image_mae_reference.pt"
VAL200 = "tin_val200.tar.gz"

# the model and its schedule: 64-px images in 8-px patches (64 tokens), pixel targets (no per-patch
# normalisation, so a reconstruction keeps each patch's brightness)
CONFIG = dict(img_size=64, patch_size=8, dim=128, depth=6, heads=4, decoder_dim=128, decoder_depth=2,
              decoder_heads=4, norm_target=False)
SCHEDULE = dict(epochs=10, batch_size=128, lr=1e-3, warmup_epochs=3, weight_decay=0.05, mask_ratio=0.75,
                crop_scale=(0.4, 1.0), seed=0)


def checkpoint(value: str | Path) -> Path:
    """An ``mae_checkpoint`` parameter as a path: the keyword ``"reference"`` (:data:`maelib.profiles.REFERENCE`)
    is this model, anything else a path."""
    from .profiles import REFERENCE

    return MODEL if str(value) == REFERENCE else Path(value)


def make_model() -> MaskedAutoencoder:
    c = CONFIG
    return MaskedAutoencoder(Patches2d(c["img_size"], c["patch_size"]), dim=c["dim"], depth=c["depth"],
                             heads=c["heads"], decoder_dim=c["decoder_dim"], decoder_depth=c["decoder_depth"],
                             decoder_heads=c["decoder_heads"], norm_target=c["norm_target"])


def _val200_outside_subset(folder: Path, subset: set[str]) -> np.ndarray:
    """The 200-class validation images of classes not in ``subset``: (N, 64, 64, 3) uint8, file order."""
    with tarfile.open(folder / VAL200, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    ann = next(v for k, v in members.items() if k.endswith("val_annotations.txt")).decode()
    by_name = {k.rsplit("/", 1)[-1]: k for k in members if k.endswith(".JPEG")}
    keep = sorted(by_name[f] for f, w in (line.split("\t")[:2] for line in ann.splitlines() if line) if w not in subset)
    return np.stack([tinyimagenet._decode(members[k], k, folder / VAL200) for k in keep])


def training_images(data_dir=None) -> tuple[torch.Tensor, dict]:
    """Every staged image chapter 1 does not evaluate on, (N, 3, 64, 64) uint8, and the data's sha256."""
    sub = tinyimagenet.load(20, data_dir)
    folder = locate("tinyimagenet", (tinyimagenet.STAGED,), data_dir)
    extra = torch.from_numpy(_val200_outside_subset(folder, set(sub["classes"]))).permute(0, 3, 1, 2)
    sums = {tinyimagenet.STAGED: sha256(folder / tinyimagenet.STAGED), VAL200: sha256(folder / VAL200)}
    return torch.cat([sub["train"][0], extra.contiguous()]), sums


def held_out(data_dir=None) -> torch.Tensor:
    """The images the reference model never saw: the 20-class subset's 1,000 validation images."""
    return tinyimagenet.load(20, data_dir)["val"][0]


def train(stamp: dict, out: Path = MODEL, ckpt_dir: Path | None = None, data_dir=None,
          epochs: int | None = None) -> dict:
    """Train the reference MAE (resuming from ``ckpt_dir``), save it in fp16 at ``out`` and its provenance
    at ``out`` with ``.json``; returns the provenance.

    Args:
        stamp: what the caller records of the code as training starts ({"command", "code_version",
            "git_commit", "environment"}: ``python -m maelib reference train`` fills it from
            :mod:`maelib.provenance`, a layer above this one).
    """
    s = {**SCHEDULE, "epochs": epochs or SCHEDULE["epochs"]}
    started = time.time()
    x, sums = training_images(data_dir)
    scale = tuple(s["crop_scale"])
    loader = TensorLoader((x,), s["batch_size"], shuffle=True, seed=s["seed"], drop_last=True,
                          transform=lambda b, g: (random_resized_crop_flip(normalize(b[0], MEAN, STD), g, scale=scale),))
    xv = normalize(held_out(data_dir)[:256], MEAN, STD)

    def evaluate(model):  # the training loss on fixed held-out images and masks
        return {"val_loss": model(xv, s["mask_ratio"], generator=torch.Generator().manual_seed(12345))[0].item()}

    torch.manual_seed(s["seed"])
    mae = make_model()
    ckpt = Path(ckpt_dir or cache_dir() / "reference") / "pretrain.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(epochs=s["epochs"], lr=s["lr"] * s["batch_size"] / 256, weight_decay=s["weight_decay"],
                      warmup_epochs=s["warmup_epochs"], betas=(0.9, 0.95), seed=s["seed"], checkpoint=str(ckpt),
                      desc="reference MAE", extra={**CONFIG, **{k: v for k, v in s.items() if k != "crop_scale"}})
    step = lambda model, batch: model(batch[0], s["mask_ratio"])[0]  # noqa: E731
    history = fit(mae, step, loader, cfg, "cpu", groups=param_groups(mae, cfg.weight_decay), evaluate=evaluate)
    save_mae(mae, argparse.Namespace(mask_ratio=s["mask_ratio"], profile="reference"), out, torch.float16)
    prov = {**{k: stamp[k] for k in ("command", "code_version", "git_commit")},
            "model": CONFIG, "schedule": s, "n_train_images": len(x),
            "data": {"training": "tin_subset20 train (10,000) + tin_val200 val of the 180 classes outside the "
                     "subset (9,000); labels unused", "held_out": "tin_subset20 val (1,000)", "sha256": sums},
            "epochs": int(history["epoch"].iloc[-1]), "train_s": float(history["epoch_s"].sum()),
            "wall_s_this_call": time.time() - started, "device": f"cpu ({platform.processor() or platform.machine()}), "
            f"{torch.get_num_threads()} thread(s)", "final_train_loss": float(history["loss"].iloc[-1]),
            "final_val_loss": float(history["val_loss"].iloc[-1]), "environment": stamp["environment"],
            "history": history.to_dict("records")}
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(prov, indent=1) + "\n")
    return prov


QUALITY_RATIOS = (0.25, 0.5, 0.75)
GOAL = 0.25  # the reference model is worth showing when its hidden-patch MSE at 0.75 is this far below flat's


HIDDEN_GREY = 0.5  # what a hidden patch is drawn as, everywhere: a neutral grey, fully opaque


@torch.no_grad()
def predictions(mae: MaskedAutoencoder, x: torch.Tensor, mask_ratio: float, seed: int = 0,
                baselines: bool = True) -> dict:
    """What the MAE (and the two baselines) predict for the hidden patches of uint8 images (N, 3, H, W),
    resized to the MAE's size S, for one random mask per image drawn from ``seed``.

    Returns tensors (N, 3, S, S) in [0, 1]: ``image``, ``hidden`` (1 on hidden pixels), ``reconstruction``
    (the decoder's prediction of every patch), ``mae`` (that prediction on hidden patches, the image on
    visible ones) and with ``baselines`` ``flat`` and ``biharmonic`` (the same, for each baseline); and
    ``mse`` (N,), the MAE's mean squared error on each image's hidden pixels.
    """
    mae.eval()
    tok = mae.tokenizer
    x = resize(x, tok.img_size).to(next(mae.parameters()).device)
    xn = normalize(x, MEAN, STD)
    tokens = tok.tokenize(xn)
    m = random_masking(len(x), tokens.shape[1], mask_ratio, x.device, torch.Generator().manual_seed(seed))
    pred = mae.forward_decoder(mae.forward_encoder(tokens, m), m)
    recon, pasted = mae.reconstruct(xn, pred, m.mask)  # de-normalised from the visible patches under norm_target
    image = x.float() / 255
    hidden = tok.untokenize(m.mask[:, :, None].expand(-1, -1, tok.token_dim).float())  # (N, 3, S, S)
    out = {"image": image, "hidden": hidden, "reconstruction": denormalize(recon), "mae": denormalize(pasted)}
    out["mse"] = hidden_mse(out["mae"], image, hidden)
    if baselines:
        out["flat"], out["biharmonic"] = flat_fill(image, hidden), biharmonic_fill(image, hidden)
    return out


def hidden_mse(pred: torch.Tensor, image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) each -> (N,) mean squared error over each image's hidden pixels (0 where none)."""
    return ((pred - image) ** 2 * hidden).sum((1, 2, 3)) / hidden.sum((1, 2, 3)).clamp(min=1)


def flat_fill(image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """The flat predictor: each hidden pixel takes the mean colour of the image's visible pixels."""
    visible = 1 - hidden
    colour = (image * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True).clamp(min=1)
    return image * visible + colour * hidden


def biharmonic_fill(image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """scikit-image's biharmonic inpainting of the hidden pixels, image by image."""
    from skimage.restoration import inpaint_biharmonic

    filled = [inpaint_biharmonic(im.permute(1, 2, 0).cpu().numpy(), h[0].bool().cpu().numpy(), channel_axis=-1)
              for im, h in zip(image, hidden)]
    filled = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).float().clamp(0, 1).to(image.device)
    return image * (1 - hidden) + filled * hidden


def masked_view(image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """What the encoder is shown: the visible pixels, hidden patches in opaque :data:`HIDDEN_GREY`."""
    return image * (1 - hidden) + HIDDEN_GREY * hidden


def quality(mae: MaskedAutoencoder, x: torch.Tensor, ratios=QUALITY_RATIOS, seed: int = 0,
            batch: int = 250) -> "pd.DataFrame":  # noqa: F821
    """Hidden-patch MSE in pixel space ([0, 1] RGB) of the MAE, the flat predictor (each hidden patch the
    visible patches' mean colour) and scikit-image's biharmonic inpainting, on uint8 images ``x``, the same
    masks for all three (one per image and ratio, from ``seed``).

    Returns one row per mask ratio: ``mask_ratio``, ``mae``, ``flat``, ``biharmonic`` (mean over images of
    each image's MSE on its hidden pixels) and ``below_flat`` (1 - mae / flat).
    """
    import pandas as pd

    rows = []
    for r in ratios:
        sums = dict.fromkeys(("mae", "flat", "biharmonic"), 0.0)
        for i in range(0, len(x), batch):
            p = predictions(mae, x[i:i + batch], float(r), seed * 1_000 + i)
            for k in sums:
                sums[k] += float(hidden_mse(p[k], p["image"], p["hidden"]).sum())
        row = {"mask_ratio": float(r), **{k: v / len(x) for k, v in sums.items()}}
        rows.append({**row, "below_flat": 1 - row["mae"] / row["flat"]})
    return pd.DataFrame(rows)


def verdict(below_flat: float, goal: float = GOAL) -> str:
    """The sentence on whether the model beats the flat predictor at 75% by the goal, from the signs."""
    pct, want = 100 * abs(below_flat), round(100 * goal)
    if below_flat >= goal:
        return f"{pct:.1f}% below it, which meets the goal of at least {want}% below"
    if below_flat > 0:
        return (f"only {pct:.1f}% below it, short of the goal of at least {want}% below: the reconstructions are "
                "better than a flat fill, but not by the margin that would make them worth showing")
    return (f"{pct:.1f}% above it, short of the goal of at least {want}% below: the model does worse than "
            "filling every hidden patch with the visible patches' mean colour")


def relative(ours: float, theirs: float) -> str:
    """Our error against another's as a reader says it: "50.2% lower" or "20.4% higher" (never "-20.4%
    below"), "the same" at one decimal."""
    d = 100 * (1 - ours / theirs)
    return "the same" if round(d, 1) == 0 else f"{abs(d):.1f}% {'lower' if d > 0 else 'higher'}"


def against(name: str, ratios, ours, theirs) -> str:
    """The MAE's error against ``name``'s at each mask ratio, in words from the signs: "Against
    biharmonic inpainting, the MAE's error is 20.4% higher at 25%, 9.0% lower at 50% and 31.3% lower at
    75% hidden."."""
    parts = [f"{relative(o, t)} at {round(100 * r)}%" for r, o, t in zip(ratios, ours, theirs)]
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"Against {name}, the MAE's error is {listed} hidden."


def provenance(path: str | Path = MODEL) -> dict | None:
    """The provenance file beside a committed model (``<name>.json``), or None where there is none."""
    f = Path(path).with_suffix(".json")
    return json.loads(f.read_text()) if f.is_file() else None


def label(saved: dict, prov: dict | None = None, run: bool = False) -> str:
    """How the book names a model: ``"reference model (...)"`` or ``"this run's model (...)"``.
    ``saved`` is what :func:`maelib.images.load_mae` returns beside the model."""
    shape = f"{saved['img_size']}-px images, {saved['patch_size']}-px patches"
    if run:
        return f"this run's model ({saved.get('profile', 'unknown')} profile, {shape})"
    if prov:
        where = "one CPU thread" if prov.get("device", "").startswith("cpu") and " 1 thread" in prov["device"] else (
            prov.get("device", "unknown device").split(" (")[0])
        took = f" in {prov['train_s'] / 60:.0f} min on {where}" if "train_s" in prov else ""
        return (f"reference model ({prov['epochs']} epochs on {prov['n_train_images']:,} images{took}, {shape}, "
                "trained once and committed)")
    return f"reference model ({saved.get('profile', 'unknown')} profile, {shape}, committed)"
