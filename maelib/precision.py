"""Arithmetic precision and the attention path of every training, decided in one place.

``precision`` is ``"fp32"`` or ``"bf16"`` (a chapter parameter; ``"auto"`` resolves here). Under ``bf16``
the forward and backward passes run in bfloat16 autocast; master weights, optimizer state, losses and
metrics stay in float32 (``train.fit`` keeps them so). ``auto`` means bf16 where the device multiplies
bf16 matrices fast: CUDA, or a CPU with AMX (``amx_bf16``) or AVX-512 BF16 (``avx512_bf16``); fp32 elsewhere.

The attention path follows the device, as measured by ``benchmarks/precision_throughput.py`` (2026-12-04,
2 cores with AVX-512 BF16): on a CPU the explicit path (two matrix products and a softmax) beat PyTorch's
fused ``scaled_dot_product_attention`` (or matched it) for the image, segmentation, volume and series models in
both precisions (in bf16 by 1.05-2.8x: the fused kernel's CPU backward took half the step), and lost only for the
tabular MAE in fp32 (10.9k against 12.5k rows/s, a chapter of under a minute); on CUDA the fused kernel is
the fast one. :data:`FUSED_ATTENTION` holds the decision, and :func:`set_attention_path` applies it to
timm's blocks and MONAI's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")
FUSED_ATTENTION = {"cuda": True, "cpu": False}  # device type -> fused kernel (else explicit); see the docstring
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def fast_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bf16 matrices faster than fp32 ones: CUDA, or a CPU with AMX or
    AVX-512 BF16 units."""
    kind = torch.device(device).type
    if kind == "cuda":
        return True
    return kind == "cpu" and any(f in cpu_flags() for f in CPU_BF16_FLAGS)


def resolve_precision(precision: str | None, device: torch.device | str) -> str:
    """``"auto"`` (or None) -> ``"bf16"`` where :func:`fast_bf16`, else ``"fp32"``; fp32 and bf16 as given."""
    if precision in (None, "auto"):
        return "bf16" if fast_bf16(device) else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of 'auto', 'fp32', 'bf16', got {precision!r}")
    return precision


def autocast(device: torch.device | str, precision: str = "fp32"):
    """bf16 autocast on ``device`` under ``precision="bf16"``; a no-op under fp32."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=resolve_precision(precision, device) == "bf16")


def fused_attention(device: torch.device | str) -> bool:
    """The attention path for ``device`` (:data:`FUSED_ATTENTION`; unknown devices keep the fused kernel)."""
    return FUSED_ATTENTION.get(torch.device(device).type, True)


def set_attention_path(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Set every attention block of ``model`` (timm's ``fused_attn``, MONAI's ``use_flash_attention``) to
    the path :func:`fused_attention` names for ``device``. The two paths compute the same attention; a
    MONAI block that saves its attention maps or adds relative positions keeps the explicit path, which
    alone supports them. Returns ``model``."""
    fused = fused_attention(device)
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = fused
        if hasattr(m, "use_flash_attention"):
            explicit_only = getattr(m, "save_attn", False) or getattr(m, "rel_positional_embedding", None) is not None
            m.use_flash_attention = fused and not explicit_only
    return model
