"""One masking recipe for every modality.

Each sample gets its own random permutation of its ``L`` tokens (the argsort of uniform noise, as in the
original MAE). The first ``n_keep = int(L * (1 - mask_ratio))`` tokens of the permutation stay visible;
``restore`` is the inverse permutation, so a decoder can put the visible tokens and mask tokens back in
their places.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def check_ratio(name: str, value: float, low: float = 0.0, high: float = 1.0, closed_low: bool = True) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name`` and the allowed range."""
    v = float(value)
    ok_low = v >= low if closed_low else v > low
    if not (ok_low and v < high):
        bracket = "[" if closed_low else "("
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}), got {value!r}")
    return v


def visible_count(length: int, mask_ratio: float) -> int:
    """How many of ``length`` tokens :func:`random_masking` leaves visible (at least one)."""
    return max(1, int(length * (1 - mask_ratio)))


def check_split(length: int, n_visible: int, mask_ratio: float, source: str) -> None:
    """Refuse a mask that hides none of a sample's ``length`` tokens (nothing to reconstruct) or shows
    none (nothing to encode); ``source`` says where the token count comes from."""
    if n_visible >= length:
        raise ValueError(f"mask_ratio {mask_ratio:g} hides none of the {length} token(s) of a sample ({source}): "
                         "nothing to reconstruct; use smaller patches or a higher mask_ratio")
    if n_visible < 1:
        raise ValueError(f"mask_ratio {mask_ratio:g} shows none of the {length} token(s) of a sample ({source}): "
                         "nothing to encode; use smaller patches or a lower mask_ratio")


@dataclass
class Masking:
    """The outcome of :func:`random_masking` for a batch of ``N`` sequences of ``L`` tokens.

    keep: (N, n_keep) indices of the visible tokens, in the order the encoder sees them.
    restore: (N, L) inverse permutation: ``shuffled.gather(1, restore)`` is the original order.
    mask: (N, L) float, 1 where a token is hidden, 0 where it is visible (original order).
    valid: (N, n_keep) bool or None; when rows keep different numbers of tokens (tables with missing
        cells), False marks padding slots in ``keep`` that the encoder must ignore.
    """

    keep: torch.Tensor
    restore: torch.Tensor
    mask: torch.Tensor
    valid: torch.Tensor | None = None

    @property
    def n_keep(self) -> int:
        return self.keep.shape[1]


def uniform_noise(n: int, length: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, L) uniform noise on ``device``, drawn on the generator's own device: a CPU generator gives the
    same masks on a GPU as on a CPU (and CUDA refuses a CPU generator for a draw on the GPU)."""
    where = generator.device if generator is not None else device
    return torch.rand(n, length, device=where, generator=generator).to(device)


def random_masking(n: int, length: int, mask_ratio: float, device=None,
                   generator: torch.Generator | None = None) -> Masking:
    """Draw per-sample random masks hiding ``mask_ratio`` of ``length`` tokens.

    ``mask_ratio`` is in [0, 1); at least one token always stays visible.
    """
    check_ratio("mask_ratio", mask_ratio)
    n_keep = visible_count(length, mask_ratio)
    noise = uniform_noise(n, length, device, generator)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    mask = torch.ones(n, length, device=device)
    mask[:, :n_keep] = 0
    mask = mask.gather(1, restore)
    return Masking(keep=shuffle[:, :n_keep], restore=restore, mask=mask)


def masking_from_visible(visible: torch.Tensor, generator: torch.Generator | None = None,
                         width: int | None = None) -> Masking:
    """A :class:`Masking` that shows exactly the tokens where ``visible`` (N, L) bool is True.

    Rows may show different numbers of tokens: ``keep`` is padded to ``width`` slots (the largest
    count when None, which reads it from the device: on a GPU a wait per call) and ``valid`` marks the
    real slots. Visible tokens come first in a random order, hidden ones after. A training step passes
    ``width=L``: fixed shapes, no wait.
    """
    n, length = visible.shape
    noise = uniform_noise(n, length, visible.device, generator) + (~visible).float() * 2
    shuffle = noise.argsort(dim=1)
    counts = visible.sum(dim=1)
    n_keep = width if width is not None else max(1, int(counts.max().item()))
    valid = torch.arange(n_keep, device=visible.device)[None, :] < counts[:, None]
    return Masking(keep=shuffle[:, :n_keep], restore=shuffle.argsort(dim=1), mask=(~visible).float(), valid=valid)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick tokens: x (N, L, D), idx (N, K) -> (N, K, D)."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

