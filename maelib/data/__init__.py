"""Datasets (one module each), the registry of their sources, and a tensor batch loader.

Data lives as tensors on the training device; augmentation runs batched on that device, so an epoch
does no per-image Python work. Random draws come from a generator on that device too, and nothing is
copied from the host in a step: on a GPU a blocking host-to-device copy waits for all queued work, which
would serialise the loop.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .registry import DATASETS, DataCorruptError, DataError, DataMissingError, fetch, locate

__all__ = ["DATASETS", "DataError", "DataMissingError", "DataCorruptError", "fetch", "locate", "TensorLoader",
           "random_resized_crop_flip", "normalize"]


def dist_rank_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) when not distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TensorLoader:
    """Batches of aligned tensors: ``for xb, yb in TensorLoader((x, y), 128, shuffle=True, seed=0)``.

    The order of epoch ``e`` depends on ``(seed, e)`` only (call ``set_epoch``), so a resumed run sees
    the same batches. ``transform(batch_tuple, generator)`` runs on each batch (augmentation).
    Under torch.distributed, each step takes a global batch of ``batch_size * world`` samples and rank
    ``r`` gets every ``world``-th of them from the ``r``-th on: averaged gradients equal one process
    training with the global batch (the augmentation draws are each rank's own). The generator handed
    to ``transform`` lives on the tensors' device.
    """

    def __init__(self, tensors, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 transform=None, device=None):
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        n = {len(t) for t in self.tensors}
        if len(n) != 1:
            raise ValueError(f"tensors must have the same length, got {sorted(n)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.seed = n.pop(), batch_size, shuffle, seed
        self.rank, self.world = dist_rank_world()
        self.drop_last = drop_last and self.n >= batch_size * self.world
        self.transform, self.epoch = transform, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        step = self.batch_size * self.world
        return self.n // step if self.drop_last else math.ceil(self.n / step)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        order = order.to(self.tensors[0].device)
        step = self.batch_size * self.world
        augment = torch.Generator(device=self.tensors[0].device)  # draws where the data is
        augment.manual_seed((self.seed * 1_000_003 + self.epoch) * 997 + self.rank)
        for i in range(len(self)):
            idx = order[i * step:(i + 1) * step][self.rank::self.world]
            batch = tuple(t[idx] for t in self.tensors)
            yield self.transform(batch, augment) if self.transform else batch


@lru_cache(maxsize=None)
def channel_stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C, 1, 1) mean and std on ``device``, made once per device (no host copy per batch).

    Args:
        mean, std: per-channel values, as tuples (they key the cache).
        device: where the tensors live.
    """
    return (torch.tensor(mean, device=device).view(1, -1, 1, 1), torch.tensor(std, device=device).view(1, -1, 1, 1))


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 or [0, 1] images (N, C, H, W) -> float, standardised per channel.

    Args:
        x: uint8 images in 0..255, or float images in [0, 1].
        mean, std: per channel, on the [0, 1] scale.
    """
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    m, s = channel_stats(tuple(mean), tuple(std), x.device)
    return (x - m) / s


def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator, scale=(0.2, 1.0),
                             ratio=(3 / 4, 4 / 3), flip: bool = True, out_size: int | None = None,
                             mode: str = "bilinear") -> torch.Tensor:
    """Per-sample random resized crop and horizontal flip, batched: (N, C, H, W) float -> (N, C, s, s).

    One affine sampling grid per image (the crop box and the flip): on a GPU everything runs there.

    Args:
        x: float images (N, C, H, W).
        generator: draws the crops and flips; it must live on ``x``'s device.
        scale: the crop's area as a fraction of the image's, drawn uniformly from this range.
        ratio: the crop's aspect ratio, drawn log-uniformly from this range.
        flip: flip half of the images horizontally.
        out_size: the output side s; None keeps H.
        mode: the sampling of ``grid_sample``; "nearest" for label maps.
    """
    n, _, h, w = x.shape
    out, dev = out_size or h, x.device
    r = torch.rand(n, 4, generator=generator, device=dev)
    area = scale[0] + (scale[1] - scale[0]) * r[:, 0]
    log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * r[:, 1]
    aspect = torch.exp(log_ratio)
    cw = torch.sqrt(area * aspect).clamp(max=1.0)  # crop size as a fraction of the image side
    ch = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (r[:, 2] * 2 - 1) * (1 - cw)  # centre in [-1, 1] keeping the crop inside
    cy = (r[:, 3] * 2 - 1) * (1 - ch)
    sign = (torch.where(torch.rand(n, generator=generator, device=dev) < 0.5, -1.0, 1.0) if flip
            else torch.ones(n, device=dev))
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = cw * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = ch, cy
    grid = F.affine_grid(theta.to(x.dtype), (n, x.shape[1], out, out), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=False)
