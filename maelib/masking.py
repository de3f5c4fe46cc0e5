"""One masking recipe for every modality.

Each sample gets its own random permutation of its ``L`` tokens (the argsort of uniform noise, as in the
original MAE). The first ``n_keep = round(L * (1 - mask_ratio))`` tokens of the permutation stay visible;
``restore`` is the inverse permutation, so a decoder can put the visible tokens and mask tokens back in
their places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def check_ratio(name: str, value: float, low: float = 0.0, high: float = 1.0, closed_low: bool = True) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name`` and the allowed range.

    Args:
        name: the parameter's name, for the message.
        value: anything ``float`` accepts.
        low, high: the range's ends; ``high`` itself is never allowed.
        closed_low: whether ``low`` itself is allowed.
    """
    v = float(value)
    ok_low = v >= low if closed_low else v > low
    if not (ok_low and v < high):
        bracket = "[" if closed_low else "("
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}), got {value!r}")
    return v


def visible_count(length: int, mask_ratio: float) -> int:
    """How many of ``length`` tokens :func:`random_masking` leaves visible: the nearest whole number to
    ``length * (1 - mask_ratio)`` (the original MAE truncates, which hid 9 of 21 tokens at 0.4), at least one."""
    return max(1, math.floor(length * (1 - mask_ratio) + 0.5))


def check_split(length: int, n_visible: int, mask_ratio: float, source: str, name: str = "mask_ratio") -> None:
    """Refuse a mask that hides none of a sample's ``length`` tokens (nothing to reconstruct), shows none
    (nothing to encode), or hides a share more than half a token away from ``mask_ratio`` (a run recorded
    at 0.9999 that hid 15 of 16 tokens); ``source`` says where the token count comes from, ``name`` is the
    parameter the ratio was given as."""
    tokens = f"{length} token{'s' if length != 1 else ''}"
    if n_visible >= length:
        raise ValueError(f"{name} {mask_ratio:g} hides none of the {tokens} of a sample ({source}): "
                         f"nothing to reconstruct; use smaller patches or a higher {name}")
    if n_visible < 1:
        raise ValueError(f"{name} {mask_ratio:g} shows none of the {tokens} of a sample ({source}): "
                         f"nothing to encode; use smaller patches or a lower {name}")
    hidden = length - n_visible
    if abs(hidden / length - mask_ratio) > 0.5 / length + 1e-9:  # recorded as given, it would misstate the run
        low, high = 1 / length, (length - 1) / length
        raise ValueError(f"{name} {mask_ratio:g} hides {hidden} of the {tokens} of a sample ({source}), "
                         f"a ratio of {hidden / length:.4g}, not {mask_ratio:g}: give a ratio this token count "
                         f"realizes, a multiple of 1/{length} from {low:.4g} to {high:.4g}")


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
    """(N, L) uniform noise on ``device``, drawn on the generator's own device.

    A CPU generator thus gives the same masks on a GPU as on a CPU (CUDA refuses a CPU generator for a
    draw on the GPU).

    Args:
        n, length: the batch size N and the tokens per sample L.
        device: where the noise is returned.
        generator: draws the noise; the global generator of ``device`` when None.
    """
    where = generator.device if generator is not None else device
    return torch.rand(n, length, device=where, generator=generator).to(device)


def random_masking(n: int, length: int, mask_ratio: float, device=None,
                   generator: torch.Generator | None = None) -> Masking:
    """Draw per-sample random masks hiding ``mask_ratio`` of ``length`` tokens.

    Args:
        n, length: the batch size N and the tokens per sample L.
        mask_ratio: in [0, 1); at least one token always stays visible (:func:`visible_count`).
        device: where the masks are made.
        generator: draws the permutations; the global generator when None.

    Returns:
        A :class:`Masking` with the same number of visible tokens in every row (``valid`` None).
    """
    check_ratio("mask_ratio", mask_ratio)
    n_keep = visible_count(length, mask_ratio)
    noise = uniform_noise(n, length, device, generator)  # (N, L)
    shuffle = noise.argsort(dim=1)  # (N, L) a random permutation per row: its first n_keep stay visible
    restore = shuffle.argsort(dim=1)  # (N, L) the inverse permutation
    mask = torch.ones(n, length, device=device)
    mask[:, :n_keep] = 0  # (N, L) in shuffled order: 0 = visible
    mask = mask.gather(1, restore)  # (N, L) in the original order
    return Masking(keep=shuffle[:, :n_keep], restore=restore, mask=mask)


def masking_from_visible(visible: torch.Tensor, generator: torch.Generator | None = None,
                         width: int | None = None) -> Masking:
    """A :class:`Masking` that shows exactly the tokens where ``visible`` is True.

    Rows may show different numbers of tokens: ``keep`` is padded, and ``valid`` marks the real slots.
    Visible tokens come first in a random order, hidden ones after.

    Args:
        visible: (N, L) bool.
        generator: draws the order of the visible tokens; the global generator when None.
        width: the slots of ``keep``; None takes the largest count, read from the device (on a GPU, a wait
            per call). A training step passes ``width=L``: fixed shapes, no wait.
    """
    n, length = visible.shape
    noise = uniform_noise(n, length, visible.device, generator) + (~visible).float() * 2  # hidden ones sort last
    shuffle = noise.argsort(dim=1)  # (N, L) visible first, in a random order
    counts = visible.sum(dim=1)  # (N,) visible tokens per row
    n_keep = width if width is not None else max(1, int(counts.max().item()))
    valid = torch.arange(n_keep, device=visible.device)[None, :] < counts[:, None]  # (N, n_keep) real slots
    return Masking(keep=shuffle[:, :n_keep], restore=shuffle.argsort(dim=1), mask=(~visible).float(), valid=valid)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick tokens: x (N, L, D), idx (N, K) -> (N, K, D)."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

