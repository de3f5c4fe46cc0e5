"""Every chapter's parameters, their allowed ranges and the three profiles, in one place.

- ``smoke``: seconds; the tests run every chapter end to end with it.
- ``quick``: the default on a CPU, the scale of the committed sweeps: from a minute (tabular) to about an hour
  (images, volumes) a seed on 2 cores; the book reuses their executions.
- ``full``: the default when CUDA is available; the paper's scale where the data allows.

A notebook's parameters cell leaves most values as ``None`` ("take the profile's"); :func:`resolve`
fills them in and refuses bad values before any compute, naming the parameter and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from .precision import resolve_precision


PROFILE_NAMES = ("smoke", "quick", "full")


KIND_WORDS = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true or false"}


@dataclass(frozen=True)
class Spec:
    kind: type  # int, float, str, bool, list (of floats)
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # True: low itself is not allowed
    open_high: bool = False
    choices: tuple | None = None
    item: type = float  # the element type of a list

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(repr, self.choices))
        lo = "(" if self.open_low else "["
        hi = ")" if self.open_high else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        lo = "(" if self.low is None else lo  # infinite ends are never allowed: a finite number is
        hi = ")" if self.high is None else hi
        return f"in {lo}{low}, {high}{hi}"

    def check(self, name: str, value):
        if value is None:
            return None
        if self.kind is list:
            if isinstance(value, str) and value.strip().startswith("["):  # a list the command line could not read
                raise ValueError(f"{name} must be a list of finite numbers (e.g. [0.25, 0.5]), got {value!r}")
            values = value if isinstance(value, (list, tuple)) else [value]  # one value: a list of one
            if not values:
                raise ValueError(f"{name} must be a list of at least one value, got {value!r}")
            return [Spec(self.item, self.low, self.high, self.open_low, self.open_high).check(name, v) for v in values]
        if self.kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or (self.kind is not str and isinstance(value, (list, tuple, dict))):
            raise ValueError(f"{name} must be {KIND_WORDS[self.kind]}, got {value!r}")
        try:
            v = self.kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {KIND_WORDS[self.kind]}, got {value!r}") from None
        if self.kind is int and isinstance(value, float) and value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.choices is not None and v not in self.choices:
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        if self.kind in (int, float):
            bad_low = self.low is not None and (v <= self.low if self.open_low else v < self.low)
            bad_high = self.high is not None and (v >= self.high if self.open_high else v > self.high)
            if bad_low or bad_high or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return v


RATIO = Spec(float, 0, 1, open_low=True, open_high=True)
COMMON = {
    "profile": Spec(str, choices=("auto",) + PROFILE_NAMES),
    "data_dir": Spec(str),
    "seed": Spec(int, 0),
    "device": Spec(str),
    "batch_size": Spec(int, 1),
    "checkpoint_dir": Spec(str),
    # every training's arithmetic; "auto" resolves to bf16 where the device is fast at it (maelib.precision)
    "precision": Spec(str, choices=("auto", "fp32", "bf16")),
}

# choose the learning rates anew even where a rerun changes only what pretraining does (the mask ratio, the
# target), instead of reusing the default setting's choice (maelib.tuning.borrowed)
TUNE = Spec(bool)

SPECS: dict[str, dict[str, Spec]] = {
    "images": {
        **COMMON,
        "n_classes": Spec(int, 2, 200),
        "unlabelled": Spec(int, 0, 90_000),  # images of the other 180 classes, for MAE pretraining only
        "img_size": Spec(int, 8, 512),
        "patch_size": Spec(int, 1, 64),
        "mask_ratio": RATIO,
        "pretrain_epochs": Spec(int, 1),
        "finetune_epochs": Spec(int, 1),
        "probe_epochs": Spec(int, 1),
        "dim": Spec(int, 8),
        "depth": Spec(int, 1, 48),
        "heads": Spec(int, 1),
        "decoder_dim": Spec(int, 8),
        "decoder_depth": Spec(int, 1, 24),
        "norm_target": Spec(bool),
        "limit": Spec(int, 1),
        "pretrain_lr": Spec(float, 0, open_low=True),
        "finetune_lr": Spec(float, 0, open_low=True),
        "scratch_lr": Spec(float, 0, open_low=True),
        "matched_lr": Spec(float, 0, open_low=True),  # the budget-matched scratch arm's; None: chosen
        "lr_grid": Spec(list, 0, open_low=True),
        "tune": TUNE,
        "layer_decay": Spec(float, 0, 1, open_low=True),
        "drop_path": Spec(float, 0, 1, open_high=True),
        "synthetic": Spec(bool),
    },
}

NO_CHECKPOINTS = {k: v for k, v in COMMON.items() if k != "checkpoint_dir"}  # chapters of short trainings

SPECS["series"] = {
    **NO_CHECKPOINTS,
    "dataset": Spec(str, choices=("ETTh1", "ETTh2", "ETTm1", "ETTm2")),
    "robustness_dataset": Spec(str, choices=("ETTh1", "ETTh2", "ETTm1", "ETTm2")),
    "lag": Spec(int, 1),
    "horizon": Spec(int, 1),
    "split": Spec(list, 0, 1, open_low=True, open_high=True),
    "mask_ratios": Spec(list, 0, 1, open_low=True, open_high=True),
    "mask_ratio": RATIO,
    "epochs": Spec(int, 1),
    "pretrain_epochs": Spec(int, 1),
    "seeds": Spec(int, 1, 20),
    "dim": Spec(int, 4),
    "depth": Spec(int, 1, 24),
    "heads": Spec(int, 1),
    "hidden": Spec(int, 1),
    "patch_size": Spec(int, 1),
    "lr": Spec(float, 0, open_low=True),  # one rate for every next-step model; None: each chosen from lr_grid
    "lr_grid": Spec(list, 0, open_low=True),
    "pretrain_lr": Spec(float, 0, open_low=True),
    # the long-horizon comparison (maelib.forecast), under the field's protocol
    "long_lag": Spec(int, 1),
    "long_horizons": Spec(list, 1, item=int),
    "long_patch": Spec(int, 1),
    "long_stride": Spec(int, 1),
    "long_dim": Spec(int, 4),
    "long_depth": Spec(int, 1, 24),
    "long_heads": Spec(int, 1),
    "long_epochs": Spec(int, 1),
    "long_pretrain_epochs": Spec(int, 1),
    "long_pretrain_lr": Spec(float, 0, open_low=True),
    "long_mask_ratio": RATIO,
    "long_lr_grid": Spec(list, 0, open_low=True),
    "long_batch_size": Spec(int, 1),
}

SPECS["tabular"] = {
    **NO_CHECKPOINTS,
    "missing_rate": RATIO,
    "missing_rates": Spec(list, 0, 1, open_low=True, open_high=True),
    "mask_ratio": RATIO,
    "columns": Spec(list, item=str),
    "rows": Spec(int, 100, 20_433),  # the complete rows of Géron's housing.csv (maelib.data.housing)
    "epochs": Spec(int, 1),
    "seeds": Spec(int, 1, 20),
    "dim": Spec(int, 4),
    "depth": Spec(int, 1, 24),
    "heads": Spec(int, 1),
    "hidden": Spec(int, 1),
    "lr": Spec(float, 0, open_low=True),  # None: each network's rate is chosen from lr_grid on held-out rows
    "lr_grid": Spec(list, 0, open_low=True),
}

SPECS["segmentation"] = {
    **COMMON,
    "dataset": Spec(str, choices=("auto", "camvid", "ade20k")),
    "img_size": Spec(int, 16, 1024),
    "patch_size": Spec(int, 2, 64),
    "mask_ratio": RATIO,
    "pretrain_epochs": Spec(int, 1),
    "epochs": Spec(int, 1),
    "dim": Spec(int, 8),
    "depth": Spec(int, 4, 48),
    "heads": Spec(int, 1),
    "decoder_dim": Spec(int, 8),
    "decoder_depth": Spec(int, 1, 24),
    "width": Spec(int, 8),
    "pretrain_lr": Spec(float, 0, open_low=True),
    "finetune_lr": Spec(float, 0, open_low=True),
    "scratch_lr": Spec(float, 0, open_low=True),
    "matched_lr": Spec(float, 0, open_low=True),  # the budget-matched scratch arm's; None: chosen
    "lr_grid": Spec(list, 0, open_low=True),
    "tune": TUNE,
    "layer_decay": Spec(float, 0, 1, open_low=True),
    "limit": Spec(int, 2),
    "norm_target": Spec(bool),
    "mae_checkpoint": Spec(str),
}

SPECS["volumes"] = {
    **COMMON,
    "dataset": Spec(str, choices=("auto", "hippocampus", "btcv")),
    "roi": Spec(list, 16, 512, item=int),
    "spacing": Spec(float, 0.25, 4),  # mm a voxel on every axis: the hippocampus resampled (its files are at 1 mm)
    "mask_ratio": RATIO,
    "pretrain_epochs": Spec(int, 1),
    "epochs": Spec(int, 1),
    "hidden_size": Spec(int, 8),
    "mlp_dim": Spec(int, 8),
    "heads": Spec(int, 1),
    "decoder_dim": Spec(int, 8),
    "decoder_depth": Spec(int, 1, 24),
    "decoder_heads": Spec(int, 1),
    "feature_size": Spec(int, 4),
    "pretrain_lr": Spec(float, 0, open_low=True),
    "lr": Spec(float, 0, open_low=True),  # one rate for both arms; None: each arm's chosen from lr_grid
    "lr_grid": Spec(list, 0, open_low=True),
    "tune": TUNE,  # true: choose the rates anew where only pretraining changed (mask_ratio); else the default's
    "limit": Spec(int, 4),
}

NO_TRAINING = {k: v for k, v in NO_CHECKPOINTS.items() if k not in ("batch_size", "precision")}

SPECS["masking"] = {
    **NO_TRAINING,
    "mae_checkpoint": Spec(str),
    "live": Spec(bool),
    "n_images": Spec(int, 1, 16),
    "ratios": Spec(list, 0, 1, open_low=True, open_high=True),
    "n_seeds": Spec(int, 1, 10),
    "quality_images": Spec(int, 10, 1000),  # held-out images of the quality table
}

SPECS["summary"] = {"profile": COMMON["profile"], "records_dir": Spec(str)}
SPECS["reproduce"] = {"profile": COMMON["profile"], "executed_dir": Spec(str), "committed_dir": Spec(str)}

# The quick and smoke profiles of the series and tabular chapters train in fp32: their models are so small
# (6-42 tokens of width 16-32, two-layer nets) that bf16 autocast's casts cost more than its matrix products
# save on a CPU (benchmarks/precision_throughput.py, 2026-12-04). Their full profiles (CUDA) take "auto".
SMALL_MODELS_ON_A_CPU = "fp32"

# Model sizes by name. SIZES: a transformer encoder's width, depth and heads. MAE_SIZES: an image MAE's, an
# encoder of SIZES and its decoder's width and depth (4 heads, maelib.mae's default). VOLUME_SIZES: MONAI's
# ViT of 12 blocks (width, MLP width, heads), its MAE decoder's, and UNETR's feature_size.
SIZES = {
    "tiny": dict(dim=192, depth=12, heads=3),  # ViT-Tiny (DeiT-Ti): images and segmentation, full
    "mini": dict(dim=128, depth=6, heads=4),  # images and segmentation, quick
    "micro": dict(dim=64, depth=3, heads=4),  # series and tables, full
    "nano": dict(dim=32, depth=2, heads=2),  # series and tables, quick; images, smoke
    "pico": dict(dim=16, depth=4, heads=2),  # segmentation, smoke (the pyramid takes four blocks)
    "femto": dict(dim=8, depth=1, heads=2),  # series and tables, smoke
    "patchtst": dict(dim=16, depth=3, heads=4),  # PatchTST/42's univariate ETTh1 transformer: long horizons
}
MAE_SIZES = {
    "tiny": dict(**SIZES["tiny"], decoder_dim=128, decoder_depth=4),
    "mini": dict(**SIZES["mini"], decoder_dim=64, decoder_depth=1),
    "nano": dict(**SIZES["nano"], decoder_dim=32, decoder_depth=1),
    "pico": dict(**SIZES["pico"], decoder_dim=16, decoder_depth=1),
}
VOLUME_SIZES = {
    "small": dict(hidden_size=384, mlp_dim=1536, heads=6, decoder_dim=192, decoder_depth=2, decoder_heads=6,
                  feature_size=16),  # ViT-Small's encoder: full
    "mini": dict(hidden_size=96, mlp_dim=192, heads=4, decoder_dim=48, decoder_depth=1, decoder_heads=4,
                 feature_size=8),  # quick
    "femto": dict(hidden_size=12, mlp_dim=16, heads=2, decoder_dim=12, decoder_depth=1, decoder_heads=2,
                  feature_size=4),  # smoke
}


def _long(size: dict) -> dict:
    """A size of SIZES as the long-horizon forecaster's parameters (``long_dim``, ``long_depth``, ``long_heads``)."""
    return {f"long_{k}": v for k, v in size.items()}


