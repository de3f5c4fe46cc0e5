"""One training loop for every experiment.

``fit`` runs AdamW with a linear warmup and a cosine decay (per step), in the configuration's precision
(bf16 autocast or fp32, with float32 master weights, optimizer state and losses either way; the attention
path chosen for the device: :mod:`maelib.precision`), a tqdm bar
and a report of each epoch to a chapter run's terminal (:mod:`maelib.progress`), a per-epoch history (a
DataFrame, with each epoch's training time), an atomic checkpoint after every epoch and resume from it.
Each epoch reseeds torch from ``(seed, epoch)``, and loaders draw their order from the same pair, so an
interrupted run that resumes gives the same numbers as one that never stopped.

Under ``torchrun`` (torch.distributed initialised) the step runs inside DistributedDataParallel, so
gradients are averaged over processes; rank 0 alone writes checkpoints and draws the progress bar.
"""

from __future__ import annotations

import math
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from . import progress as reports
from .data import dist_rank_world
from .files import save_torch_atomic
from .precision import PRECISIONS, autocast, set_attention_path


def pick_device(device: str | None = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; anything else is passed to torch.device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    import numpy as np
    import random

    np.random.seed(seed % 2**32)
    random.seed(seed)


@dataclass(frozen=True)
class Arm:
    """One trained arm of a comparison: ``build()`` makes its fresh model (or encoder), ``layer_decay`` is its
    layer-wise learning-rate decay (1: none), ``lr`` a fixed rate (None: chosen on held-out data), and
    ``epochs`` its passes over the training data."""

    build: Callable[[], nn.Module]
    layer_decay: float
    lr: float | None
    epochs: int


def step_flops(model: nn.Module, step: Callable[[nn.Module, object], torch.Tensor], batch) -> float:
    """Forward and backward FLOPs of one training step of ``model`` on ``batch`` (``step(model, batch)`` is
    the loss), counted by torch's ``FlopCounterMode`` (matrix products, convolutions, attention); the
    gradients it makes are dropped and nothing is updated."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        step(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def matched_epochs(pretrain_epochs: int, epochs: int, flops: dict[str, float]) -> int:
    """The supervised epochs whose FLOPs come nearest the MAE arm's pretraining and fine-tuning together
    (``flops``: FLOPs per sample of a "pretraining" and a "supervised" step; both take the same steps per
    pass), never fewer than ``epochs``."""
    total = pretrain_epochs * flops["pretraining"] + epochs * flops["supervised"]
    return max(epochs, round(total / flops["supervised"]))


def budget(arms: dict[str, Arm], steps_per_pass: int, pretrained: dict[str, int], flops: dict[str, float],
           samples_per_pass: int) -> pd.DataFrame:
    """Each arm's training budget, one row per arm: passes over the training data in MAE pretraining
    (``pretrained``: arm -> the pretraining passes its encoder had; 0 where absent) and in supervised
    training, the optimizer steps they take (``steps_per_pass`` each), and their forward and backward FLOPs
    (``flops``: per sample of a "pretraining" and a "supervised" step; ``samples_per_pass`` samples a pass),
    with each arm's FLOPs as a multiple of the first arm's (the MAE arm's)."""
    rows = []
    for name, a in arms.items():
        pre = pretrained.get(name, 0)
        rows.append({"arm": name, "pretraining passes": pre, "supervised passes": a.epochs,
                     "optimizer steps": steps_per_pass * (pre + a.epochs), "training FLOPs":
                     samples_per_pass * (pre * flops["pretraining"] + a.epochs * flops["supervised"])})
    frame = pd.DataFrame(rows).set_index("arm")
    frame["FLOPs / MAE arm's"] = frame["training FLOPs"] / frame["training FLOPs"].iloc[0]
    return frame


@dataclass
class TrainConfig:
    """What ``fit`` needs to know. ``lr`` is the peak learning rate after warmup."""

    epochs: int
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    min_lr: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    checkpoint: str | None = None
    desc: str = "train"
    compile: bool | str = False  # torch.compile the step on CUDA; a string is the compile mode
    precision: str = "fp32"  # "bf16": forward and backward in bf16 autocast (maelib.precision)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


def lr_at(step: float, total: int, warmup: float, lr: float, min_lr: float) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then half-cosine down to ``min_lr`` at ``total``.

    Args:
        step: the optimizer step (fractional steps are allowed).
        total, warmup: the schedule's length and its warmup, in steps.
        lr, min_lr: the peak and the final learning rate.
    """
    if step < warmup:
        return lr * step / max(warmup, 1e-8)
    progress = (step - warmup) / max(total - warmup, 1)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def no_decay_names(model: nn.Module) -> set[str]:
    """The full names of the parameters that ``model``'s modules exempt from weight decay, each through
    its own ``no_weight_decay()`` (as timm's models do)."""
    names = set()
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            names |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    return names


def param_groups(model: nn.Module, weight_decay: float, layer_of: Callable[[str], int] | None = None,
                 n_layers: int = 0, layer_decay: float = 1.0) -> list[dict]:
    """AdamW parameter groups, with optional layer-wise lr decay (the BEiT/MAE fine-tuning recipe).

    Biases and norms (1-d) are not decayed, nor what the model's modules name in their ``no_weight_decay()``
    (tokens, positions); frozen parameters are left out.

    Args:
        model: the model whose trainable parameters are grouped.
        weight_decay: the decay of the decayed groups.
        layer_of: parameter name -> layer id in 0..n_layers; None puts every parameter at ``n_layers``.
        n_layers, layer_decay: a parameter of layer ``id`` has its lr scaled by ``layer_decay ** (n_layers - id)``.

    Returns:
        One group per (layer, decayed or not): ``params``, ``weight_decay`` and ``lr_scale``, which :func:`fit`
        multiplies into the scheduled lr.
    """
    exempt = no_decay_names(model)
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or name in exempt
        layer = layer_of(name) if layer_of else n_layers
        key = (layer, no_decay)
        g = groups.setdefault(key, {"params": [], "weight_decay": 0.0 if no_decay else weight_decay,
                                    "lr_scale": layer_decay ** (n_layers - layer)})
        g["params"].append(p)
    return list(groups.values())


GRID_EXTENSIONS = 2  # how far a learning-rate grid may grow past an end where its best value lay


def grid_search(values, score: Callable[[float], float], higher_is_better: bool = True,
                extend: int = 0) -> tuple[float, dict]:
    """The value with the best ``score(value)``: a hyperparameter chosen on held-out data.

    While the best value lies at one of the grid's ends, the grid grows past that end by the ratio of its two
    outermost values there (not when another value scores the same), so that where the grid happened to stop
    does not decide.

    Args:
        values: a grid of positive values.
        score: trains and evaluates at one value; a training that diverges (``FloatingPointError``) scores
            None, and that value is never chosen.
        higher_is_better: whether the best score is the highest or the lowest.
        extend: the most times the grid may grow.

    Returns:
        (the best value, {value: score} for every value tried, in ascending order of value).
    """
    if extend < 0:
        raise ValueError(f"extend must be >= 0, got {extend}")
    scores = {}

    def trial(v: float) -> None:
        try:
            scores[v] = score(v)
        except FloatingPointError as e:
            warnings.warn(f"training diverged at {v:g} ({e}); that value is not chosen")
            scores[v] = None

    def best() -> float:
        finite = {v: s for v, s in scores.items() if s is not None}
        if not finite:
            raise FloatingPointError(f"training diverged at every value of the grid {sorted(scores)}")
        return (max if higher_is_better else min)(finite, key=finite.get)

    for v in sorted(values):
        trial(v)
    for _ in range(extend if len(scores) >= 2 else 0):
        grid, top = sorted(scores), best()
        tied = sum(scores[v] == scores[top] for v in grid) > 1
        if tied or top not in (grid[0], grid[-1]):  # an inner best, or a flat score: nothing to learn past an end
            break
        a, b = (grid[-1], grid[-2]) if top == grid[-1] else (grid[0], grid[1])
        trial(float(f"{a * a / b:.6g}"))
    return best(), dict(sorted(scores.items()))


class _Step(nn.Module):
    """``step(model, batch)`` as a module, so that DistributedDataParallel sees every parameter use in
    its forward, whatever model methods the step calls."""

    def __init__(self, model: nn.Module, step):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, batch):
        return self.step(self.model, batch)


def _distributed() -> bool:
    return dist_rank_world()[1] > 1


def _mean_over_ranks(value: float, device) -> float:
    if not _distributed():
        return value
    import torch.distributed as dist

    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).item()


def checkpoint_file(ckpt_dir: str | Path | None, name: str) -> str | None:
    """``<ckpt_dir>/<name>.pt`` (spaces as underscores) for ``TrainConfig.checkpoint``; None without a folder."""
    return str(Path(ckpt_dir) / f"{name.replace(' ', '_')}.pt") if ckpt_dir else None


def _epoch_batches(loader, epoch: int):
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    return loader


def load_checkpoint(path: str | Path) -> dict | None:
    """A checkpoint's contents (tensors and plain data only: ``weights_only``), or None when the file is
    unreadable (cut short by a kill, say): then it is set aside as ``<name>.unreadable`` with a warning
    naming it, so that the run starts over instead of failing on it again and again."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # the optimizer moves its state itself
    except RuntimeError as e:
        if "zip archive" not in str(e) and "PytorchStreamReader" not in str(e):
            raise  # not a damaged file (out of memory, say): nothing is set aside
        return _set_aside(path, e)
    except (EOFError, ValueError, pickle.UnpicklingError) as e:
        return _set_aside(path, e)


def _set_aside(path: Path, e: Exception) -> None:
    """Rename an unreadable checkpoint ``<name>.unreadable`` with a warning naming it; returns None."""
    aside = path.with_name(path.name + ".unreadable")
    os.replace(path, aside)
    warnings.warn(f"checkpoint {path} is unreadable ({str(e).splitlines()[0][:120]}); set aside as {aside.name}, "
                  "training starts over", stacklevel=3)


def _resume(ckpt: Path | None, fingerprint: dict, model: nn.Module, opt, device) -> tuple[list[dict], int]:
    """(history, next epoch) from ``ckpt`` if it was written under the same fingerprint, else ([], 0)."""
    if ckpt is None or not ckpt.exists():
        return [], 0
    state = load_checkpoint(ckpt)
    if state is None or state.get("fingerprint") != fingerprint:
        return [], 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return state["history"], state["epoch"] + 1


def _train_epoch(runner, model: nn.Module, opt, batches: Iterable, schedule: Callable[[int], float], first_step: int,
                 compiled: bool, grad_clip: float, device, precision: str) -> tuple[float, float, float]:
    """One pass over ``batches``, the i-th step at learning rate ``schedule(first_step + i)`` times each
    group's ``lr_scale``; returns (mean loss, last learning rate, seconds). The losses are summed on the
    device and read once, after the last step: no host sync per step."""
    total_loss, count, lr = torch.zeros((), device=device), 0, schedule(first_step)
    started = time.perf_counter()
    for i, batch in enumerate(batches):
        lr = schedule(first_step + i)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        if compiled:
            torch.compiler.cudagraph_mark_step_begin()  # a new step for CUDA graphs' buffers
        with autocast(device, precision):
            loss = runner(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        total_loss += loss.detach().float()
        count += 1
    return total_loss.item() / max(count, 1), lr, time.perf_counter() - started


def fit(model: nn.Module, step: Callable[[nn.Module, object], torch.Tensor], loader: Iterable, cfg: TrainConfig,
        device: torch.device | str = "cpu", groups: list[dict] | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None, progress: bool = True) -> pd.DataFrame:
    """Train ``model`` with ``loss = step(model, batch)`` for ``cfg.epochs`` epochs; return the history.

    With ``cfg.checkpoint`` set, the state is saved after every epoch and a later call with the same config
    resumes after the last finished epoch.

    Args:
        model: moved to ``device`` and trained in place.
        step: (model, batch) -> the scalar loss of one batch.
        loader: the batches; one with ``set_epoch`` is told each epoch's number.
        cfg: epochs, learning rate and schedule, precision, checkpoint.
        device: a device or its name ("auto": CUDA when present).
        groups: AdamW parameter groups (:func:`param_groups`); None: :func:`param_groups` with ``cfg``'s decay.
        evaluate: model -> {name: value}, run after every epoch; its values join the history.
        progress: show a progress bar.

    Returns:
        One row per epoch: ``epoch``, ``loss`` (mean training loss), ``lr``, ``epoch_s`` (seconds of training,
        evaluation excluded) and the columns of ``evaluate``.
    """
    device = pick_device(device) if isinstance(device, str) else device
    set_attention_path(model.to(device), device)
    groups = groups if groups is not None else param_groups(model, cfg.weight_decay)
    for g in groups:
        g.setdefault("lr_scale", 1.0)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                            fused=device.type == "cuda")
    steps_per_epoch = max(len(loader), 1)
    schedule = partial(lr_at, total=cfg.epochs * steps_per_epoch, warmup=cfg.warmup_epochs * steps_per_epoch,
                       lr=cfg.lr, min_lr=cfg.min_lr)
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    fingerprint = {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint", "desc", "compile")}
    history, start = _resume(ckpt, fingerprint, model, opt, device)
    runner = _Step(model, step)
    if _distributed():
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(runner, device_ids=[device.index] if device.type == "cuda" else None)
    compiled = bool(cfg.compile) and device.type == "cuda"
    if compiled:
        # static shapes: a dynamic batch size breaks the masking's torch.rand under CUDA graphs (seen on an H200)
        runner = torch.compile(runner, mode=None if cfg.compile is True else cfg.compile, dynamic=False)
    main_rank = dist_rank_world()[0] == 0
    if main_rank:  # to the run's terminal, when a chapter run watches (maelib.progress); else nothing
        reports.report(cfg.desc, start, cfg.epochs)
    # a manual bar: iterating a tqdm bar updates its count only when it redraws, so a postfix drawn
    # each epoch would show a stale count
    with tqdm(total=cfg.epochs, initial=start, desc=cfg.desc, disable=not (progress and main_rank),
              mininterval=2.0) as bar:
        for epoch in range(start, cfg.epochs):
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            model.train()
            mean_loss, lr, seconds = _train_epoch(runner, model, opt, _epoch_batches(loader, epoch), schedule,
                                                  epoch * steps_per_epoch, compiled, cfg.grad_clip, device,
                                                  cfg.precision)
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"{cfg.desc}: loss became {mean_loss} during epoch {epoch + 1} at a peak "
                                         f"learning rate of {cfg.lr:g}")
            row = {"epoch": epoch + 1, "loss": _mean_over_ranks(mean_loss, device), "lr": lr, "epoch_s": seconds}
            if evaluate is not None:
                model.eval()
                with torch.no_grad(), autocast(device, cfg.precision):
                    row.update(evaluate(model))
            history.append(row)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "epoch_s")},
                            refresh=False)
            bar.update(1)
            if main_rank:
                reports.report(cfg.desc, epoch + 1, cfg.epochs)
            if ckpt and main_rank:
                save_torch_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                              "history": history, "fingerprint": fingerprint}, ckpt)
    model.eval()
    return pd.DataFrame(history)
