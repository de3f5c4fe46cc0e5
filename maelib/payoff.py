"""When MAE pretraining pays: test accuracy against training FLOPs, MAE + fine-tuning beside scratch, at
several supervised budgets and two label fractions (the chapter "When MAE pretraining pays").

One MAE pretrains per seed, on every training image and the unlabelled ones (no label plays a part in it),
exactly as Chapter 1's does (:func:`maelib.images.pretrain`). Its encoder is then fine-tuned, and the same
ViT trained from scratch, on all the labelled images for the budgets ``p.epochs`` (passes over them), and on
``p.few_labels`` of them for ``p.few_label_epochs``. Scratch also trains longer budgets, doubling, until its
FLOPs reach the MAE arm's largest (:func:`scratch_budgets`), so that the two curves share a range of compute.

The budgets of an arm are branches of one run (:func:`branched`): a warmup-stable-decay schedule, whose
constant-rate trunk is forked ``p.cooldown`` of each budget before its end into a branch that decays the rate
linearly to zero by the budget's last epoch. A branch takes exactly the steps a separate run of that budget
would take (the same batches and random draws, epoch by epoch), and costs only its cool-down. Chapter 1's
recipe is kept otherwise (AdamW, its augmentation, label smoothing, layer-wise decay for the MAE arm, its
rates). A point's FLOPs are its supervised passes' and, for the MAE arm, the whole pretraining's
(:class:`maelib.budgets.Pretraining`), which every budget and both label fractions share.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from . import images
from . import progress as reports
from .budgets import Pretraining
from .data import TensorLoader
from .files import save_torch_atomic
from .heads import ViTClassifier, encoder_like
from .precision import autocast, set_attention_path
from .train import Arm, _train_epoch, checkpoint_file, load_checkpoint, param_groups

MAE_ARM, SCRATCH = "MAE + fine-tune", "scratch"  # Chapter 1's arms, by its names
WEIGHT_DECAY, BETAS = 0.05, (0.9, 0.999)  # Chapter 1's fine-tuning (maelib.images.finetune)


def arms(mae, p) -> dict[str, Arm]:
    """Chapter 1's two arms of the paper's comparison (:func:`maelib.images.arms`): the pretrained encoder
    fine-tuned with layer-wise decay, and the same ViT from a random start without it, each with its fixed
    rate (``p.finetune_lr``, ``p.scratch_lr``; None: chosen on held-out data for ``p.finetune_epochs``)."""
    def encoder(pretrained: bool):
        return lambda: encoder_like(mae, p.drop_path, pretrained=pretrained, learn_positions=True)

    return {MAE_ARM: Arm(encoder(True), p.layer_decay, p.finetune_lr, p.finetune_epochs),
            SCRATCH: Arm(encoder(False), 1.0, p.scratch_lr, p.finetune_epochs)}


def label_subset(data: dict, fraction: float, seed: int) -> dict:
    """``data`` with its training images cut to ``fraction`` of each class's (rounded, at least one), drawn
    at random by ``seed``; the validation split and the unlabelled images are kept. ``fraction`` 1: ``data``.

    Args:
        data: {"train": (x (N, 3, H, W), y (N,)), "val": ..., "names": [...]}, as :func:`maelib.images.load_data`.
        fraction: in (0, 1].
        seed: the draw; the same seed draws the same images for both arms.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"few_labels must be in (0, 1], got {fraction!r}")
    if fraction == 1:
        return data
    x, y = data["train"]
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)][:max(1, round(fraction * len(idx)))])
    keep = torch.cat(keep).sort().values
    return {**data, "train": (x[keep], y[keep])}


def check_batches(n_labelled: int, p) -> None:
    """A label fraction whose images do not fill one batch trains nothing (the incomplete batch is
    dropped): a ValueError naming ``few_labels``."""
    if n_labelled < p.batch_size:
        raise ValueError(f"few_labels {p.few_labels} leaves {n_labelled} labelled training images, fewer than one "
                         f"batch (batch_size {p.batch_size}); raise few_labels (it is in (0, 1]) or lower batch_size")


PER_CLASS = {False: 500, True: 50}  # training images a class: TinyImageNet's, the synthetic stand-in's