# long horizons: PatchTST/42's patching and its univariate ETTh1 size (d_model 16, 3 layers, 4 heads), L = 336
_SERIES_LONG = dict(long_lag=336, long_horizons=[96], long_patch=16, long_stride=8, **_long(SIZES["patchtst"]),
                    long_epochs=6, long_pretrain_epochs=10, long_pretrain_lr=1e-3, long_mask_ratio=0.4,
                    long_lr_grid=[5e-4, 1e-3, 2e-3], long_batch_size=128)
_SERIES_QUICK = dict(dataset="ETTh1", robustness_dataset="ETTh2", lag=24, horizon=1, split=[0.7, 0.2, 0.1], mask_ratios=[0.25, 0.5, 0.75], mask_ratio=0.5,
                     epochs=6, pretrain_epochs=6, seeds=1, **SIZES["nano"], hidden=32, patch_size=4,
                     batch_size=128, lr=None, lr_grid=[1e-3, 2e-3, 4e-3], pretrain_lr=2e-3, **_SERIES_LONG,
                     precision=SMALL_MODELS_ON_A_CPU)

# Images: 64 tokens of 8 x 8 (16 visible at 0.75), as the reference model; the MAE also pretrains on images of
# the other 180 classes, which no supervised arm sees (all 90,000 at full, 20,000 at quick: 14 passes over them
# and the 10,000 labelled ones cost as much as 13-14 supervised passes at this model, by FLOPs). Quick fine-tunes
# 20 epochs: on held-out training images (2026-12-06, seed 0, base rate 2e-3) scratch gained 0.7 top-1 points
# over the last fifth of a 10-epoch schedule, ending at 43.6%, and 1.2 over a 20-epoch one's, ending at 48.1%;
# 5 epochs, as before, stopped far short (32.5% on the validation split).
# Probes for #34 (2026-12-07, seed 0, benchmarks/scale_probes.py): this MAE's held-out loss is 0.77 of the flat
# predictor's (> 0.7, did not learn); with pixel targets (norm_target False) the same 14 epochs reach 0.55, while
# a 128 x 2 decoder on normalised targets reaches only 0.74 at 1.7x the pretraining time. Fine-tuned 40 epochs
# on held-out training images, the pixel-target MAE arm gained 0.3 points over the last fifth (57.1%), the
# 128 x 2 normalised one 1.4 (58.9%), and scratch (base rate 2e-3) 1.4 (55.1%): scratch does not finish within
# 40 epochs at this scale (one seed; 1,000 held-out images put about 1.6 points of noise on each score).
_IMAGES_FULL = dict(n_classes=20, unlabelled=90_000, img_size=64, patch_size=8, mask_ratio=0.75, pretrain_epochs=150, finetune_epochs=40,
                    probe_epochs=90, batch_size=256, **MAE_SIZES["tiny"], norm_target=True, limit=None,
                    pretrain_lr=1.5e-4, finetune_lr=None, scratch_lr=None,
                    matched_lr=None, lr_grid=[5e-4, 1e-3, 2e-3], tune=False, layer_decay=0.75, drop_path=0.1,
                    synthetic=False, precision="auto")

