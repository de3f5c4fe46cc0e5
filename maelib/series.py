"""Chapter 2 recipes: next-step forecasting of ETTh1's oil temperature.

Floors: persistence (next = last) and a linear autoregression fit by least squares. Recurrent nets:
RNN, LSTM, GRU. Transformers: the paper's rows (one token per time step, trained to forecast while a
fraction of the input tokens is hidden from the encoder, 0 = "without masking"), and the MAE recipe
(patch tokens, masked-reconstruction pretraining on the training split, then a forecasting head
fine-tuned) against the same network trained from scratch.

The paper's Table 2 arms are plain transformers that output the forecast itself, as the paper built them.
Every other neural forecaster, and a second copy of the paper's transformers, predicts the change from the
window's last value (:class:`FromLast`), so each starts at persistence and learns what it can add: the
paper's comparison is judged on the plain arms, the residual ones are a second, fairer comparison.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import TensorLoader
from .heads import encoder_like
from .mae import MaskedAutoencoder, ViTEncoder
from .masking import check_split, random_masking, visible_count
from .metrics import mae as mae_metric
from .metrics import mse as mse_metric
from .report import SeedValues
from .tokens import Patches1d
from .train import GRID_EXTENSIONS, TrainConfig, fit, grid_search, param_groups


def preflight(p, device=None) -> None:
    """Refuse mask ratios that hide none of a window's tokens, or show none, before any data is loaded."""
    length = p.lag // p.patch_size
    for r in sorted(set(p.mask_ratios) | {p.mask_ratio}):
        check_split(length, visible_count(length, r), r, f"lag {p.lag} in patch_size {p.patch_size} patches",
                    name="mask_ratio" if r == p.mask_ratio else "mask_ratios")


def persistence(x: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value repeated: (M, lag) -> (M, horizon)."""
    return np.repeat(np.asarray(x)[:, -1:], horizon, axis=1)


class LinearAR:
    """Least-squares linear autoregression with an intercept: (M, lag) -> (M, horizon)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearAR":
        a = np.hstack([x, np.ones((len(x), 1))])
        self.coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1))]) @ self.coef


class RecurrentForecaster(nn.Module):
    """RNN, LSTM or GRU over the window, last hidden state -> linear: (N, lag) -> (N, horizon)."""

    def __init__(self, kind: str, horizon: int, hidden: int = 64, layers: int = 1):
        super().__init__()
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        if kind not in cell:
            raise ValueError(f"kind must be one of {sorted(cell)}, got {kind!r}")
        self.rnn = cell[kind](1, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1])