def preflight(p, device=None) -> None:
    """:func:`maelib.images.preflight`, and the few-label subset of the training images the data will have
    (``limit``, else :data:`PER_CLASS`) must fill a batch (:func:`check_batches`); before any data is loaded."""
    images.preflight(p, device)
    n = p.limit or PER_CLASS[bool(p.synthetic)] * p.n_classes
    labels = torch.arange(n) % p.n_classes
    check_batches(len(label_subset({"train": (labels, labels)}, p.few_labels, p.seed)["train"][1]), p)


def scratch_budgets(budgets: list[int], epoch_flops: float, mae_most: float) -> list[int]:
    """``budgets`` and, doubling the last, as many more as it takes for scratch's FLOPs (``epoch_flops`` a
    pass) to reach ``mae_most``, the MAE arm's largest total, the last one no longer than that takes: the
    two curves then share a range of compute."""
    out = list(budgets)
    while out[-1] * epoch_flops < mae_most:
        out.append(min(2 * out[-1], math.ceil(round(mae_most / epoch_flops, 9))))
    return out


def forks(budgets: list[int], cooldown: float) -> dict[int, int]:
    """Budget (epochs) -> the epoch its branch leaves the trunk: ``cooldown`` of the budget before its end,
    rounded up, at least one epoch."""
    return {b: b - max(1, math.ceil(round(cooldown * b, 9))) for b in budgets}


def wsd_rate(step: float, peak: float, warmup: float, decay_from: float = math.inf, end: float = math.inf) -> float:
    """The warmup-stable-decay rate at optimizer ``step``: linear warmup to ``peak`` over ``warmup`` steps,
    constant, then linear decay from ``decay_from`` to zero at ``end`` (a trunk never decays)."""
    rate = peak * min(1.0, step / max(warmup, 1e-8))
    if step >= decay_from:
        rate *= max(0.0, (end - step) / (end - decay_from))
    return rate


@dataclass(frozen=True)
class Schedule:
    """One arm's branched training: its ``budgets`` (epochs), base rate ``lr`` (scaled by batch_size / 256),
    layer-wise decay, warmup (epochs) and ``cooldown`` (the share of a budget its branch decays over)."""

    budgets: tuple[int, ...]
    lr: float
    layer_decay: float
    warmup: int
    cooldown: float


def branched(model: ViTClassifier, data: dict, p, device, plan: Schedule, ckpt=None, desc: str = "train") -> dict[int, float]:
    """Train ``model`` once along a warmup-stable-decay trunk and score a decayed branch per budget of
    ``plan`` (see the module's docstring). Each epoch reseeds torch and the batch order from (seed, epoch),
    as :func:`maelib.train.fit` does, so a branch repeats a separate run of its budget. With ``ckpt`` (a file)
    the trunk's state and the scores so far are saved after every trunk epoch, and a later call with the
    same plan resumes there.

    Returns:
        budget -> validation top-1 (%) after the branch's last epoch.
    """
    set_attention_path(model.to(device), device)
    loader = TensorLoader(data["train"], p.batch_size, shuffle=True, seed=p.seed, drop_last=True, device=device,
                          transform=images._augment((0.35, 1.0)))  # Chapter 1's fine-tuning augmentation
    groups = param_groups(model, WEIGHT_DECAY, model.layer_of, model.encoder.depth + 1, plan.layer_decay)
    opt = torch.optim.AdamW(groups, lr=plan.lr, betas=BETAS, weight_decay=WEIGHT_DECAY)
    per_epoch, peak = len(loader), plan.lr * p.batch_size / 256
    fork = forks(list(plan.budgets), plan.cooldown)
    last = max(fork.values())
    total = last + sum(b - f for b, f in fork.items())
    fingerprint = {**asdict(plan), "seed": p.seed, "n": len(data["train"][1]), "precision": p.precision}
    start, scores = _resume(ckpt, fingerprint, model, opt)
    evaluate = images._classification_eval(data, device)

    def epoch(e: int, decay_from: float = math.inf, end: float = math.inf) -> None:
        torch.manual_seed(p.seed * 100_003 + e)
        loader.set_epoch(e)
        model.train()
        loss, *_ = _train_epoch(lambda batch: images.finetune_step(model, batch), model, opt, loader,
                                lambda s: wsd_rate(s, peak, plan.warmup * per_epoch, decay_from, end),
                                e * per_epoch, False, None, device, p.precision)
        if not math.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss} in epoch {e + 1} at a base learning rate of "
                                     f"{plan.lr:g}")

    def save(trunk_epochs: int) -> None:  # the trunk after ``trunk_epochs`` epochs, and every score so far
        if ckpt:
            save_torch_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": trunk_epochs - 1,
                               "scores": scores, "fingerprint": fingerprint}, ckpt)

    done = start + sum(b - f for b, f in fork.items() if b in scores)
    for e in range(start, last + 1):
        for b in (b for b in plan.budgets if fork[b] == e and b not in scores):
            trunk = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(opt.state_dict())}
            for k in range(e, b):
                epoch(k, e * per_epoch, b * per_epoch)
                done += 1
                reports.report(desc, done, total)
            model.eval()
            with torch.no_grad(), autocast(device, p.precision):
                scores[b] = 100 * evaluate(model)["val_acc"]
            model.load_state_dict(trunk["model"])
            opt.load_state_dict(trunk["optimizer"])
            save(e)  # a resumed run skips this branch
        if e == last:
            break
        epoch(e)
        done += 1
        reports.report(desc, done, total)
        save(e + 1)
    return {b: scores[b] for b in plan.budgets}


