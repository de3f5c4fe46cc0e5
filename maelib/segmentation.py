"""Chapter 3: a ViT encoder made into a feature pyramid, a UPerNet head, and their training.

The pyramid follows the ViT-for-detection recipe: features after four evenly spaced blocks (3, 6, 9
and 12 of a 12-block ViT) are reshaped into maps at 1/p of the input and rescaled to 4x, 2x, 1x and
0.5x that size. UPerNet {cite}`xiao2018upernet` fuses them: a pyramid pooling module on the coarsest
level, a top-down FPN, and a fusion of all levels at the finest one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import TensorLoader, normalize, random_resized_crop_flip
from .data.seg2d import IGNORE
from .data.tinyimagenet import MEAN, STD
from .heads import encoder_like
from .mae import ViTEncoder
from .images import load_mae, make_mae, pretrain_step
from .budgets import Pretraining
from .train import GRID_EXTENSIONS, Arm, TrainConfig, checkpoint_file, fit, grid_search, param_groups, step_flops


def pyramid_blocks(depth: int) -> tuple[int, ...]:
    """Four evenly spaced blocks, 1-based, ending at the last: a step of ``depth // 4`` blocks, so depth 12
    -> (3, 6, 9, 12), depth 6 -> (3, 4, 5, 6), depth 4 -> (1, 2, 3, 4)."""
    if depth < 4:
        raise ValueError(f"the pyramid needs an encoder of at least 4 blocks, got depth={depth}")
    step = depth // 4
    return tuple(depth - step * k for k in (3, 2, 1, 0))


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ViTPyramid(nn.Module):
    """Images (N, 3, S, S) -> four maps (N, D, 4S/p, ...), (N, D, 2S/p, ...), (N, D, S/p, ...), (N, D, S/2p, ...)."""

    def __init__(self, encoder: ViTEncoder):
        super().__init__()
        self.encoder, d = encoder, encoder.dim
        encoder.norm.requires_grad_(False)  # the pyramid takes block outputs; the final norm is unused
        self.blocks = pyramid_blocks(encoder.depth)
        self.up4 = nn.Sequential(nn.ConvTranspose2d(d, d, 2, 2), nn.BatchNorm2d(d), nn.GELU(), nn.ConvTranspose2d(d, d, 2, 2))
        self.up2 = nn.ConvTranspose2d(d, d, 2, 2)
        self.down2 = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.encoder.forward_intermediates(self.encoder.tokenizer.tokenize(x), self.blocks)
        h, w = self.encoder.tokenizer.grid
        maps = [f[:, 1:].transpose(1, 2).reshape(len(x), -1, h, w) for f in feats]
        return [self.up4(maps[0]), self.up2(maps[1]), maps[2], self.down2(maps[3])]


class UPerHead(nn.Module):
    """Four pyramid levels (fine to coarse) -> class logits at the finest level's resolution."""

    def __init__(self, in_dim: int, n_classes: int, width: int = 64, pool_scales=(1, 2, 3, 6)):
        super().__init__()
        self.ppm = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(in_dim, width, 1))
                                 for s in pool_scales)
        self.ppm_out = conv_bn_relu(in_dim + len(pool_scales) * width, width)
        self.lateral = nn.ModuleList(conv_bn_relu(in_dim, width, 1) for _ in range(3))
        self.smooth = nn.ModuleList(conv_bn_relu(width, width) for _ in range(3))
        self.fuse = conv_bn_relu(4 * width, width)
        self.classify = nn.Conv2d(width, n_classes, 1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        top = levels[-1]
        pooled = [F.interpolate(m(top), size=top.shape[-2:], mode="bilinear", align_corners=False) for m in self.ppm]
        outs = [self.ppm_out(torch.cat([top, *pooled], dim=1))]
        for i in (2, 1, 0):  # top-down: coarse to fine
            lat = self.lateral[i](levels[i])
            lat = lat + F.interpolate(outs[0], size=lat.shape[-2:], mode="bilinear", align_corners=False)
            outs.insert(0, self.smooth[i](lat))
        size = outs[0].shape[-2:]
        fused = torch.cat([F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in outs], dim=1)
        return self.classify(self.fuse(fused))


class ViTUPerNet(nn.Module):
    """Images (N, 3, S, S) -> logits (N, K, S, S)."""

    def __init__(self, encoder: ViTEncoder, n_classes: int, width: int = 64):
        super().__init__()
        self.pyramid = ViTPyramid(encoder)
        self.head = UPerHead(encoder.dim, n_classes, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.head(self.pyramid(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def confusion(pred: torch.Tensor, true: torch.Tensor, n_classes: int, ignore: int = IGNORE) -> torch.Tensor:
    """(n_classes, n_classes) counts, rows = truth, columns = prediction; ``ignore`` pixels are skipped."""
    keep = true != ignore
    idx = true[keep] * n_classes + pred[keep]
    return torch.bincount(idx, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def seg_scores(cm: torch.Tensor) -> dict:
    """Pixel accuracy and mean IoU over the classes whose union is not empty (present in the truth or
    predicted), as the common benchmark code averages: a class predicted where it is absent counts as
    IoU 0; a class neither present nor predicted is left out (its IoU is ``nan`` in ``iou``)."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(1) + cm.sum(0) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    return {"pixel_acc": (tp.sum() / cm.sum().clamp(min=1)).item(), "miou": iou[union > 0].mean().item(),
            "iou": iou.tolist()}


@torch.no_grad()
def frame_items(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, device) -> list:
    """Each frame's [intersections per class, unions per class] (2, C) of ``model``'s prediction against the
    labels ``y`` (N, H, W): the items of the interval (:func:`maelib.stats.paired_items` with "iou", whose
    score from all frames is :func:`seg_scores`' mIoU)."""
    out = []
    for pred, true in zip(predict(model, x, device), y):
        cm = confusion(pred, true, n_classes)
        tp = cm.diag()
        out.append([tp.tolist(), (cm.sum(1) + cm.sum(0) - tp).tolist()])
    return out


def joint_crop_flip(x: torch.Tensor, y: torch.Tensor, g: torch.Generator, scale=(0.5, 1.0)):
    """The same random resized crop and flip for images (bilinear) and label maps (nearest)."""
    state = g.get_state()
    xc = random_resized_crop_flip(x, g, scale=scale)
    g.set_state(state)
    yc = random_resized_crop_flip(y[:, None].float(), g, scale=scale, mode="nearest")[:, 0]
    return xc, yc.round().long()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device, batch_size: int = 32) -> torch.Tensor:
    model.eval()
    return torch.cat([model(normalize(x[i:i + batch_size].to(device), MEAN, STD)).argmax(1).cpu()
                      for i in range(0, len(x), batch_size)])


def train_segmenter(model: ViTUPerNet, data: dict, n_classes: int, p, device, desc: str, ckpt_dir=None,
                    lr: float | None = None, layer_decay: float = 1.0, epochs: int | None = None):
    """Cross-entropy (void ignored), crop + flip, AdamW at ``lr`` with layer-wise decay ``layer_decay`` on
    the encoder (1: none, as for a ViT trained from scratch), for ``epochs`` (default ``p.epochs``).
    Returns the history with pixel accuracy and mIoU on ``data["val"]`` per epoch. With ``ckpt_dir`` it
    checkpoints every epoch and resumes."""
    epochs = epochs or p.epochs
    def transform(batch, g):
        x, y = joint_crop_flip(normalize(batch[0], MEAN, STD), batch[1], g)
        return x, y

    loader = TensorLoader(data["train"], p.batch_size, shuffle=True, seed=p.seed, drop_last=True, device=device,
                          transform=transform)
    xv, yv = data["val"]

    def evaluate(m):
        return {k: v for k, v in seg_scores(confusion(predict(m, xv, device), yv, n_classes)).items() if k != "iou"}

    depth = model.pyramid.encoder.depth

    def layer_of(name: str) -> int:
        if name.startswith("pyramid.encoder.blocks."):
            return int(name.split(".")[3]) + 1
        if name.startswith("pyramid.encoder."):
            return 0
        return depth + 1

    cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=0.05, warmup_epochs=min(2, epochs - 1), seed=p.seed,
                      desc=desc, checkpoint=checkpoint_file(ckpt_dir, desc),
                      extra={"layer_decay": layer_decay, "width": p.width, "n_classes": n_classes},
                      precision=p.precision)
    groups = param_groups(model, cfg.weight_decay, layer_of, depth + 1, layer_decay)
    return fit(model, segment_step, loader, cfg, device, groups=groups, evaluate=evaluate, progress=False)


def segment_step(model, batch) -> torch.Tensor:
    """The supervised step's loss: cross-entropy over pixels, void ignored; ``batch`` = (x (B, 3, H, W),
    y (B, H, W) class indices)."""
    return F.cross_entropy(model(batch[0]), batch[1], ignore_index=IGNORE)


def flops_per_sample(p, n_classes: int, n: int = 2) -> dict[str, float]:
    """Forward and backward FLOPs per image of a "pretraining" step (the image MAE at ``p.mask_ratio``) and
    of a "supervised" one (the ViT-UPerNet every arm trains), counted on ``n`` random images; torch's
    random state is left as it was."""
    with torch.random.fork_rng():
        x = torch.randn(n, 3, p.img_size, p.img_size)
        y = torch.zeros(n, p.img_size, p.img_size, dtype=torch.long)
        mae = make_mae(p)
        net = ViTUPerNet(encoder_like(mae, pretrained=False, learn_positions=True), n_classes, p.width)
        return {"pretraining": step_flops(mae, pretrain_step(p.mask_ratio), (x,)) / n,
                "supervised": step_flops(net, segment_step, (x, y)) / n}


def in_domain(p, n_train: int, flops: dict[str, float]) -> Pretraining:
    """The MAE pretrained here, on this chapter's ``n_train`` training frames (``flops``: :func:`flops_per_sample`)."""
    return Pretraining.of_run(p.pretrain_epochs, n_train, p.batch_size, flops["pretraining"],
                              f"this chapter's {n_train} training frames")


def transferred(path: str | Path) -> Pretraining:
    """The pretraining of the image MAE saved at ``path``, from the provenance file beside it
    (``<name>.json``, as :mod:`maelib.reference` writes: epochs, images, batch size and mask ratio), its
    FLOPs counted on its own model. A checkpoint without one is a ValueError naming ``mae_checkpoint``: a
    budget that leaves the pretraining out would flatter the MAE arm."""
    from .reference import provenance

    prov = provenance(path)
    if not prov or not {"epochs", "n_train_images", "schedule"} <= set(prov):
        raise ValueError(f"mae_checkpoint {path}: no provenance file ({Path(path).with_suffix('.json').name}) says "
                         "how it was pretrained (epochs, n_train_images, schedule), so the budget cannot count it")
    mae, saved = load_mae(path)
    s, n = prov["schedule"], prov["n_train_images"]
    with torch.random.fork_rng():
        x = torch.randn(2, 3, saved["img_size"], saved["img_size"])
        per_image = step_flops(mae.train(), pretrain_step(s["mask_ratio"]), (x,)) / 2
    what = (prov.get("data") or {}).get("training", f"{n:,} images")
    return Pretraining.of_run(prov["epochs"], n, s["batch_size"], per_image, what)


MATCHED = "scratch, budget-matched"  # the scratch arm given the MAE arm's pretraining and fine-tuning FLOPs


def arms(mae, p, n_classes: int, matched: int) -> dict[str, Arm]:
    """The three arms (:class:`~maelib.train.Arm`; ``build()`` makes a fresh ViT-UPerNet, positions
    learned): the MAE's encoder with layer-wise decay; a random one without it (a recipe for pretrained
    encoders) for as many epochs as the MAE arm's fine-tuning; and the same for ``matched`` epochs, those
    whose FLOPs match the MAE arm's pretraining and fine-tuning together (:data:`MATCHED`;
    :func:`maelib.budgets.matched_epochs`)."""
    def build(pretrained: bool):
        return lambda: ViTUPerNet(encoder_like(mae, pretrained=pretrained, learn_positions=True), n_classes, p.width)

    return {"MAE init": Arm(build(True), p.layer_decay, p.finetune_lr, p.epochs),
            "scratch": Arm(build(False), 1.0, p.scratch_lr, p.epochs),
            MATCHED: Arm(build(False), 1.0, p.matched_lr, matched)}


def holdout(data: dict, fraction: float = 0.1) -> dict:
    """The training images split for choosing hyperparameters: their last ``fraction`` (CamVid's frames
    are in video order, so a tail is less like the rest than a random draw) becomes ``val``."""
    x, y = data["train"]
    cut = len(x) - max(1, round(len(x) * fraction))
    return {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:])}


def choose_lr(build, data: dict, n_classes: int, p, device, arm: str, ckpt_dir, layer_decay: float,
              fixed: float | None = None, epochs: int | None = None) -> tuple[float, dict]:
    """One arm's learning rate: ``fixed`` when given, else the value of ``p.lr_grid`` (grown past an
    end where the best lies, :func:`~maelib.train.grid_search`) whose network (``build()``) ends with the
    best mIoU on the held-out tail of the training images (:func:`holdout`).
    Returns (lr, {lr: held-out mIoU}) ({} when fixed)."""
    if fixed is not None:
        return fixed, {}
    held = holdout(data)

    def score(lr):
        torch.manual_seed(p.seed)
        history = train_segmenter(build(), held, n_classes, p, device, f"tune {arm} lr={lr:g}", ckpt_dir, lr,
                                  layer_decay, epochs)
        return float(history["miou"].iloc[-1])

    return grid_search(p.lr_grid, score, extend=GRID_EXTENSIONS)


def distinct_samples(labels: torch.Tensor, k: int, n_classes: int) -> torch.Tensor:
    """Indices of ``k`` label maps (N, H, W) that differ most in what they show, for a figure: the first,
    then each time the map whose class histogram lies farthest (L1) from those already chosen.
    Consecutive video frames look alike; evenly spaced ones can too."""
    hist = torch.stack([torch.bincount(y[(y >= 0) & (y < n_classes)].long(), minlength=n_classes)
                        for y in labels]).float()
    hist = hist / hist.sum(1, keepdim=True).clamp_min(1)  # (N, n_classes): each map's class shares
    chosen = [0]
    while len(chosen) < min(k, len(labels)):
        nearest = torch.cdist(hist, hist[chosen], p=1).min(1).values  # (N,): distance to the chosen ones
        nearest[chosen] = -1
        chosen.append(int(nearest.argmax()))
    return torch.tensor(chosen)


def colorize(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Label map (H, W) -> RGB (H, W, 3) in [0, 1], void in black."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"].resampled(max(n_classes, 2))
    rgb = cmap(np.clip(labels, 0, n_classes - 1) / max(n_classes - 1, 1))[..., :3]
    rgb[labels == IGNORE] = 0
    return rgb