class TransformerForecaster(nn.Module):
    """A ViT encoder over 1D patches of the window, [cls] and mean token -> linear: (N, lag) -> (N, horizon).

    With ``mask_ratio > 0`` the encoder sees only a random ``1 - mask_ratio`` of the tokens during
    training (the paper's "MAE" rows); evaluation always sees every token.
    """

    def __init__(self, encoder: ViTEncoder, horizon: int, mask_ratio: float = 0.0):
        super().__init__()
        self.encoder, self.mask_ratio = encoder, mask_ratio
        self.norm = nn.LayerNorm(2 * encoder.dim)
        self.head = nn.Linear(2 * encoder.dim, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder.tokenizer.tokenize(x.unsqueeze(-1))
        keep = None
        if self.training and self.mask_ratio > 0:
            keep = random_masking(len(x), tokens.shape[1], self.mask_ratio, x.device).keep
        h = self.encoder(tokens, keep=keep)
        return self.head(self.norm(torch.cat([h[:, 0], h[:, 1:].mean(1)], dim=-1)))


class FromLast(nn.Module):
    """A forecaster of the change from the window's last value: (N, lag) -> last + net(x), (N, horizon).
    The net's last linear layer starts at zero, so an untrained forecaster is persistence."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        nn.init.zeros_(net.head.weight)
        nn.init.zeros_(net.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:] + self.net(x)


def make_encoder(p, patch_size: int) -> ViTEncoder:
    return ViTEncoder(Patches1d(p.lag, patch_size), p.dim, p.depth, p.heads)


def train_forecaster(model: nn.Module, data: dict, p, device, desc: str, seed: int, lr: float | None = None):
    """:func:`fit_best` with the chapter's epochs, batch size and (unless given) learning rate."""
    return fit_best(model, data, epochs=p.epochs, batch_size=p.batch_size, lr=lr or p.lr, device=device, desc=desc,
                    seed=seed, precision=p.precision)


def fit_best(model: nn.Module, data: dict, *, epochs: int, batch_size: int, lr: float, device, desc: str,
             seed: int, precision: str = "fp32"):
    """MSE training on the scaled windows ``data["train"]`` (X (M, lag), Y (M, horizon)); keeps the weights
    of the epoch with the lowest MSE on ``data["val"]`` (every window). Returns the history (val_mse per epoch)."""
    loader = TensorLoader(tuple(torch.from_numpy(a) for a in data["train"]), batch_size, shuffle=True,
                          seed=seed, drop_last=True, device=device)
    xv, yv = (torch.from_numpy(a).to(device) for a in data["val"])
    best = {"mse": float("inf"), "state": None}

    def evaluate(m):
        val = F.mse_loss(predict_tensor(m, xv), yv).item()
        if val < best["mse"]:
            best.update(mse=val, state=copy.deepcopy(m.state_dict()))
        return {"val_mse": val}

    cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=1e-4, warmup_epochs=min(1, epochs - 1),
                      seed=seed, desc=desc, grad_clip=1.0, precision=precision)
    step = lambda m, b: F.mse_loss(m(b[0]), b[1])  # noqa: E731
    history = fit(model, step, loader, cfg, device, evaluate=evaluate, progress=False)
    model.load_state_dict(best["state"])
    return history


def predict_tensor(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def predict(model, x: np.ndarray, device) -> np.ndarray:
    if isinstance(model, nn.Module):
        return predict_tensor(model, torch.from_numpy(x).to(device)).cpu().numpy()
    return model.predict(x)


def pretrain_mae(data: dict, p, device, seed: int):
    """Masked-reconstruction pretraining on the training windows (1D patches). Returns (mae, history)."""
    torch.manual_seed(seed)
    mae = MaskedAutoencoder(Patches1d(p.lag, p.patch_size), p.dim, p.depth, p.heads, decoder_dim=p.dim,
                            decoder_depth=1)
    x = torch.from_numpy(data["train"][0]).unsqueeze(-1)
    loader = TensorLoader((x,), p.batch_size, shuffle=True, seed=seed, drop_last=True, device=device)
    cfg = TrainConfig(epochs=p.pretrain_epochs, lr=p.pretrain_lr, weight_decay=0.05, warmup_epochs=1, betas=(0.9, 0.95),
                      seed=seed, desc="series MAE pretraining", precision=p.precision)
    history = fit(mae, lambda m, b: m(b[0], p.mask_ratio)[0], loader, cfg, device,
                  groups=param_groups(mae, 0.05), progress=False)
    return mae, history


def scores(pred: np.ndarray, true: np.ndarray, scaler) -> dict:
    """MSE and MAE on the [0, 1] training scale and in degrees (the original units)."""
    return {"mse": mse_metric(pred, true), "mae": mae_metric(pred, true),
            "mse_deg": mse_metric(scaler.inverse(pred), scaler.inverse(true)),
            "mae_deg": mae_metric(scaler.inverse(pred), scaler.inverse(true))}


NO_MASKING = "transformer forecaster (no masking)"
RESIDUAL = ", from last value"  # the name's ending of a paper's transformer wrapped in FromLast


def masked_name(ratio: float, residual: bool = False) -> str:
    """A paper's transformer row's name: ``ratio`` of its input tokens hidden while training (0: none); with
    ``residual``, the copy that forecasts the change from the last value."""
    name = NO_MASKING if ratio == 0 else f"transformer forecaster, input mask {ratio:g}"
    return name + RESIDUAL * residual


def squared_errors(pred: np.ndarray, true: np.ndarray, digits: int = 5) -> list[float]:
    """Each test window's squared error, averaged over its horizon: (M, H), (M, H) -> M numbers, kept to
    ``digits`` significant digits (a record's per-item values, :func:`maelib.stats.paired_items`)."""
    per_window = ((np.asarray(pred, float) - np.asarray(true, float)) ** 2).mean(axis=1)
    return [float(f"{v:.{digits}g}") for v in per_window]


@dataclass
class Trained:
    """What one seed's models give (each dict by model name): test predictions, histories, the best
    validation MSE, and each model's learning rate with its grid ({rate: best validation MSE}; empty where
    the rate was given)."""

    preds: dict = field(default_factory=dict)
    hists: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    lr: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)