def _resume(ckpt, fingerprint: dict, model, opt) -> tuple[int, dict]:
    """(the next trunk epoch, the scores so far) from ``ckpt`` when written under ``fingerprint``, else (0, {})."""
    state = load_checkpoint(ckpt) if ckpt and Path(ckpt).exists() else None
    if state is None or state.get("fingerprint") != fingerprint:
        return 0, {}
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return state["epoch"] + 1, dict(state["scores"])


def train_points(mae, data: dict, p, device, pre: Pretraining, flops: dict[str, float], lr: dict[str, float],
                 ckpt_dir=None, say=print) -> pd.DataFrame:
    """Every point of the curves: for all the labelled images and for ``p.few_labels`` of them, each arm of
    :func:`arms` trained from the pretrained ``mae``'s encoder or from scratch by :func:`branched`, at its
    base rate ``lr[arm]``, checkpointed under ``ckpt_dir``.

    Returns:
        One row per point: arm, fraction, epochs, labelled (images), steps (optimizer steps, the MAE arm's
        pretraining included), flops (forward and backward, the same) and top1 (% on the validation split).
    """
    plan = ((1.0, p.epochs), (p.few_labels, p.few_label_epochs))
    parts = [label_subset(data, fraction, p.seed) for fraction, _ in plan]
    for part in parts:  # before anything trains
        check_batches(len(part["train"][1]), p)
    rows = []
    for (fraction, budgets), part in zip(plan, parts):
        n = len(part["train"][1])
        seen = (n // p.batch_size) * p.batch_size  # a pass's images: the incomplete batch is dropped
        per_epoch = seen * flops["supervised"]
        arm_budgets = {MAE_ARM: list(budgets),
                       SCRATCH: scratch_budgets(list(budgets), per_epoch, pre.flops + budgets[-1] * per_epoch)}
        for name, arm in arms(mae, p).items():
            desc = f"{name}, {fraction:.0%} labels"
            say(f"{desc}: {n:,} labelled images, budgets of {', '.join(map(str, arm_budgets[name]))} epochs")
            schedule = Schedule(tuple(arm_budgets[name]), lr[name], arm.layer_decay, min(5, max(1, budgets[0] // 8)),
                                p.cooldown)  # Chapter 1's warmup for the shortest budget
            torch.manual_seed(p.seed)
            model = ViTClassifier(arm.build(), len(data["names"]))
            ckpt = checkpoint_file(ckpt_dir, f"{name} {fraction:g} labels")
            for b, top1 in branched(model, part, p, device, schedule, ckpt, desc).items():
                pretrained = name == MAE_ARM
                rows.append({"arm": name, "fraction": fraction, "epochs": b, "labelled": n,
                             "steps": b * (n // p.batch_size) + (pre.steps if pretrained else 0),
                             "flops": b * per_epoch + (pre.flops if pretrained else 0.0), "top1": top1})
    return pd.DataFrame(rows)