PROFILES: dict[str, dict[str, dict]] = {
    "images": {
        "full": _IMAGES_FULL,
        "quick": {**_IMAGES_FULL, "unlabelled": 20_000, "pretrain_epochs": 14, "finetune_epochs": 20, "probe_epochs": 30,
                  "batch_size": 128, **MAE_SIZES["mini"], "pretrain_lr": 1e-3, "layer_decay": 0.85,
                  "drop_path": 0.0, "lr_grid": [1e-3, 2e-3, 4e-3]},
        "smoke": {**_IMAGES_FULL, "n_classes": 20, "unlabelled": 360, "img_size": 32, "patch_size": 8, "pretrain_epochs": 2,
                  "finetune_epochs": 2, "probe_epochs": 2, "batch_size": 64, **MAE_SIZES["nano"], "limit": 200,
                  "drop_path": 0.0},
    },
}


PROFILES["series"] = {
    "quick": _SERIES_QUICK,
    "full": {**_SERIES_QUICK, "precision": "auto",
             "epochs": 30, "pretrain_epochs": 60, "seeds": 5, **SIZES["micro"],
             "hidden": 64, "lr_grid": [5e-4, 1e-3, 2e-3], "pretrain_lr": 1e-3, "long_horizons": [96, 192, 336, 720], "long_epochs": 30,
             "long_pretrain_epochs": 100, "long_lr_grid": [1e-4, 3e-4, 1e-3]},
    "smoke": {**_SERIES_QUICK, "lag": 16, "patch_size": 4, "epochs": 1, "pretrain_epochs": 1, **SIZES["femto"],
              "hidden": 8, "batch_size": 512, "long_lag": 96, "long_horizons": [24], **_long(SIZES["femto"]),
              "long_epochs": 1, "long_pretrain_epochs": 1,
              "long_lr_grid": [1e-3], "long_batch_size": 512},
}


