"""Chapter 5 recipes: imputing hidden cells of California housing.

- The paper's baseline: a two-layer feed-forward net from the zero-filled row and its mask to the full
  row, trained against the true full training rows (it sees the true values of the cells hidden in the
  training rows: the simulation allows it, a real data set would not).
- The same net trained fairly: it hides a further ``mask_ratio`` of the *observed* cells and is scored
  on them, so it never needs a value that is missing.
- The MAE: one token per column; the encoder sees only the observed cells; training re-masks observed
  cells the same way and scores on them.
- scikit-learn's mean, KNN and iterative imputers as reference rows.

All metrics count the hidden cells of the test rows only.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import nn

from .data import TensorLoader
from .data.housing import ONE_HOT, hide
from .mae import MaskedAutoencoder
from .masking import masking_from_visible
from .tokens import Columns
from .train import GRID_EXTENSIONS, TrainConfig, fit, grid_search, param_groups


class FeedForwardImputer(nn.Module):
    """[zero-filled row, observed mask] (N, 2F) -> full row (N, F): Linear, ReLU, Linear."""

    def __init__(self, n_features: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x * observed, observed.float()], dim=-1))


def make_mae(n_features: int, p) -> MaskedAutoencoder:
    return MaskedAutoencoder(Columns(n_features), p.dim, p.depth, p.heads, decoder_dim=p.dim, decoder_depth=1)


def _remask(observed: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a further ``ratio`` of the observed cells: -> (visible, scored) bool masks."""
    extra = torch.rand(observed.shape, device=observed.device) < ratio
    return observed & ~extra, observed & extra


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    w = where.float()
    return (((pred.float() - target) ** 2) * w).sum() / w.sum().clamp(min=1)  # fp32 under bf16 autocast too


def step_ff_paper(m, batch):
    x_true, x_filled, obs = batch
    return ((m(x_filled, obs).float() - x_true) ** 2).mean()


def step_ff_fair(ratio: float):
    def step(m, batch):
        _, x_filled, obs = batch
        visible, scored = _remask(obs, ratio)
        return _masked_mse(m(x_filled, visible), x_filled, scored)
    return step


def step_mae(ratio: float):
    def step(m, batch):
        _, x_filled, obs = batch
        visible, scored = _remask(obs, ratio)
        masking = masking_from_visible(visible, width=visible.shape[1])  # fixed shapes: no host wait
        tokens = m.tokenizer.tokenize(x_filled)
        pred = m.forward_decoder(m.forward_encoder(tokens, masking), masking)
        return m.loss(tokens, pred, scored.float())
    return step


def train_imputer(model: nn.Module, step, x_true, x_filled, observed, p, device, seed: int, desc: str, lr: float):
    """Train an imputer at learning rate ``lr``; the history holds the training loss per epoch (the
    paper's Figure 9)."""
    tensors = (torch.from_numpy(x_true), torch.from_numpy(x_filled), torch.from_numpy(observed))
    loader = TensorLoader(tensors, p.batch_size, shuffle=True, seed=seed, drop_last=True, device=device)
    cfg = TrainConfig(epochs=p.epochs, lr=lr, weight_decay=1e-4, warmup_epochs=min(1, p.epochs - 1), seed=seed,
                      desc=desc, precision=p.precision)
    groups = param_groups(model, cfg.weight_decay)
    return fit(model, step, loader, cfg, device, groups=groups, progress=False)


@torch.no_grad()
def impute(model: nn.Module, x_filled: np.ndarray, observed: np.ndarray, device) -> np.ndarray:
    """Fill the hidden cells with the model's predictions; observed cells are kept as they are."""
    model.eval()
    x = torch.from_numpy(x_filled).to(device)
    obs = torch.from_numpy(observed).to(device)
    if isinstance(model, MaskedAutoencoder):
        masking = masking_from_visible(obs)
        pred = model.forward_decoder(model.forward_encoder(model.tokenizer.tokenize(x), masking), masking)
        pred = model.tokenizer.untokenize(pred)
    else:
        pred = model(x, obs)
    return np.where(observed, x_filled, pred.float().cpu().numpy())


def sklearn_imputers(seed: int) -> dict:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    return {"mean (scikit-learn)": SimpleImputer(strategy="mean"),
            "KNN, k=5 (scikit-learn)": KNNImputer(n_neighbors=5),
            "iterative (scikit-learn)": IterativeImputer(max_iter=10, random_state=seed)}


