"""Chapter 4 glue: MONAI's MaskedAutoEncoderViT pretraining, the exact weight transfer into UNETR's ViT,
and UNETR training with MONAI's DiceCE loss, Dice metric and sliding-window inference.

MONAI's MAE returns predictions and the mask; the masked loss (hidden patches only) is ours, with the
target patches cut in the order of MONAI's patch embedding (row-major over the 3D patch grid).
"""

from __future__ import annotations

import torch
from monai.data import CacheDataset, DataLoader
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.networks.nets import UNETR, MaskedAutoEncoderViT
from torch import nn

from .data import volumes as vdata
from .train import TrainConfig, fit

PATCH = 16  # UNETR's ViT always uses 16^3 patches


def patchify3d(x: torch.Tensor, p: int = PATCH) -> torch.Tensor:
    """(N, C, D, H, W) -> (N, L, p^3 * C), patches in row-major grid order (as MONAI embeds them)."""
    n, c, d, h, w = x.shape
    x = x.reshape(n, c, d // p, p, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(n, (d // p) * (h // p) * (w // p), p ** 3 * c)


def make_mae(p, roi) -> MaskedAutoEncoderViT:
    return MaskedAutoEncoderViT(1, roi, PATCH, hidden_size=p.hidden_size, mlp_dim=p.mlp_dim, num_layers=12,
                                num_heads=p.heads, masking_ratio=p.mask_ratio, decoder_hidden_size=p.decoder_dim,
                                decoder_mlp_dim=2 * p.decoder_dim, decoder_num_layers=p.decoder_depth,
                                decoder_num_heads=p.decoder_heads)


def make_unetr(p, roi, n_out: int) -> UNETR:
    return UNETR(1, n_out, roi, feature_size=p.feature_size, hidden_size=p.hidden_size, mlp_dim=p.mlp_dim,
                 num_heads=p.heads, norm_name="instance")


def mae_loss(mae: MaskedAutoEncoderViT, x: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """MSE between MONAI's predicted patches and the true ones, over hidden patches only."""
    pred, mask = mae(x, masking_ratio=mask_ratio)
    per_patch = ((pred - patchify3d(x)) ** 2).mean(-1)
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


class _Batches:
    """A MONAI DataLoader seen as the image/label tensors ``fit`` wants, reseeded per epoch."""

    def __init__(self, loader: DataLoader, seed: int):
        self.loader, self.seed = loader, seed

    def set_epoch(self, epoch: int) -> None:
        self.loader.dataset.transform.set_random_state(seed=self.seed * 1000 + epoch)
        self.loader.generator.manual_seed(self.seed * 1000 + epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for b in self.loader:
            yield (b["image"], b["label"])


def datasets(kind: str, files: dict, roi, seed: int):
    """Cached MONAI datasets: training crops (random, balanced on positive/negative voxels) and
    whole validation volumes."""
    train = CacheDataset(files["train"], vdata.transforms(kind, roi, True), progress=False)
    val = CacheDataset(files["val"], vdata.transforms(kind, roi, False), progress=False)
    return train, val


def _ckpt(ckpt_dir, name: str) -> str | None:
    return str(ckpt_dir / f"{name}.pt") if ckpt_dir else None


def pretrain(mae, train_ds, p, device, seed: int, ckpt_dir=None):
    """MONAI's MAE on the training crops with our hidden-patch loss; checkpoints in ``ckpt_dir``."""
    loader = _Batches(DataLoader(train_ds, batch_size=p.batch_size, shuffle=True, num_workers=0,
                                 generator=torch.Generator()), seed)
    cfg = TrainConfig(epochs=p.pretrain_epochs, lr=p.pretrain_lr, weight_decay=0.05, warmup_epochs=1,
                      betas=(0.9, 0.95), seed=seed, desc="3D MAE pretraining", checkpoint=_ckpt(ckpt_dir, "pretrain"),
                      extra={"mask_ratio": p.mask_ratio, "roi": list(p.roi)})
    return fit(mae, lambda m, b: mae_loss(m, b[0].to(device), p.mask_ratio), loader, cfg, device, progress=False)


@torch.no_grad()
def evaluate_dice(model: nn.Module, val_ds, roi, n_out: int, device) -> dict:
    """Mean Dice per foreground class on whole validation volumes (sliding-window inference)."""
    model.eval()
    metric = DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=True)
    for item in val_ds:
        x = item["image"][None].to(device)
        logits = sliding_window_inference(x, roi, 4, model, overlap=0.25)
        pred = nn.functional.one_hot(logits.argmax(1), n_out).permute(0, 4, 1, 2, 3)
        true = nn.functional.one_hot(item["label"][None, 0].long().to(device), n_out).permute(0, 4, 1, 2, 3)
        metric(pred, true)
    per_class = metric.aggregate().cpu()
    return {"dice": float(per_class.nanmean()), **{f"dice_{i + 1}": float(v) for i, v in enumerate(per_class)}}


def train_unetr(model: UNETR, train_ds, val_ds, roi, n_out: int, p, device, seed: int, desc: str, ckpt_dir=None):
    """DiceCE training from random crops; Dice on the validation volumes after every epoch; checkpoints
    in ``ckpt_dir``."""
    loader = _Batches(DataLoader(train_ds, batch_size=p.batch_size, shuffle=True, num_workers=0,
                                 generator=torch.Generator()), seed)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    cfg = TrainConfig(epochs=p.epochs, lr=p.lr, weight_decay=1e-5, warmup_epochs=1, seed=seed, desc=desc,
                      checkpoint=_ckpt(ckpt_dir, desc.replace(" ", "_")), extra={"roi": list(roi), "n_out": n_out})
    step = lambda m, b: loss_fn(m(b[0].to(device)), b[1].to(device))  # noqa: E731
    return fit(model, step, loader, cfg, device, evaluate=lambda m: evaluate_dice(m, val_ds, roi, n_out, device),
               progress=False)


@torch.no_grad()
def predict_volume(model: nn.Module, image: torch.Tensor, roi, device) -> torch.Tensor:
    model.eval()
    return sliding_window_inference(image[None].to(device), roi, 4, model, overlap=0.25).argmax(1)[0].cpu()