_TABULAR_QUICK = dict(missing_rate=0.2, missing_rates=[0.2], mask_ratio=0.3, columns=None, rows=None, epochs=12, seeds=1,
                      **SIZES["nano"], hidden=64, batch_size=256, lr=None,
                      lr_grid=[4e-3, 8e-3, 1.6e-2],  # from [1e-3, 4e-3], every network chose 0.016 at the grown top
                      precision=SMALL_MODELS_ON_A_CPU)
PROFILES["tabular"] = {
    "quick": _TABULAR_QUICK,
    "full": {**_TABULAR_QUICK, "precision": "auto",
             "missing_rates": [0.1, 0.2, 0.5], "epochs": 60, "seeds": 5, **SIZES["micro"]},
    "smoke": {**_TABULAR_QUICK, "rows": 1500, "epochs": 1, **SIZES["femto"], "hidden": 8, "batch_size": 256},
}


REFERENCE = "reference"  # as an mae_checkpoint: the committed reference image MAE (maelib.reference.MODEL)
REFERENCE_MASK_RATIO = 0.75  # the ratio it was pretrained at (maelib.reference.SCHEDULE; a test checks they agree)

# Quick segmentation transfers, as the paper did: the encoder is the committed reference image MAE's
# (TinyImageNet, 64 px in 8-px patches, 64 tokens), so the frames are 64 px in 8-px patches too, and the MAE
# arm's budget counts that pretraining (about 79 supervised epochs' FLOPs here). 80 epochs: at 10 the curves
# still gained 0.006 mIoU in their last epoch, and at 30 (b66c74a7, 5 seeds) the MAE and scratch arms still
# gained 0.025 and 0.019 over their last fifth on average, while the budget-matched arm's 109-epoch schedule
# ended flat (0.004). Smoke and full pretrain here (no reference of their widths).
_SEG_QUICK = dict(dataset="auto", img_size=64, patch_size=8, mask_ratio=0.75, pretrain_epochs=40, epochs=80,
                  batch_size=16, **MAE_SIZES["mini"], width=64,
                  pretrain_lr=1e-3, finetune_lr=None, scratch_lr=None, matched_lr=None, lr_grid=[5e-4, 1e-3, 2e-3],
                  layer_decay=0.75,
                  limit=None, norm_target=True, mae_checkpoint=REFERENCE, tune=False, precision="auto")
