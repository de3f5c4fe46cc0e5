"""Metrics: accuracy, confusion-matrix segmentation scores, regression errors, Wasserstein distance."""

from __future__ import annotations

import numpy as np
import torch


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1]: logits (N, K), y (N,)."""
    return (logits.argmax(dim=-1) == y).float().mean().item()


def mse(pred, true, mask=None) -> float:
    """Mean squared error, over the cells where ``mask`` is true when given.

    Args:
        pred, true: arrays (or tensors on the CPU) of one shape.
        mask: bool, of their shape; None scores every cell.
    """
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    err = (pred - true) ** 2
    return float(err[np.asarray(mask, bool)].mean() if mask is not None else err.mean())


def mae(pred, true, mask=None) -> float:
    """Mean absolute error, over the cells where ``mask`` is true when given (arguments as :func:`mse`'s)."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    err = np.abs(pred - true)
    return float(err[np.asarray(mask, bool)].mean() if mask is not None else err.mean())
