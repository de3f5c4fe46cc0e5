"""Per modality, only a tokenizer and its inverse.

A tokenizer turns a batch into ``(N, L, token_dim)`` tokens and back. It also says how tokens are placed
(``grid``), from which the fixed sin-cos positions are built. Volumes use MONAI's own 3D patch embedding
(see :mod:`maelib.volumes`), so only 2D patches, 1D patches and table columns live here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """Sin-cos embedding of 1D positions: (M,) -> (M, dim), ``dim`` even."""
    if dim % 2:
        raise ValueError(f"embedding dim must be even for sin-cos positions, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))  # (dim/2,) frequencies
    out = np.outer(positions.reshape(-1).astype(np.float64), omega)  # (M, dim/2) angles
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, dim) sines, then cosines


def sincos_pos_embed(dim: int, grid: tuple[int, ...]) -> torch.Tensor:
    """Fixed sin-cos positions for a 1D or 2D token grid: -> (prod(grid), dim).

    2D splits the channels in half between rows and columns, as the original MAE does.
    """
    if len(grid) == 1:
        return torch.from_numpy(sincos_1d(dim, np.arange(grid[0]))).float()
    if len(grid) == 2:
        if dim % 4:
            raise ValueError(f"embedding dim must be a multiple of 4 for 2D sin-cos positions, got {dim}")
        h, w = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")  # each (rows, cols)
        emb = np.concatenate([sincos_1d(dim // 2, h), sincos_1d(dim // 2, w)], axis=1)  # (L, dim) row-major
        return torch.from_numpy(emb).float()
    raise ValueError(f"grid must have 1 or 2 dimensions, got {grid}")


class Patches2d(nn.Module):
    """Square patches of an image: (N, C, H, W) <-> (N, L, p*p*C), L = (H/p)*(W/p), row-major."""

    def __init__(self, img_size: int = 64, patch_size: int = 8, channels: int = 3):
        super().__init__()
        if patch_size < 1 or img_size % patch_size:
            raise ValueError(f"img_size ({img_size}) must be a positive multiple of patch_size ({patch_size})")
        self.img_size, self.patch_size, self.channels = img_size, patch_size, channels
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.token_dim = patch_size * patch_size * channels
        self.learned_positions = False

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(n, c, h // p, p, w // p, p)  # (N, C, H/p, p, W/p, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(n, (h // p) * (w // p), p * p * c)  # (N, L, p*p*C)

    def untokenize(self, t: torch.Tensor) -> torch.Tensor:
        n = t.shape[0]
        p, c = self.patch_size, self.channels
        gh, gw = self.grid
        x = t.reshape(n, gh, gw, p, p, c)  # (N, H/p, W/p, p, p, C)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, gh * p, gw * p)  # (N, C, H, W)


class Patches1d(nn.Module):
    """Consecutive patches of a series: (N, T, C) <-> (N, T/p, p*C)."""

    def __init__(self, length: int, patch_size: int = 1, channels: int = 1):
        super().__init__()
        if patch_size < 1 or length % patch_size:
            raise ValueError(f"length ({length}) must be a positive multiple of patch_size ({patch_size})")
        self.length, self.patch_size, self.channels = length, patch_size, channels
        self.grid = (length // patch_size,)
        self.num_tokens = self.grid[0]
        self.token_dim = patch_size * channels
        self.learned_positions = False

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return x.reshape(n, self.num_tokens, self.token_dim)  # (N, T/p, p*C): p steps of every channel

    def untokenize(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], self.length, self.channels)  # (N, T, C)


class Columns(nn.Module):
    """One token per table column: (N, F) <-> (N, F, 1). Positions are learned column embeddings."""

    def __init__(self, n_columns: int):
        super().__init__()
        if n_columns < 1:
            raise ValueError(f"n_columns must be >= 1, got {n_columns}")
        self.grid = (n_columns,)
        self.num_tokens = n_columns
        self.token_dim = 1
        self.learned_positions = True

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1)  # (N, F, 1)

    def untokenize(self, t: torch.Tensor) -> torch.Tensor:
        return t.squeeze(-1)  # (N, F)
