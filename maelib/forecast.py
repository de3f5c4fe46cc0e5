"""Long-horizon forecasting under the field's protocol: does masked pretraining help at H = 96 ... 720?

The protocol is the one of DLinear and PatchTST (:func:`maelib.data.ett.load_months`): univariate OT,
12/4/4 months, a standard scaler fit on the training months, L = 336 inputs, errors on the standard scale,
and every test window scored (the reference code's test loader drops its last incomplete batch).

Floors: persistence and DLinear, trained with its authors' recipe (:func:`dlinear_recipe`). The patch
transformer follows PatchTST/42's design (channel-independent, patches of 16 every 8 steps after 8 copies
of the last value, instance normalisation, a flatten-linear head) with this project's ViT encoder; its
MAE-pretrained twin is pretrained by this project's :class:`~maelib.mae.MaskedAutoencoder` on
non-overlapping patches of the training windows, then fine-tuned end to end. Where it differs from
PatchTST: pre-norm timm blocks with LayerNorm (PatchTST: BatchNorm), fixed sin-cos positions (learned), a
``[cls]`` token the head ignores, no dropout (0.3), hidden patches dropped from the encoder and rebuilt by
a one-block decoder (PatchTST sets them to zero and keeps them), fine-tuning on the overlapping patches
of the scratch arm (PatchTST fine-tunes on its pretraining patches, after 10 epochs of linear probing).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import stats
from .data import TensorLoader
from .data.ett import windows
from .mae import MaskedAutoencoder, ViTEncoder, versus_flat
from .masking import check_split, visible_count
from .metrics import mae as mae_metric
from .metrics import mse as mse_metric
from .report import SeedValues
from .series import fit_best, persistence, predict_tensor, squared_errors
from .series import preflight as series_preflight
from .train import GRID_EXTENSIONS, TrainConfig, fit, grid_search, param_groups

# PatchTST's univariate ETTh1 script (d_model 16, e_layers 3, n_heads 4, d_ff 128 = 8 x 16)
PATCHTST_ETTH1 = dict(dim=16, depth=3, heads=4, mlp_ratio=8.0)
DLINEAR_KERNEL = 25  # the moving average of DLinear's decomposition
SCRATCH, PRETRAINED = "patch transformer, scratch", "patch transformer, MAE-pretrained"
ARMS = (SCRATCH, PRETRAINED)
MODELS = ("persistence", "DLinear", *ARMS)
REFERENCE_BATCH = {"DLinear": 32, SCRATCH: 128, PRETRAINED: 128, "persistence": 32}  # the reference scripts'


def dlinear_recipe(horizon: int) -> dict:
    """DLinear's training as its univariate ETTh1 script runs it: Adam, batches of 32, MSE, the learning
    rate halved after each epoch from the second on, early stopping after 3 epochs without a better
    validation loss; lr 0.005 for 10 epochs (0.05 for 5 at H = 720)."""
    long = horizon >= 720
    return {"lr": 0.05 if long else 0.005, "epochs": 5 if long else 10, "batch_size": 32, "patience": 3}


class StridedPatches1d(nn.Module):
    """Patches of ``patch`` values every ``stride`` steps, after ``pad`` copies of the last value (PatchTST's
    end padding): (N, T, 1) -> (N, L, patch), L = (T + pad - patch) // stride + 1.

    ``positions`` are the patches' starts in units of ``patch``: non-overlapping patches sit at 0, 1, 2, ...
    and patches every half patch at 0, 0.5, 1, ..., so the sin-cos positions of both agree.
    """

    def __init__(self, length: int, patch: int, stride: int, pad: int = 0):
        super().__init__()
        if patch < 1 or stride < 1 or pad < 0 or length + pad < patch:
            raise ValueError(f"need patch >= 1, stride >= 1, pad >= 0 and length + pad >= patch, got length={length}, "
                             f"patch={patch}, stride={stride}, pad={pad}")
        self.length, self.patch_size, self.stride, self.pad = length, patch, stride, pad
        self.num_tokens = (length + pad - patch) // stride + 1
        self.grid, self.token_dim, self.learned_positions = (self.num_tokens,), patch, False
        self.positions = np.arange(self.num_tokens) * stride / patch

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., 0]
        if self.pad:
            x = torch.cat([x, x[:, -1:].expand(-1, self.pad)], dim=1)
        return x.unfold(1, self.patch_size, self.stride)

    def untokenize(self, t: torch.Tensor) -> torch.Tensor:
        """(N, L, patch) -> (N, T, 1); only for non-overlapping patches that tile the series."""
        if self.stride != self.patch_size or self.pad or self.num_tokens * self.patch_size != self.length:
            raise ValueError("untokenize needs non-overlapping patches that tile the series exactly")
        return t.reshape(t.shape[0], self.length, 1)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each window on its own scale: (N, T) -> (normalised (N, T), mean (N, 1), std (N, 1))."""
    mean = x.mean(dim=1, keepdim=True)
    std = (x.var(dim=1, keepdim=True, unbiased=False) + eps).sqrt()
    return (x - mean) / std, mean, std