def _train_scored(build, data: dict, p, device, name: str, seed: int, out: Trained, lrs: dict | None) -> None:
    """Train ``build()`` as ``name`` at its rate in ``lrs``, else ``p.lr``, else at each rate of
    ``p.lr_grid`` (grown past an end where the best lay), keeping the one with the lowest best validation
    MSE: the validation part chooses, never the test part. Its results go into ``out``."""
    kept = {}

    def score(lr: float) -> float:
        torch.manual_seed(seed)
        model = build()
        kept[lr] = (model, train_forecaster(model, data, p, device, name, seed, lr))
        return float(kept[lr][1]["val_mse"].min())

    fixed = (lrs or {}).get(name) or p.lr
    if fixed:
        score(fixed)
        out.lr[name], out.grid[name] = fixed, {}
    else:
        out.lr[name], out.grid[name] = grid_search(p.lr_grid, score, higher_is_better=False, extend=GRID_EXTENSIONS)
    model, out.hists[name] = kept[out.lr[name]]
    out.preds[name] = predict(model, data["test"][0], device)
    out.val[name] = float(out.hists[name]["val_mse"].min())


def paper_rows(data: dict, p, device, seed: int, recurrent: bool = True, lrs: dict | None = None) -> Trained:
    """The paper's Table 2 rows for one seed: the floors, RNN/LSTM/GRU (with ``recurrent``), the
    transformer forecaster without masking and with each input mask ratio of ``p.mask_ratios``, plain (the
    paper's arms) and from the last value (:data:`RESIDUAL`), each neural model at its own learning rate
    (:func:`_train_scored`)."""
    xt = data["test"][0]
    out = Trained(preds={"persistence": persistence(xt, p.horizon),
                         "linear AR": LinearAR().fit(*data["train"]).predict(xt)})
    for kind, name in [("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")] if recurrent else []:
        _train_scored(lambda k=kind: FromLast(RecurrentForecaster(k, p.horizon, p.hidden)), data, p, device, name,
                      seed, out, lrs)
    for residual in (False, True):
        for r in [0.0] + list(p.mask_ratios):
            def build(r=r, residual=residual):
                net = TransformerForecaster(make_encoder(p, 1), p.horizon, r)
                return FromLast(net) if residual else net

            _train_scored(build, data, p, device, masked_name(r, residual), seed, out, lrs)
    return out


def mae_recipe(data: dict, p, device, seed: int, out: Trained, lrs: dict | None = None) -> None:
    """The MAE recipe for one seed: masked-reconstruction pretraining, then the patch transformer
    fine-tuned to forecast, against the same network from scratch (added to ``out``)."""
    mae, out.hists["MAE pretraining"] = pretrain_mae(data, p, device, seed)
    for name, pretrained in [("patch transformer, MAE-pretrained", True), ("patch transformer, scratch", False)]:
        def build(pre=pretrained):
            return FromLast(TransformerForecaster(encoder_like(mae, pretrained=pre), p.horizon))

        _train_scored(build, data, p, device, name, seed, out, lrs)


def best_masked(val: dict, ratios, residual: bool = False) -> str:
    """The masked forecaster (plain, or with ``residual`` from the last value) with the lowest validation
    MSE (never chosen on the test part)."""
    return min((masked_name(r, residual) for r in ratios), key=lambda m: val[m])