PROFILES["segmentation"] = {
    "quick": _SEG_QUICK,
    "full": {**_SEG_QUICK, "img_size": 256, "patch_size": 16, "pretrain_epochs": 400, "epochs": 80,
             **MAE_SIZES["tiny"], "width": 128, "mae_checkpoint": None,
             "lr_grid": [1.5e-4, 3e-4, 6e-4]},
    "smoke": {**_SEG_QUICK, "img_size": 32, "patch_size": 8, "pretrain_epochs": 1, "epochs": 1,
              **MAE_SIZES["pico"], "width": 8, "limit": 16, "batch_size": 8, "mae_checkpoint": None},
}


# Quick volumes: two cases (four crops) a step, so a pass over the 80 training cases is 40 optimizer steps. The
# hippocampus is resampled to 0.5 mm so that a 64 x 64 x 48 crop holds 48 of UNETR's 16^3 patches (12 seen at
# 0.75); at its own 1 mm a crop that fits the cases held 12 (3 seen), a degenerate MAE task (#34). The schedule
# was sized by one-seed probes (2026-12-07, benchmarks/scale_probes.py volume) that scored on the validation
# cases: long enough for the MAE criterion and for every arm to finish, never picked by an arm's score. There the
# MAE's held-out loss was 0.83 of the flat predictor's after 20 pretraining passes and 0.64 after 100 (5.5 min,
# one core without AMX), and 16 fine-tuning passes at 8e-3 finished every arm (Dice: scratch 0.822, MAE init
# 0.830; each gained at most 0.002 over the last fifth; about 21 min an arm on that core), where 8 passes at 1 mm
# still gained 0.006 (scratch) and 0.008 (MAE init) on average over five seeds. The rate grid is centred on 8e-3,
# which every arm at 1 mm chose on held-out training cases (code da09a786: from [2e-3, 8e-3] grown to 1.6e-2).
_VOL_QUICK = dict(dataset="auto", roi=[64, 64, 48], spacing=0.5, mask_ratio=0.75, pretrain_epochs=100, epochs=16,
                  batch_size=2, **VOLUME_SIZES["mini"], pretrain_lr=1e-3, lr=None, lr_grid=[4e-3, 8e-3, 1.6e-2],
                  tune=False, limit=100, precision="auto")
