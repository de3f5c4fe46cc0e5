"""Chapter 4 glue: MONAI's MaskedAutoEncoderViT pretraining, the exact weight transfer into UNETR's ViT,
and UNETR training with MONAI's DiceCE loss, Dice metric and sliding-window inference.

MONAI's MAE returns predictions and the mask; the masked loss (hidden patches only) is ours, with the
target patches cut in the order of MONAI's patch embedding (row-major over the 3D patch grid).

MONAI's transforms load and normalise each case once; the cases are then stacked into one tensor that
lives on the training device, and the random training crops (centred on a labelled or a background
voxel with equal odds, as MONAI's RandCropByPosNegLabeld does), flips and intensity scaling run there
for a whole batch at once: no per-volume host work in the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.networks.nets import UNETR, MaskedAutoEncoderViT
from torch import nn

from .data import TensorLoader
from .data import volumes as vdata
from .data.registry import DataCorruptError
from .mae import flat_fill
from .masking import check_split
from .train import (GRID_EXTENSIONS, Arm, TrainConfig, checkpoint_file, fit, grid_search, matched_epochs,
                    step_flops)

PATCH = 16  # UNETR's ViT always uses 16^3 patches
CROPS = 2  # crops of each training case in a pass (crop_loader)


def patchify3d(x: torch.Tensor, p: int = PATCH) -> torch.Tensor:
    """(N, C, D, H, W) -> (N, L, p^3 * C), patches in row-major grid order (as MONAI embeds them)."""
    n, c, d, h, w = x.shape
    x = x.reshape(n, c, d // p, p, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(n, (d // p) * (h // p) * (w // p), p ** 3 * c)


def make_mae(p, roi) -> MaskedAutoEncoderViT:
    mae = MaskedAutoEncoderViT(1, roi, PATCH, hidden_size=p.hidden_size, mlp_dim=p.mlp_dim, num_layers=12,
                               num_heads=p.heads, masking_ratio=p.mask_ratio, decoder_hidden_size=p.decoder_dim,
                               decoder_mlp_dim=2 * p.decoder_dim, decoder_num_layers=p.decoder_depth,
                               decoder_num_heads=p.decoder_heads)
    # MONAI's decoder writes the embedded visible tokens into a float32 tensor of mask tokens by an index
    # put, which bf16 autocast does not cast ("Index put requires the source and destination dtypes
    # match"): the embedding is handed over in float32, and the decoder's blocks run in bf16 again
    mae.decoder_embed.register_forward_hook(lambda module, args, out: out.float())
    # the learned tokens are not decayed, as the image MAE's are not (maelib.train.no_decay_names)
    mae.no_weight_decay = lambda: {"cls_token", "mask_tokens"}
    return mae


def make_unetr(p, roi, n_out: int) -> UNETR:
    return UNETR(1, n_out, roi, feature_size=p.feature_size, hidden_size=p.hidden_size, mlp_dim=p.mlp_dim,
                 num_heads=p.heads, norm_name="instance")


def step_bytes(p, roi) -> dict[str, int]:
    """A lower bound of the memory one UNETR training step holds, in bytes, by its two largest parts:
    the ViT's attention maps (12 blocks of heads x L x L per crop) and the full-resolution decoder maps
    (about four feature_size-channel maps of the crop)."""
    crops, voxels = CROPS * p.batch_size, math.prod(roi)  # crop_loader: CROPS crops of each volume in a batch
    tokens = voxels // PATCH ** 3
    return {"attention": 12 * crops * p.heads * tokens ** 2 * 4, "decoder maps": crops * voxels * 4 * 4 * p.feature_size}


def free_bytes(device: torch.device) -> int:
    """Memory free for a run on ``device``: the GPU's free memory, else the machine's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def preflight(p, device) -> None:
    """Refuse a setting that cannot work before any data is loaded: the mask must hide and show a patch,
    one training step must fit in the memory free on ``device``, and MONAI's MAE runs once on a blank crop."""
    roi, length = tuple(p.roi), math.prod(r // PATCH for r in p.roi)
    source = f"roi {list(roi)} in {PATCH}^3 patches"
    check_split(length, int(length * (1 - p.mask_ratio)), p.mask_ratio, source)  # MONAI keeps int(L * (1 - r))
    need, free = step_bytes(p, roi), free_bytes(device)
    if sum(need.values()) > free:
        parts = ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in need.items())
        raise ValueError(f"roi {list(roi)} with batch_size {p.batch_size} needs at least {sum(need.values()) / 2**30:.1f} "
                         f"GiB for one training step ({parts}), more than the {free / 2**30:.1f} GiB free on {device}: "
                         "out of memory; lower roi or batch_size")
    with torch.no_grad():
        make_mae(p, roi)(torch.zeros(1, 1, *roi), masking_ratio=p.mask_ratio)