def moving_average(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Centred moving average, ends padded with copies of the end values: (N, T) -> (N, T)."""
    front, back = x[:, :1].expand(-1, (kernel - 1) // 2), x[:, -1:].expand(-1, kernel // 2)
    return F.avg_pool1d(torch.cat([front, x, back], dim=1).unsqueeze(1), kernel, stride=1).squeeze(1)


class DLinear(nn.Module):
    """Trend (a moving average) and remainder, one linear layer each from the lag inputs, summed:
    (N, lag) -> (N, horizon)."""

    def __init__(self, lag: int, horizon: int, kernel: int = DLINEAR_KERNEL):
        super().__init__()
        self.kernel = kernel
        self.trend, self.remainder = nn.Linear(lag, horizon), nn.Linear(lag, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trend = moving_average(x, self.kernel)
        return self.trend(trend) + self.remainder(x - trend)


class PatchForecaster(nn.Module):
    """Instance-normalised window -> patches -> ViT encoder -> flatten-linear head -> forecast on the
    window's scale: (N, lag) -> (N, horizon). The head reads the L patch features, not ``[cls]``."""

    def __init__(self, encoder: ViTEncoder, horizon: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.tokenizer.num_tokens * encoder.dim, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xn, mean, std = instance_norm(x)
        h = self.encoder(self.encoder.tokenizer.tokenize(xn.unsqueeze(-1)))  # (N, 1 + L, dim), cls first
        return self.head(h[:, 1:].flatten(1)) * std + mean  # back to the window's scale


def tokenizer(p, overlapping: bool = True) -> StridedPatches1d:
    """The forecaster's patches (every ``long_stride`` steps, end-padded) or the pretraining's (non-overlapping)."""
    if overlapping:
        return StridedPatches1d(p.long_lag, p.long_patch, p.long_stride, pad=p.long_stride)
    return StridedPatches1d(p.long_lag, p.long_patch, p.long_patch)


def preflight(p, device=None) -> None:
    """The series chapter's check before any data is loaded: the next-step mask ratios
    (:func:`maelib.series.preflight`) and the long-horizon pretraining's, on its non-overlapping patches."""
    series_preflight(p, device)
    length = tokenizer(p, overlapping=False).num_tokens
    check_split(length, visible_count(length, p.long_mask_ratio), p.long_mask_ratio,
                f"long_lag {p.long_lag} in long_patch {p.long_patch} patches", name="long_mask_ratio")


def encoder(p) -> ViTEncoder:
    return ViTEncoder(tokenizer(p), p.long_dim, p.long_depth, p.long_heads, mlp_ratio=PATCHTST_ETTH1["mlp_ratio"])


def load_pretrained(enc: ViTEncoder, mae: MaskedAutoencoder) -> None:
    """Copy every weight of the MAE's encoder into ``enc``; the fixed sin-cos positions stay ``enc``'s own
    (its patches overlap, the pretraining's did not, and both tables come from the patches' starts)."""
    state = {k: v for k, v in mae.encoder.state_dict().items() if k != "pos_embed"}
    missing, unexpected = enc.load_state_dict(state, strict=False)
    if missing != ["pos_embed"] or unexpected:
        raise ValueError(f"the MAE's encoder does not fit the forecaster's (missing {missing}, unexpected {unexpected})")


def pretrain(train_series: np.ndarray, p, device, seed: int) -> tuple[MaskedAutoencoder, pd.DataFrame]:
    """MAE pretraining on every input window of the training months (1-D scaled series), each
    instance-normalised; non-overlapping patches, ``p.long_mask_ratio`` of them hidden. Returns (mae, history)."""
    x = torch.from_numpy(windows(train_series, p.long_lag, 0)[0]).float()
    torch.manual_seed(seed)
    mae = MaskedAutoencoder(tokenizer(p, overlapping=False), p.long_dim, p.long_depth, p.long_heads,
                            decoder_dim=p.long_dim, decoder_depth=1, decoder_heads=p.long_heads,
                            mlp_ratio=PATCHTST_ETTH1["mlp_ratio"])
    loader = TensorLoader((instance_norm(x)[0].unsqueeze(-1),), p.long_batch_size, shuffle=True, seed=seed,
                          drop_last=True, device=device)
    cfg = TrainConfig(epochs=p.long_pretrain_epochs, lr=p.long_pretrain_lr, weight_decay=0.05, warmup_epochs=1,
                      betas=(0.9, 0.95), seed=seed, desc="long-horizon MAE pretraining", precision=p.precision)
    history = fit(mae, lambda m, b: m(b[0], p.long_mask_ratio)[0], loader, cfg, device,
                  groups=param_groups(mae, 0.05), progress=False)
    return mae, history


def train_dlinear(data: dict, device, seed: int) -> tuple[DLinear, pd.DataFrame]:
    """DLinear trained with :func:`dlinear_recipe`, keeping its best validation epoch. Returns (model, history)."""
    horizon = data["train"][1].shape[1]
    recipe = dlinear_recipe(horizon)
    torch.manual_seed(seed)
    model = DLinear(data["train"][0].shape[1], horizon).to(device)
    loader = TensorLoader(tuple(torch.from_numpy(a) for a in data["train"]), recipe["batch_size"], shuffle=True,
                          seed=seed, drop_last=True, device=device)
    xv, yv = (torch.from_numpy(a).to(device) for a in data["val"])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    best, state, rows, stale = float("inf"), None, [], 0
    for epoch in range(recipe["epochs"]):
        for g in opt.param_groups:
            g["lr"] = recipe["lr"] * 0.5 ** max(0, epoch - 1)
        loader.set_epoch(epoch)
        model.train()
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            F.mse_loss(model(xb), yb).backward()
            opt.step()
        rows.append({"epoch": epoch + 1, "val_mse": F.mse_loss(predict_tensor(model, xv), yv).item()})
        if rows[-1]["val_mse"] < best:
            best, state, stale = rows[-1]["val_mse"], copy.deepcopy(model.state_dict()), 0
        elif (stale := stale + 1) >= recipe["patience"]:
            break
    model.load_state_dict(state)
    return model, pd.DataFrame(rows)


def train_arm(arm: str, data: dict, p, mae: MaskedAutoencoder | None, device, seed: int,
              lr: float) -> tuple[PatchForecaster, pd.DataFrame]:
    """One patch-transformer arm at ``lr``: the same network and head initialisation under ``seed``; the
    pretrained arm's encoder then takes the MAE's weights. Returns (model, history with val_mse per epoch)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    torch.manual_seed(seed)
    model = PatchForecaster(encoder(p), data["train"][1].shape[1])
    if arm == PRETRAINED:
        load_pretrained(model.encoder, mae)
    history = fit_best(model, data, epochs=p.long_epochs, batch_size=p.long_batch_size, lr=lr, device=device,
                       desc=f"{arm} lr={lr:g}", seed=seed, precision=p.precision)
    return model, history


def choose_lr(arm: str, data: dict, p, mae, device, seed: int):
    """The value of ``p.long_lr_grid`` (grown past an end where the best lies) whose training reaches the
    lowest validation MSE. Returns (lr, {lr: best validation MSE}, model, history); the model is the one
    trained at the chosen rate (the test part plays no part in the choice)."""
    trained = {}

    def score(lr: float) -> float:
        trained[lr] = train_arm(arm, data, p, mae, device, seed, lr)
        return float(trained[lr][1]["val_mse"].min())

    lr, grid = grid_search(p.long_lr_grid, score, higher_is_better=False, extend=GRID_EXTENSIONS)
    return lr, grid, *trained[lr]


def predict(model: nn.Module, x: np.ndarray, device, batch_size: int = 4096) -> np.ndarray:
    """Forecasts of every window, the last incomplete batch included: (M, lag) -> (M, horizon)."""
    out = predict_tensor(model, torch.from_numpy(x).to(device), batch_size).cpu().numpy()
    if len(out) != len(x):
        raise RuntimeError(f"{len(x)} windows in, {len(out)} forecasts out: every window must be scored")
    return out


def errors(pred: np.ndarray, true: np.ndarray) -> dict:
    """MSE and MAE over every window and step, on the training months' standard scale."""
    if pred.shape != true.shape:
        raise ValueError(f"forecasts {pred.shape} and truth {true.shape} differ in shape")
    return {"mse": mse_metric(pred, true), "mae": mae_metric(pred, true)}


def kept_by_drop_last(n: int, batch_size: int) -> int:
    """How many of ``n`` test windows a loader with ``drop_last`` and no shuffling scores (the first ones)."""
    return n // batch_size * batch_size


def horizon_run(data: dict, p, mae: MaskedAutoencoder, device, seed: int, lrs: dict | None = None) -> dict:
    """Every model at one horizon for one seed, on the same windows.

    ``lrs`` (arm -> learning rate) reuses a choice; without it each arm chooses on the validation part.
    Returns {"pred": {model: (M, H)}, "history": {model: frame}, "lr": {arm: lr}, "grid": {arm: {lr: val MSE}}}.
    """
    xt = data["test"][0]
    dlinear, dl_hist = train_dlinear(data, device, seed)
    out = {"pred": {"persistence": persistence(xt, data["test"][1].shape[1]), "DLinear": predict(dlinear, xt, device)},
           "history": {"DLinear": dl_hist}, "lr": {}, "grid": {}}
    for arm in ARMS:
        if lrs and arm in lrs:
            out["lr"][arm], out["grid"][arm] = lrs[arm], {}
            model, out["history"][arm] = train_arm(arm, data, p, mae, device, seed, lrs[arm])
        else:
            out["lr"][arm], out["grid"][arm], model, out["history"][arm] = choose_lr(arm, data, p, mae, device, seed)
        out["pred"][arm] = predict(model, xt, device)
    return out


def score_rows(run: dict, data: dict, horizon: int, seed: int) -> list[dict]:
    """One row per model: seed, horizon, model, test MSE and MAE over every window, the MSE over the windows a
    ``drop_last`` loader with the reference script's batch size would keep, and the best validation MSE; the
    two patch-transformer arms' rows also hold each test window's squared error (``items``)."""
    y = data["test"][1]
    rows = []
    for model, pred in run["pred"].items():
        kept = kept_by_drop_last(len(y), REFERENCE_BATCH[model])
        hist = run["history"].get(model)
        rows.append({"seed": seed, "horizon": horizon, "model": model, **errors(pred, y),
                     "mse_drop_last": mse_metric(pred[:kept], y[:kept]), "n_test": len(y), "n_kept": kept,
                     "val_mse": float(hist["val_mse"].min()) if hist is not None else float("nan"),
                     **({"items": squared_errors(pred, y)} if model in ARMS else {})})
    return rows


def held_out_windows(series: np.ndarray, p, most: int = 1024) -> torch.Tensor:
    """Up to ``most`` input windows of a 1-D scaled series, instance-normalised, as pretraining sees them:
    (M, long_lag, 1)."""
    x = torch.from_numpy(windows(series, p.long_lag, 0)[0][:most]).float()
    return instance_norm(x)[0].unsqueeze(-1)


def seed_runs(long_data: dict, p, device, lrs: dict | None = None, grids: dict | None = None):
    """Every long-horizon model for seeds ``p.seed`` ... ``p.seed + p.seeds - 1``: per seed, one MAE
    pretrained on the first horizon's training windows, then each horizon of ``long_data`` (H -> its
    :func:`maelib.data.ett.load_months` data) run by :func:`horizon_run`. Each arm's rate at each horizon
    (key ``"H<h> <arm>"``) comes from ``lrs`` (with its recorded ``grids``), else the first seed chooses it
    and the later ones reuse it.

    Returns:
        (score rows of every seed, horizon and model; {H: the first seed's histories}; rates; grids).
    """
    lrs, grids = dict(lrs or {}), dict(grids or {})
    rows, hists = [], {}
    first = next(iter(long_data))
    for s in range(p.seed, p.seed + p.seeds):
        mae, pre_hist = pretrain(long_data[first]["scaled"]["train"], p, device, s)
        held = held_out_windows(long_data[first]["scaled"]["val"], p).to(device)
        flat = versus_flat(mae, held, p.long_mask_ratio)["ratio"]  # did the MAE learn (maelib.mae.LEARNED)?
        for h, d in long_data.items():
            keys = {arm: f"H{h} {arm}" for arm in ARMS}
            run = horizon_run(d, p, mae, device, s, lrs={a: lrs[k] for a, k in keys.items() if k in lrs})
            for arm, k in keys.items():
                lrs.setdefault(k, run["lr"][arm])
                if run["grid"][arm]:
                    grids[k] = run["grid"][arm]
            rows += [{**row, "mae_vs_flat": flat} for row in score_rows(run, d, h, s)]
            hists.setdefault(h, {"MAE pretraining": pre_hist, **run["history"]})
    return rows, hists, lrs, grids


def paired_by_horizon(scores: pd.DataFrame) -> dict:
    """For each horizon of ``scores`` (:func:`score_rows` rows, with ``mae_vs_flat``): the per-seed test
    MSEs of the pretrained arm, the scratch arm and persistence, the arms' squared errors per window where
    the rows hold them, and the MAE's loss against the flat predictor's (a :class:`~maelib.report.SeedValues`),
    and their paired comparison (:func:`maelib.stats.paired`, lower is better). Returns {H: (values,
    comparison)}."""
    out = {}
    for h, part in scores.groupby("horizon", sort=False):
        mse = part.pivot(index="seed", columns="model", values="mse")
        extra = {}
        if "items" in part and "mae_vs_flat" in part:
            items = part.dropna(subset=["items"]).pivot(index="seed", columns="model", values="items")
            flat = part.groupby("seed")["mae_vs_flat"].first()
            extra = dict(mae_items=list(items.loc[mse.index, PRETRAINED]),
                         baseline_items=list(items.loc[mse.index, SCRATCH]), mae_vs_flat=list(flat.loc[mse.index]))
        values = SeedValues([int(v) for v in mse.index], list(mse[PRETRAINED]), list(mse[SCRATCH]),
                            floor=list(mse["persistence"]), **extra)
        out[int(h)] = (values, stats.paired(values.mae, values.baseline, higher_is_better=False))
    return out