def impute_sklearn(imputer, train_filled, train_obs, test_filled, test_obs) -> np.ndarray:
    """Fit on the training rows with their hidden cells as NaN; impute the test rows."""
    imputer.fit(np.where(train_obs, train_filled, np.nan))
    out = imputer.transform(np.where(test_obs, test_filled, np.nan))
    return np.where(test_obs, test_filled, out)


def scores(imputed: np.ndarray, true: np.ndarray, observed: np.ndarray, columns: list[str]) -> dict:
    """Errors on the hidden cells of the test rows, numeric and categorical apart (on the [0, 1] scale):

    - ``mse``: MSE over every hidden cell (one-hot cells included), as the paper's single number;
    - ``mse_numeric``: the mean over numeric columns of each column's MSE, and ``mse_by_column``;
    - ``wasserstein``: the Wasserstein distance between imputed and true values of each numeric column,
      averaged over those columns;
    - ``category_error``: among rows whose true ocean_proximity cell is hidden together with at least one
      other one-hot cell (so that neither an observed 1 nor four observed 0s give the category away), the
      fraction whose largest imputed hidden one-hot cell is not the true one;
    - ``items``: per test row, [sum of squared errors over its hidden cells, how many], to 5 significant
      digits (the bootstrap over seeds and rows, :func:`maelib.stats.paired_items` with "ratio").
    """
    hidden = ~observed
    numeric = [i for i, c in enumerate(columns) if c not in ONE_HOT]
    onehot = [i for i, c in enumerate(columns) if c in ONE_HOT]
    by_column = {columns[i]: float(((imputed[:, i] - true[:, i])[hidden[:, i]] ** 2).mean())
                 for i in numeric if hidden[:, i].any()}
    w = [wasserstein_distance(imputed[hidden[:, i], i], true[hidden[:, i], i]) for i in numeric if hidden[:, i].any()]
    out = {"mse": float(((imputed - true)[hidden] ** 2).mean()),
           "mse_numeric": float(np.mean(list(by_column.values()))),
           "mse_by_column": by_column, "wasserstein": float(np.mean(w)), "category_error": float("nan"),
           "items": [[float(f"{e:.5g}"), int(n)] for e, n in zip(np.where(hidden, (imputed - true) ** 2, 0).sum(1),
                                                                  hidden.sum(1))]}
    if len(onehot) > 1:
        block_true, block_hidden = true[:, onehot], hidden[:, onehot]
        cat = block_true.argmax(1)
        rows = block_hidden[np.arange(len(cat)), cat] & (block_hidden.sum(1) >= 2)  # a real choice to make
        guess = np.where(block_hidden, imputed[:, onehot], -np.inf).argmax(1)
        out["category_error"] = float((guess[rows] != cat[rows]).mean()) if rows.any() else float("nan")
    return out


def preflight(p, device=None) -> None:
    """Refuse seeds that scikit-learn's imputers cannot take (numpy's legacy RandomState), before any run."""
    from sklearn.utils import check_random_state

    last = p.seed + p.seeds - 1
    try:
        check_random_state(last)
    except ValueError as e:
        raise ValueError(f"seed: the seeds {p.seed} to {last} must lie in [0, 2**32 - 1], the seeds scikit-learn's "
                         f"imputers take ({e})") from None


FAILED_MSE = 1.0  # values lie in [0, 1]: an imputer whose MSE exceeds this has failed numerically


def failed(mse: float) -> bool:
    """Whether an imputer's MSE on the [0, 1] scale says it failed numerically (not finite, or beyond 1)."""
    return not np.isfinite(mse) or mse > FAILED_MSE


def results_table(main, metrics: dict[str, str]):
    """Per imputer, each metric's "mean ± std" over seeds (``metrics``: column -> label; category_error in
    %); an imputer that failed numerically in a seed reads "failed numerically (MSE ...)" instead.
    ``main``: one row per imputer and seed, as :func:`run_all` scores them."""
    import pandas as pd

    from .viz import sig

    rows = {}
    for model, g in main.groupby("model", sort=False):
        if g["mse"].map(failed).any():
            rows[model] = [f"failed numerically (MSE {sig(g['mse'].max())})"] * len(metrics)
            continue
        scale = {k: 100 if k == "category_error" else 1 for k in metrics}
        stats = {k: (g[k].mean() * scale[k], g[k].std() * scale[k]) for k in metrics}
        rows[model] = [sig(m) if np.isnan(s) else f"{sig(m)} ± {sig(s, 2)}" for m, s in stats.values()]
    return pd.DataFrame(rows, index=list(metrics.values())).T.rename_axis("imputer")