def mae_loss(mae: MaskedAutoEncoderViT, x: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """MSE between MONAI's predicted patches and the true ones, over hidden patches only."""
    pred, mask = mae(x, masking_ratio=mask_ratio)
    per_patch = ((pred.float() - patchify3d(x).float()) ** 2).mean(-1)  # in fp32 under bf16 autocast too
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def transfer(mae: MaskedAutoEncoderViT, unetr: UNETR) -> list[str]:
    """Copy the MAE encoder into ``unetr.vit`` by name (the MAE keeps its final LayerNorm as
    ``blocks.<12>``, the ViT calls it ``norm``). Returns the names copied; raises if any ViT tensor has
    no counterpart of the same shape."""
    src = mae.state_dict()
    depth = len(unetr.vit.blocks)
    new, copied = {}, []
    for name, tensor in unetr.vit.state_dict().items():
        key = f"blocks.{depth}.{name[5:]}" if name.startswith("norm.") else name
        if key not in src or src[key].shape != tensor.shape:
            raise KeyError(f"no pretrained tensor for UNETR.vit.{name} (looked for {key})")
        new[name] = src[key].clone()
        copied.append(name)
    unetr.vit.load_state_dict(new)
    return copied


PAD_LABEL = 255  # the label of voxels that only pad a case up to the stack's shape


@dataclass
class VolumeSet:
    """Cases stacked into one tensor: image (N, 1, D, H, W) float32 and label (N, 1, D, H, W) uint8,
    each case at the front of its slot, padded behind (image 0, label PAD_LABEL) up to the largest
    case; ``shapes`` (N, 3) are the cases' own sizes."""

    image: torch.Tensor
    label: torch.Tensor
    shapes: torch.Tensor

    def __len__(self) -> int:
        return len(self.image)

    def subset(self, index) -> "VolumeSet":
        """The cases ``index`` (a slice or index tensor) as a VolumeSet of their own."""
        return VolumeSet(self.image[index], self.label[index], self.shapes[index])

    def to(self, device) -> "VolumeSet":
        return VolumeSet(self.image.to(device), self.label.to(device), self.shapes.to(device))

    def case(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Case ``i`` at its own size: image (1, d, h, w), label (d, h, w)."""
        d, h, w = self.shapes[i].tolist()
        return self.image[i, :, :d, :h, :w], self.label[i, 0, :d, :h, :w]

    def same_shape_groups(self) -> list[list[int]]:
        """Case indices grouped by size (cases of one size can go through a network together)."""
        groups: dict[tuple, list[int]] = {}
        for i, shape in enumerate(self.shapes.tolist()):
            groups.setdefault(tuple(shape), []).append(i)
        return list(groups.values())


def check_case(kind: str, pair: dict, image: torch.Tensor, label: torch.Tensor) -> None:
    """Refuse a case whose label volume does not match its image voxel for voxel, or holds a class the
    dataset does not have, naming the file (it failed after pretraining, in the loss, naming nothing)."""
    n_classes = vdata.n_classes(kind)
    if tuple(image.shape[1:]) != tuple(label.shape[1:]):
        raise DataCorruptError(f"{pair['label']}: its shape {tuple(label.shape[1:])} is not its image's "
                               f"{tuple(image.shape[1:])} ({pair['image']})")
    values = torch.unique(label)
    bad = values[(values < 0) | (values >= n_classes) | (values != values.round())]
    if len(bad):
        raise DataCorruptError(f"{pair['label']}: it holds the label value(s) {bad.tolist()[:5]}, but {kind} has the "
                               f"classes 0 to {n_classes - 1}")


def load_set(kind: str, pairs: list[dict], roi, spacing: float | None = None) -> VolumeSet:
    """Each case through :func:`maelib.data.volumes.transforms` (resampled to ``spacing`` mm, the
    hippocampus only; then at least ``roi`` in every axis), then stacked as a :class:`VolumeSet`."""
    load = vdata.transforms(kind, roi, spacing)
    items = [load(pair) for pair in pairs]
    for pair, item in zip(pairs, items):
        check_case(kind, pair, item["image"], item["label"])
    shapes = torch.tensor([list(item["image"].shape[1:]) for item in items])
    top = shapes.max(0).values.tolist()

    def pad(x, value):  # (1, d, h, w) -> (1, *top), padded behind
        return F.pad(x, [p for d in (2, 1, 0) for p in (0, top[d] - x.shape[d + 1])], value=value)

    return VolumeSet(torch.stack([pad(i["image"].float(), 0.0) for i in items]),
                     torch.stack([pad(i["label"].to(torch.uint8), PAD_LABEL) for i in items]), shapes)


def datasets(kind: str, files: dict, roi, spacing: float | None = None) -> tuple[VolumeSet, VolumeSet]:
    """The training and validation cases of ``files`` ({"train": pairs, "val": pairs}), at ``spacing``
    (:func:`load_set`)."""
    return load_set(kind, files["train"], roi, spacing), load_set(kind, files["val"], roi, spacing)


def _flat_offsets(roi, shape, device) -> torch.Tensor:
    """(prod(roi),) offsets of a roi-sized box's voxels in a flattened volume of ``shape``."""
    axes = torch.meshgrid(*[torch.arange(r, device=device) for r in roi], indexing="ij")
    return (axes[0] * shape[1] * shape[2] + axes[1] * shape[2] + axes[2]).reshape(-1)


def pos_neg_crop(vs: VolumeSet, idx: torch.Tensor, roi, generator: torch.Generator):
    """Crops (B, 1, *roi) of the cases ``idx`` (B,): each centred on a labelled voxel or on a background
    one with equal odds (a case without the wanted kind: any of its voxels), shifted to lie inside the
    case, as MONAI's RandCropByPosNegLabeld(pos=1, neg=1) does, for the whole batch at once."""
    shape = vs.image.shape[2:]
    if tuple(shape) == tuple(roi):
        return vs.image[idx], vs.label[idx]
    dev, n = vs.image.device, len(idx)
    idx = idx.to(dev)
    draws = torch.rand(n, 2, generator=generator, device=dev)
    labels = vs.label[idx, 0].reshape(n, -1)
    inside = labels != PAD_LABEL
    wanted = torch.where(draws[:, :1] < 0.5, inside & (labels > 0), labels == 0)
    wanted = torch.where(wanted.any(1, keepdim=True), wanted, inside)
    count = wanted.cumsum(1)  # the k-th wanted voxel is where count first reaches k
    k = (draws[:, 1] * count[:, -1]).long().clamp(max=count[:, -1] - 1) + 1
    centre = torch.searchsorted(count, k[:, None])[:, 0]
    plane = shape[1] * shape[2]
    coords = torch.stack([centre // plane, centre // shape[2] % shape[1], centre % shape[2]], 1)
    limit = vs.shapes.to(dev)[idx]  # a crop lies inside its case
    start = torch.stack([torch.minimum((coords[:, a] - roi[a] // 2).clamp(min=0), limit[:, a] - roi[a])
                         for a in range(3)], 1)
    base = idx * labels.shape[1] + start[:, 0] * plane + start[:, 1] * shape[2] + start[:, 2]
    flat = base[:, None] + _flat_offsets(roi, shape, dev)[None]
    return vs.image.reshape(-1)[flat].view(n, 1, *roi), vs.label.reshape(-1)[flat].view(n, 1, *roi)


def _augment(vs: VolumeSet, roi):
    """TensorLoader transform: volume indices -> (crops, labels as int64) with a random flip along the
    first axis and an intensity scale in [0.9, 1.1], each with probability 0.5."""
    def transform(batch, generator):
        image, label = pos_neg_crop(vs, batch[0], roi, generator)
        r = torch.rand(len(image), 3, generator=generator, device=image.device)
        flip = (r[:, 0] < 0.5).view(-1, 1, 1, 1, 1)
        image, label = torch.where(flip, image.flip(2), image), torch.where(flip, label.flip(2), label)
        scale = 1 + torch.where(r[:, 1] < 0.5, 0.2 * r[:, 2] - 0.1, torch.zeros_like(r[:, 2]))
        return image * scale.view(-1, 1, 1, 1, 1), label.long()
    return transform


def crop_loader(vs: VolumeSet, roi, batch_size: int, seed: int, device, samples: int = CROPS) -> TensorLoader:
    """Training batches of random crops: every volume gives ``samples`` crops an epoch, and a step
    takes ``batch_size * samples`` of them (the volumes stay on ``device``)."""
    vs = vs.to(device)
    order = torch.arange(len(vs)).repeat(samples)
    return TensorLoader((order,), batch_size * samples, shuffle=True, seed=seed, device=device,
                        transform=_augment(vs, tuple(roi)))


def pretrain(mae, train_ds, p, device, seed: int, ckpt_dir=None):
    """MONAI's MAE on the training crops with our hidden-patch loss; checkpoints in ``ckpt_dir``."""
    loader = crop_loader(train_ds, p.roi, p.batch_size, seed, device)
    cfg = TrainConfig(epochs=p.pretrain_epochs, lr=p.pretrain_lr, weight_decay=0.05, warmup_epochs=1,
                      betas=(0.9, 0.95), seed=seed, desc="3D MAE pretraining",
                      checkpoint=checkpoint_file(ckpt_dir, "pretrain"), extra={"mask_ratio": p.mask_ratio, "roi": list(p.roi)},
                      precision=p.precision)
    return fit(mae, lambda m, b: mae_loss(m, b[0], p.mask_ratio), loader, cfg, device, progress=False)


@torch.no_grad()
def dice_per_case(model: nn.Module, val: VolumeSet, roi, n_out: int, device, batch_size: int = 8) -> torch.Tensor:
    """(cases, foreground classes) Dice of whole validation cases at their own sizes, in the cases' order
    (sliding-window inference; cases of one size ``batch_size`` at a time); nan where a class is absent
    from a case's labels (MONAI's ``ignore_empty``)."""
    model.eval()
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    out = torch.full((len(val.shapes), n_out - 1), float("nan"))
    for group in val.same_shape_groups():
        d, h, w = val.shapes[group[0]].tolist()
        for i in range(0, len(group), batch_size):
            part = group[i:i + batch_size]
            x = val.image[part, :, :d, :h, :w].to(device)
            logits = sliding_window_inference(x, roi, 4, model, overlap=0.25)
            pred = F.one_hot(logits.argmax(1), n_out).permute(0, 4, 1, 2, 3)
            true = F.one_hot(val.label[part, 0, :d, :h, :w].long().to(device), n_out).permute(0, 4, 1, 2, 3)
            out[list(part)] = metric(pred, true).float().cpu()
    return out


def evaluate_dice(model: nn.Module, val: VolumeSet, roi, n_out: int, device, batch_size: int = 8) -> dict:
    """Mean Dice per foreground class over the validation cases (:func:`dice_per_case`), and their mean."""
    per_class = dice_per_case(model, val, roi, n_out, device, batch_size).nanmean(0)
    return {"dice": float(per_class.nanmean()), **{f"dice_{i + 1}": float(v) for i, v in enumerate(per_class)}}


def case_items(model: nn.Module, val: VolumeSet, roi, n_out: int, device) -> list[float]:
    """Each validation case's mean Dice over its foreground classes: the items of the interval
    (:func:`maelib.stats.paired_items`); their mean is :func:`evaluate_dice`'s where every class is in every
    case (as in Hippocampus)."""
    return [float(v) for v in dice_per_case(model, val, roi, n_out, device).nanmean(1)]


@torch.no_grad()
def versus_flat(mae: MaskedAutoEncoderViT, val: VolumeSet, roi, p, device, seed: int = 12345) -> float:
    """The pretrained MAE's loss on hidden patches of held-out crops over the flat predictor's (each hidden
    patch filled with the mean of its crop's visible ones; :func:`maelib.mae.versus_flat` for maelib's MAE),
    under one mask drawn from ``seed``: at most :data:`maelib.mae.LEARNED` when it learned."""
    was = mae.training
    mae.eval()
    x = next(iter(crop_loader(val, roi, 8, seed, device)))[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pred, mask = mae(x, masking_ratio=p.mask_ratio)
    target, mask = patchify3d(x).float(), mask.float()  # (N, L, D), (N, L) 1 = hidden
    hidden_mse = lambda guess: (((guess - target) ** 2).mean(-1) * mask).sum() / mask.sum()  # noqa: E731
    mae.train(was)
    return float(hidden_mse(pred.float()) / hidden_mse(flat_fill(target, mask)))


def train_unetr(model: UNETR, train_ds, val_ds, roi, n_out: int, p, device, seed: int, desc: str, ckpt_dir=None,
                lr: float | None = None, epochs: int | None = None):
    """DiceCE training from random crops at ``lr`` (default ``p.lr``) for ``epochs`` (default ``p.epochs``);
    Dice on the validation volumes after every epoch; checkpoints in ``ckpt_dir``."""
    loader = crop_loader(train_ds, roi, p.batch_size, seed, device)
    cfg = TrainConfig(epochs=epochs or p.epochs, lr=lr or p.lr, weight_decay=1e-5, warmup_epochs=1, seed=seed,
                      desc=desc, checkpoint=checkpoint_file(ckpt_dir, desc), extra={"roi": list(roi), "n_out": n_out},
                      precision=p.precision)
    return fit(model, segment_step, loader, cfg, device,
               evaluate=lambda m: evaluate_dice(m, val_ds, roi, n_out, device), progress=False)


_DICE_CE = DiceCELoss(to_onehot_y=True, softmax=True)


def segment_step(model, batch) -> torch.Tensor:
    """The supervised step's loss: Dice + cross-entropy (in fp32 under bf16 autocast too) on ``batch`` =
    (x (B, 1, D, H, W), y (B, 1, D, H, W) labels)."""
    return _DICE_CE(model(batch[0]).float(), batch[1])


def flops_per_sample(p, roi, n_out: int, n: int = 2) -> dict[str, float]:
    """Forward and backward FLOPs per crop of a "pretraining" step (MONAI's MAE at ``p.mask_ratio``) and of
    a "supervised" one (the UNETR every arm trains), counted on ``n`` blank crops; torch's random state is
    left as it was."""
    with torch.random.fork_rng():
        x, y = torch.randn(n, 1, *roi), torch.zeros(n, 1, *roi)
        return {"pretraining": step_flops(make_mae(p, roi), lambda m, b: mae_loss(m, b[0], p.mask_ratio), (x,)) / n,
                "supervised": step_flops(make_unetr(p, roi, n_out), segment_step, (x, y)) / n}


MATCHED = "scratch, budget-matched"  # the scratch arm given the MAE arm's pretraining and fine-tuning FLOPs


def arms(mae, p, roi, n_out: int, flops: dict[str, float]) -> dict[str, Arm]:
    """The three UNETR arms (:class:`~maelib.train.Arm`, none with layer-wise decay): the MAE's ViT copied
    in; a random one for as many epochs as the MAE arm's fine-tuning; and a random one for the epochs whose
    FLOPs match the MAE arm's pretraining and fine-tuning together (:data:`MATCHED`; ``flops``:
    :func:`flops_per_sample`)."""
    def build(pretrained: bool):
        def make():
            model = make_unetr(p, roi, n_out)
            if pretrained:
                transfer(mae, model)
            return model
        return make

    return {"MAE init": Arm(build(True), 1.0, p.lr, p.epochs), "scratch": Arm(build(False), 1.0, p.lr, p.epochs),
            MATCHED: Arm(build(False), 1.0, p.lr, matched_epochs(p.pretrain_epochs, p.epochs, flops))}


HELD_OUT = 0.2  # the fraction of the training cases a learning rate is chosen on


def choose_lr(build, train_ds: VolumeSet, roi, n_out: int, p, device, seed: int, arm: str,
              ckpt_dir=None, epochs: int | None = None) -> tuple[float, dict]:
    """One arm's learning rate: the value of ``p.lr_grid`` (grown past an end where the best lies,
    :func:`~maelib.train.grid_search`) whose UNETR (``build()``), trained on the other training cases,
    ends with the best mean Dice on the last ``HELD_OUT`` of them; the validation cases are never seen.
    Returns (lr, {lr: held-out Dice})."""
    cut = len(train_ds) - max(1, round(HELD_OUT * len(train_ds)))
    fit_ds, held_ds = train_ds.subset(slice(0, cut)), train_ds.subset(slice(cut, None))

    def score(lr: float) -> float:
        torch.manual_seed(seed)
        history = train_unetr(build(), fit_ds, held_ds, roi, n_out, p, device, seed, f"tune {arm} lr={lr:g}",
                              ckpt_dir, lr, epochs)
        return float(history["dice"].iloc[-1])

    return grid_search(p.lr_grid, score, extend=GRID_EXTENSIONS)


@torch.no_grad()
def predict_volume(model: nn.Module, image: torch.Tensor, roi, device) -> torch.Tensor:
    model.eval()
    return sliding_window_inference(image[None].to(device), roi, 4, model, overlap=0.25).argmax(1)[0].cpu()