PROFILES["volumes"] = {
    "quick": _VOL_QUICK,
    # the hippocampus at 0.5 mm in 64 x 96 x 64 crops: 96 patches (BTCV keeps the paper's 1.5 x 1.5 x 2 mm)
    "full": {**_VOL_QUICK, "roi": [64, 96, 64], "pretrain_epochs": 300, "epochs": 100, "batch_size": 4,
             **VOLUME_SIZES["small"], "lr_grid": [1e-4, 2e-4, 4e-4], "limit": None},
    "smoke": {**_VOL_QUICK, "roi": [32, 48, 32], "pretrain_epochs": 1, "epochs": 1, **VOLUME_SIZES["femto"],
              "limit": 6, "batch_size": 2},
}


# When MAE pays (maelib.payoff): Chapter 1's model, data and pretraining, then each arm trained once per budget,
# on all the labelled images (epochs) and on few_labels of them (few_label_epochs); the MAE still pretrains on
# every image. Quick fixes each arm's rate at the one Chapter 1 chose on held-out training images for its 20-epoch
# schedule (seed 0, 2026-12-06, code 25fdd036: MAE 4e-3 of 1e-3..8e-3, scratch 2e-3 of 1e-3..4e-3), at every
# budget and both label fractions, where choosing per budget would cost three times the curve itself; full and
# smoke leave them to be chosen on held-out data for finetune_epochs.
_NOT_PAYOFF = ("probe_epochs", "matched_lr")
SPECS["payoff"] = {**{k: v for k, v in SPECS["images"].items() if k not in _NOT_PAYOFF},
                   "epochs": Spec(list, 1, item=int),  # the budgets on all the labelled images, in passes
                   "few_labels": Spec(float, 0, 1, open_low=True),  # the labelled share of the second curve
                   "few_label_epochs": Spec(list, 1, item=int),  # its budgets, in passes over those images
                   "cooldown": Spec(float, 0, 1, open_low=True, open_high=True)}  # a budget's share of decay


def _payoff(images_profile: dict, **changes) -> dict:
    return {**{k: v for k, v in images_profile.items() if k not in _NOT_PAYOFF}, "cooldown": 0.2, **changes}


PROFILES["payoff"] = {
    "quick": _payoff(PROFILES["images"]["quick"], finetune_lr=4e-3, scratch_lr=2e-3, epochs=[5, 10, 20, 40],
                     few_labels=0.1, few_label_epochs=[20, 40, 80, 160]),
    "full": _payoff(PROFILES["images"]["full"], epochs=[10, 20, 40, 80], few_labels=0.1,
                    few_label_epochs=[40, 80, 160, 320]),
    "smoke": _payoff(PROFILES["images"]["smoke"], epochs=[1, 2], few_labels=0.5, few_label_epochs=[2, 4]),
}


_RATIO_GRID = [round(0.05 * i, 2) for i in range(1, 20)]
PROFILES["masking"] = {
    "quick": dict(mae_checkpoint=None, live=True, n_images=4, ratios=_RATIO_GRID, n_seeds=3, quality_images=200),
    "full": dict(mae_checkpoint=None, live=True, n_images=6, ratios=_RATIO_GRID, n_seeds=5, quality_images=1000),
    "smoke": dict(mae_checkpoint=None, live=True, n_images=2, ratios=[0.25, 0.5, 0.75], n_seeds=2,
                  quality_images=20),
}


PROFILES["summary"] = {name: {"records_dir": None} for name in PROFILE_NAMES}
PROFILES["reproduce"] = {name: {"executed_dir": None, "committed_dir": None} for name in PROFILE_NAMES}


def default_profile() -> str:
    import torch

    return "full" if torch.cuda.is_available() else "quick"