def run_all(data: dict, p, device, seed: int, lrs: dict | None = None) -> tuple[Trained, dict]:
    """Every model of the chapter for one seed, each neural one at its rate in ``lrs`` or chosen on the
    validation part. Returns (what they gave, test scores by model name)."""
    out = paper_rows(data, p, device, seed, lrs=lrs)
    mae_recipe(data, p, device, seed, out, lrs)
    return out, {k: scores(v, data["test"][1], data["scaler"]) for k, v in out.preds.items()}


@dataclass
class SeedRuns:
    """Every next-step model over the seeds of a run.

    Attributes:
        rows: one per seed and model: seed, model, best validation MSE and the test scores (:func:`scores`).
        preds, hists, val: per seed (in order), what :class:`Trained` holds for it.
        claim: the paper's comparison per seed: the plain masked forecaster validation chose against the
            plain one without masking, persistence as the floor, each arm's squared error per test window.
        residual: the same comparison between the forecasters from the last value (the second comparison).
        lr, grid: each model's rate and {rate: best validation MSE} (empty where the rate was given).
    """

    rows: list = field(default_factory=list)
    preds: list = field(default_factory=list)
    hists: list = field(default_factory=list)
    val: list = field(default_factory=list)
    claim: SeedValues | None = None
    residual: SeedValues | None = None
    lr: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)


def seed_runs(data: dict, p, device, lrs: dict | None = None, grids: dict | None = None) -> SeedRuns:
    """:func:`run_all` for seeds ``p.seed`` ... ``p.seed + p.seeds - 1``: at the rates ``lrs`` (with their
    recorded ``grids``) where given, else the first seed chooses each model's rate and the later ones
    reuse it. The masked forecaster of the claim is chosen per seed on the validation part, never the test."""
    out = SeedRuns(lr=dict(lrs or {}), grid=dict(grids or {}))
    claims = {residual: {"seeds": [], "mae": [], "baseline": [], "floor": [], "chosen": [], "mae_items": [],
                         "baseline_items": []} for residual in (False, True)}
    for s in range(p.seed, p.seed + p.seeds):
        trained, by_model = run_all(data, p, device, s, out.lr or None)
        out.lr, out.grid = out.lr or trained.lr, out.grid or trained.grid
        out.preds.append(trained.preds)
        out.hists.append(trained.hists)
        out.val.append(trained.val)
        out.rows += [{"seed": s, "model": m, "val_mse": trained.val.get(m, float("nan")), **v}
                     for m, v in by_model.items()]
        for residual, claim in claims.items():
            masked, plain = best_masked(trained.val, p.mask_ratios, residual), masked_name(0, residual)
            for key, value in (("seeds", s), ("mae", by_model[masked]["mse"]), ("baseline", by_model[plain]["mse"]),
                               ("floor", by_model["persistence"]["mse"]), ("chosen", masked),
                               ("mae_items", squared_errors(trained.preds[masked], data["test"][1])),
                               ("baseline_items", squared_errors(trained.preds[plain], data["test"][1]))):
                claim[key].append(value)
    out.claim, out.residual = SeedValues(**claims[False]), SeedValues(**claims[True])
    return out


def robustness_rows(data: dict, p, device, lrs: dict | None) -> list[dict]:
    """The paper's transformer rows on another file, per seed at the rates ``lrs``: the test MSE of
    persistence and, plain and from the last value, of the forecaster without masking and of the masked one
    validation chose."""
    rows = []
    for s in range(p.seed, p.seed + p.seeds):
        out = paper_rows(data, p, device, s, recurrent=False, lrs=lrs)
        mse = {m: scores(v, data["test"][1], data["scaler"])["mse"] for m, v in out.preds.items()}
        for residual in (False, True):
            masked = best_masked(out.val, p.mask_ratios, residual)
            rows.append({"seed": s, "arms": "from last value" if residual else "plain (the paper's)",
                         "persistence": mse["persistence"], "no masking": mse[masked_name(0, residual)],
                         "masked (chosen on validation)": mse[masked], "chosen": masked})
    return rows