def networks(n_features: int, p) -> dict:
    """The three learned imputers: name -> (build, step)."""
    return {"feed-forward (paper: full-row targets)": (lambda: FeedForwardImputer(n_features, p.hidden), step_ff_paper),
            "feed-forward (re-masked observed cells)": (lambda: FeedForwardImputer(n_features, p.hidden),
                                                        step_ff_fair(p.mask_ratio)),
            "MAE (re-masked observed cells)": (lambda: make_mae(n_features, p), step_mae(p.mask_ratio))}


HELD_OUT = 0.1  # the fraction of the training rows a learning rate is chosen on


def choose_lr(name: str, data: dict, p, device, seed: int, missing_rate: float) -> tuple[float, dict]:
    """(chosen rate, {rate: held-out MSE}) for one network: each rate of ``p.lr_grid`` (grown past an end
    where the best lay) trains on 90% of the training rows and imputes the hidden cells of the other 10%;
    the lowest MSE over every hidden cell wins. The test rows are never seen."""
    train = data["train"]
    order = np.random.default_rng(seed).permutation(len(train))
    held, fit_rows = train[order[: int(HELD_OUT * len(train))]], train[order[int(HELD_OUT * len(train)):]]
    fit_filled, fit_obs = hide(fit_rows, missing_rate, seed)
    held_filled, held_obs = hide(held, missing_rate, seed + 20_000)
    build, step = networks(train.shape[1], p)[name]

    def score(lr: float) -> float:
        torch.manual_seed(seed)
        model = build()
        train_imputer(model, step, fit_rows, fit_filled, fit_obs, p, device, seed, f"{name}, lr {lr:g}", lr)
        mse = scores(impute(model, held_filled, held_obs, device), held, held_obs, data["columns"])["mse"]
        if failed(mse):  # diverged without a non-finite loss: never chosen (grid_search)
            raise FloatingPointError(f"held-out MSE {mse:g}")
        return mse

    return grid_search(p.lr_grid, score, higher_is_better=False, extend=GRID_EXTENSIONS)


def run_all(data: dict, p, device, seed: int, missing_rate: float, lrs: dict | None = None):
    """Every imputer for one seed and one missing rate, each network at its rate in ``lrs`` (name ->
    rate), else at ``p.lr``, else at the rate :func:`choose_lr` picks.

    Returns:
        (scores by model, histories by model, rates by network, {network: {rate: held-out MSE}} of the
        choices made here).
    """
    train, test = data["train"], data["test"]
    tr_filled, tr_obs = hide(train, missing_rate, seed)
    te_filled, te_obs = hide(test, missing_rate, seed + 10_000)
    out, hists, chosen, grids = {}, {}, {}, {}
    for name, imputer in sklearn_imputers(seed).items():
        out[name] = impute_sklearn(imputer, tr_filled, tr_obs, te_filled, te_obs)
    for name, (build, step) in networks(train.shape[1], p).items():
        chosen[name] = (lrs or {}).get(name) or p.lr
        if chosen[name] is None:
            chosen[name], grids[name] = choose_lr(name, data, p, device, seed, missing_rate)
        torch.manual_seed(seed)
        model = build()
        hists[name] = train_imputer(model, step, train, tr_filled, tr_obs, p, device, seed, name, chosen[name])
        out[name] = impute(model, te_filled, te_obs, device)
    return {k: scores(v, test, te_obs, data["columns"]) for k, v in out.items()}, hists, chosen, grids



def seed_runs(data: dict, p, device, rates, lrs: dict) -> tuple[list[dict], dict, int]:
    """:func:`run_all` for every missing rate of ``rates`` (``p.missing_rate`` first) and seed ``p.seed`` ...
    ``p.seed + p.seeds - 1``, each network at its rate in ``lrs``.

    Returns:
        (one score row per rate, seed and imputer; the histories of the first seed at ``p.missing_rate``;
        how many runs' iterative imputer stopped before converging, which the page says instead of warning).
    """
    from sklearn.exceptions import ConvergenceWarning

    rows, first, unconverged = [], None, 0
    for rate in [p.missing_rate] + [r for r in rates if r != p.missing_rate]:
        for s in range(p.seed, p.seed + p.seeds):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                res, hists, _, _ = run_all(data, p, device, s, rate, lrs)
            unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            rows += [{"missing_rate": rate, "seed": s, "model": m, **v} for m, v in res.items()]
            first = first or hists
    return rows, first, unconverged