def resolve(chapter: str, profile: str = "auto", **overrides) -> SimpleNamespace:
    """The chapter's parameters: the profile's values, then every override that is not None, validated.

    Raises ``ValueError`` naming the first bad parameter and its allowed range, or an unknown name.
    """
    if chapter not in SPECS:
        raise KeyError(f"unknown chapter {chapter!r}; known: {', '.join(sorted(SPECS))}")
    profile = COMMON["profile"].check("profile", profile or "auto")
    if profile == "auto":
        profile = default_profile()
    params = dict(PROFILES[chapter][profile])
    params.update({k: v for k, v in overrides.items() if v is not None})
    params["profile"] = profile
    for name, default in (("seed", 0), ("device", "auto"), ("precision", "auto")):
        if name in SPECS[chapter]:
            params.setdefault(name, default)
    validate(chapter, params)
    values = {k: None for k in SPECS[chapter]}
    values.update({k: SPECS[chapter][k].check(k, v) for k, v in params.items()})
    if "precision" in values:  # resolved here, so that records and settings name fp32 or bf16, never "auto"
        values["precision"] = resolve_precision(values["precision"], device_type(values["device"]))
    return SimpleNamespace(**values)


def device_type(name: str | None) -> str:
    """The kind of device a ``device`` parameter names ('auto': CUDA when present); an unknown name counts
    as a CPU here (the chapter's preflight refuses it before anything runs)."""
    import torch

    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(name).type
    except (RuntimeError, ValueError):
        return "cpu"


def resolve_namespace(chapter: str, namespace: dict) -> SimpleNamespace:
    """:func:`resolve` with every parameter the chapter declares taken from ``namespace`` (a notebook's
    ``globals()`` after its parameters cell): no declared name can be left out of the call."""
    if chapter not in SPECS:
        raise KeyError(f"unknown chapter {chapter!r}; known: {', '.join(sorted(SPECS))}")
    given = {k: namespace.get(k) for k in SPECS[chapter]}
    return resolve(chapter, given.pop("profile") or "auto", **given)


def validate(chapter: str, params: dict) -> None:
    """Refuse unknown parameter names and values out of range (checked without running anything)."""
    specs = SPECS[chapter]
    for name in params:
        if name not in specs:
            raise ValueError(f"unknown parameter {name!r} for chapter {chapter!r}; known: {', '.join(sorted(specs))}")
    checked = {name: specs[name].check(name, value) for name, value in params.items()}
    checker = CROSS_CHECKS.get(chapter)
    if checker:
        checker(checked)  # the values as the chapter will see them (a single column: a list of one)


def _images_cross(p: dict) -> None:
    if p.get("img_size") and p.get("patch_size") and p["img_size"] % p["patch_size"]:
        raise ValueError(f"img_size ({p['img_size']}) must be a multiple of patch_size ({p['patch_size']})")
    if p.get("dim") and p.get("heads") and p["dim"] % p["heads"]:
        raise ValueError(f"dim ({p['dim']}) must be a multiple of heads ({p['heads']})")
    if p.get("dim") and p["dim"] % 4:
        raise ValueError(f"dim must be a multiple of 4 (2D sin-cos positions), got {p['dim']}")


def _series_cross(p: dict) -> None:
    lag, patch, horizon = p.get("lag"), p.get("patch_size"), p.get("horizon") or 1
    if lag and patch and lag % patch:
        raise ValueError(f"lag ({lag}) must be a multiple of patch_size ({patch})")
    split = p.get("split")
    if split is not None:
        if len(split) != 3 or abs(sum(split) - 1) > 1e-6:
            raise ValueError(f"split must be three fractions (train, val, test) summing to 1, got {split}")
        from .data.ett import ROWS

        rows = ROWS[p.get("dataset") or "ETTh1"]
        for name, frac in zip(("train", "val", "test"), split):
            if lag and int(frac * rows) < lag + horizon:
                raise ValueError(f"split leaves the {name} part with {int(frac * rows)} rows, fewer than "
                                 f"lag + horizon = {lag + horizon}: no window fits")
    if p.get("dim") and p.get("heads") and p["dim"] % p["heads"]:
        raise ValueError(f"dim ({p['dim']}) must be a multiple of heads ({p['heads']})")
    if p.get("dim") and p["dim"] % 2:
        raise ValueError(f"dim must be even (sin-cos positions), got {p['dim']}")
    _series_long_cross(p)


def _series_long_cross(p: dict) -> None:
    """The long-horizon comparison's shapes: patches that tile the input for pretraining, heads that divide
    the width, horizons that fit the 12/4/4-month split."""
    lag, patch, stride = p.get("long_lag"), p.get("long_patch"), p.get("long_stride")
    if lag and patch and lag % patch:
        raise ValueError(f"long_lag ({lag}) must be a multiple of long_patch ({patch}): pretraining tiles it")
    if patch and stride and stride > patch:
        raise ValueError(f"long_stride ({stride}) must be at most long_patch ({patch})")
    dim, heads = p.get("long_dim"), p.get("long_heads")
    if dim and heads and dim % heads:
        raise ValueError(f"long_dim ({dim}) must be a multiple of long_heads ({heads})")
    if dim and dim % 2:
        raise ValueError(f"long_dim must be even (sin-cos positions), got {dim}")
    from .data.ett import MONTH_SPLIT, rows_per_month

    month = rows_per_month(p.get("dataset") or "ETTh1")
    for h in p.get("long_horizons") or []:
        if h > MONTH_SPLIT[2] * month or (lag and lag + h > MONTH_SPLIT[0] * month):
            raise ValueError(f"long_horizons: {h} does not fit the 12/4/4-month split with long_lag {lag} (at most "
                             f"{MONTH_SPLIT[2] * month} steps, and long_lag + horizon at most {MONTH_SPLIT[0] * month})")


def _tabular_cross(p: dict) -> None:
    from .data.housing import select_columns

    if p.get("columns") is not None:
        select_columns(p["columns"])
    if p.get("dim") and p.get("heads") and p["dim"] % p["heads"]:
        raise ValueError(f"dim ({p['dim']}) must be a multiple of heads ({p['heads']})")


def _existing_folders(p: dict) -> None:
    """The folders a chapter reads its runs from must exist (committed_dir may not: no committed runs)."""
    for name in ("records_dir", "executed_dir"):
        if p.get(name) is not None and not Path(p[name]).is_dir():
            raise ValueError(f"{name} must be an existing folder, got {p[name]!r} (no such folder)")


def _existing_checkpoint(p: dict, reference_too: bool = False) -> None:
    path = p.get("mae_checkpoint")
    if path is not None and not (reference_too and path == REFERENCE) and not Path(path).is_file():
        raise ValueError(f"mae_checkpoint must be an existing file{' or ' + repr(REFERENCE) if reference_too else ''}, "
                         f"got {path!r} (no such file)")


CROSS_CHECKS = {"images": _images_cross, "series": _series_cross, "tabular": _tabular_cross,
                "segmentation": lambda p: (_images_cross(p), _existing_checkpoint(p, reference_too=True),
                                           _transferred_ratio(p)),
                "volumes": lambda p: _volumes_cross(p), "summary": _existing_folders,
                "reproduce": _existing_folders, "masking": _existing_checkpoint,
                "payoff": lambda p: (_images_cross(p), _budgets(p))}


def _transferred_ratio(p: dict) -> None:
    """A transferred encoder was pretrained at its own mask ratio: a run that names another would be recorded,
    and pooled in a mask-ratio sweep, as pretrained at a ratio it never saw."""
    ratio = p.get("mask_ratio")
    if p.get("mae_checkpoint") == REFERENCE and ratio is not None and abs(ratio - REFERENCE_MASK_RATIO) > 1e-9:
        raise ValueError(f"mask_ratio must be {REFERENCE_MASK_RATIO} with mae_checkpoint {REFERENCE!r}, got {ratio}: "
                         "the MAE is not pretrained here but transferred from the reference image MAE, pretrained "
                         f"with {REFERENCE_MASK_RATIO:.0%} of the patches hidden (the smoke and full profiles "
                         "pretrain here, at any ratio)")


def _budgets(p: dict) -> None:
    for name in ("epochs", "few_label_epochs"):
        b = p.get(name)
        if b is not None and (len(b) < 2 or list(b) != sorted(set(b))):
            raise ValueError(f"{name} must be at least two budgets in increasing order, each a whole number of "
                             f"epochs >= 1, got {b}")


def _volumes_cross(p: dict) -> None:
    roi = p.get("roi")
    if roi is not None and (len(roi) != 3 or any(r % 16 for r in roi)):
        raise ValueError(f"roi must be three sizes, each a multiple of 16 (UNETR's patch), got {roi}")
    for dim, heads in (("hidden_size", "heads"), ("decoder_dim", "decoder_heads")):
        if p.get(dim) and p.get(heads) and p[dim] % p[heads]:
            raise ValueError(f"{dim} ({p[dim]}) must be a multiple of {heads} ({p[heads]})")
        if p.get(dim) and p[dim] % 6:
            raise ValueError(f"{dim} must be a multiple of 6 (3D sin-cos positions), got {p[dim]}")
