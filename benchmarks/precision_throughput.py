"""Every chapter's real training step in fp32 and bf16, with the fused and the explicit attention path.

For each chapter's models at the quick profile (and the two larger image models the study will need),
:func:`maelib.train.fit` trains on synthetic inputs of the chapter's shapes for a few epochs; the rate is
the median items/s of the epochs after the first. Four configurations, side by side:

- ``fp32 fused``: the path before ``maelib.precision`` (fp32, PyTorch's fused attention kernel);
- ``fp32 explicit``, ``bf16 fused``;
- ``bf16 explicit``: what ``precision="auto"`` and :data:`maelib.precision.FUSED_ATTENTION` give on this CPU.

It also measures the machine's own bf16 and fp32 matrix-product rates and counts each step's FLOPs
(``torch.utils.flop_counter.FlopCounterMode``, forward and backward), so that the achieved FLOP rate reads
as a fraction of what the machine's bf16 matrix units deliver. Items are images, image crops, volume
crops, series windows and table rows.

    python benchmarks/precision_throughput.py                  # every model, 2 threads
    python benchmarks/precision_throughput.py --only images    # the rows whose name starts so
    python benchmarks/precision_throughput.py --threads 1      # one thread (two jobs side by side)
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from maelib import precision, profiles
from maelib.data import TensorLoader
from maelib.heads import ViTClassifier, encoder_like
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d
from maelib.train import TrainConfig, fit, step_flops

CONFIGS = [("fp32", True), ("fp32", False), ("bf16", True), ("bf16", False)]  # (precision, fused attention)


@dataclass
class Case:
    """One model's training step: ``build()`` -> model, ``step(model, batch)`` -> loss, ``batch`` the
    synthetic tensors of one batch (repeated ``steps`` times per epoch: enough for an epoch of about a
    second, so that timer noise does not decide a small model's row)."""

    name: str
    build: Callable
    step: Callable
    batch: tuple
    steps: int = 6


def image_mae(img, patch, dim, depth, heads, ddim, ddepth):
    return lambda: MaskedAutoencoder(Patches2d(img, patch), dim, depth, heads, decoder_dim=ddim, decoder_depth=ddepth,
                                     norm_target=True)


def image_cases(batch: int) -> list[Case]:
    q = profiles.resolve("images", "quick")
    sizes = {"images quick (64 px, patch 16, 128 x 6)": (64, 16, 128, 6, 4, 64, 1),
             "images 64 px, patch 8, 128 x 6": (64, 8, 128, 6, 4, 64, 1),
             "images ViT-T/8 (192 x 12)": (64, 8, 192, 12, 3, 128, 4)}
    x, y = torch.randn(batch, 3, 64, 64), torch.randint(0, q.n_classes, (batch,))
    out = []
    for name, s in sizes.items():
        build = image_mae(*s)
        out.append(Case(f"{name}: pretrain", build, lambda m, b: m(b[0], 0.75)[0], (x,)))
        out.append(Case(f"{name}: fine-tune", lambda build=build: ViTClassifier(encoder_like(build(), pretrained=False,
                                                                                            learn_positions=True), 20),
                        lambda m, b: F.cross_entropy(m(b[0]), b[1], label_smoothing=0.1), (x, y)))
    return out


def segmentation_cases() -> list[Case]:
    from maelib.segmentation import ViTUPerNet

    p = profiles.resolve("segmentation", "quick")
    build = image_mae(p.img_size, p.patch_size, p.dim, p.depth, p.heads, p.decoder_dim, p.decoder_depth)
    x = torch.randn(p.batch_size, 3, p.img_size, p.img_size)
    y = torch.randint(0, 12, (p.batch_size, p.img_size, p.img_size))
    return [Case("segmentation quick: pretrain", build, lambda m, b: m(b[0], p.mask_ratio)[0], (x,)),
            Case("segmentation quick: UPerNet fine-tune",
                 lambda: ViTUPerNet(encoder_like(build(), pretrained=False, learn_positions=True), 12, p.width),
                 lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y))]


def volume_cases() -> list[Case]:
    from maelib import volumes

    p = profiles.resolve("volumes", "quick")
    x = torch.randn(2 * p.batch_size, 1, *p.roi)  # two crops a case
    y = torch.randint(0, 3, (2 * p.batch_size, 1, *p.roi))
    from monai.losses import DiceCELoss

    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    return [Case("volumes quick: MONAI MAE pretrain", lambda: volumes.make_mae(p, p.roi),
                 lambda m, b: volumes.mae_loss(m, b[0], p.mask_ratio), (x,), steps=60),
            Case("volumes quick: UNETR fine-tune", lambda: volumes.make_unetr(p, p.roi, 3),
                 lambda m, b: loss(m(b[0]), b[1]), (x, y), steps=4)]


def series_cases() -> list[Case]:
    from maelib import forecast, series

    p = profiles.resolve("series", "quick")
    x, yn = torch.randn(p.batch_size, p.lag), torch.randn(p.batch_size, p.horizon)
    xl, yl = torch.randn(p.long_batch_size, p.long_lag), torch.randn(p.long_batch_size, p.long_horizons[0])
    return [Case("series quick: next-step transformer", lambda: series.FromLast(series.TransformerForecaster(
                     series.make_encoder(p, p.patch_size), p.horizon, p.mask_ratio)),
                 lambda m, b: F.mse_loss(m(b[0]), b[1]), (x, yn), steps=300),
            Case("series quick: GRU", lambda: series.FromLast(series.RecurrentForecaster("gru", p.horizon, p.hidden)),
                 lambda m, b: F.mse_loss(m(b[0]), b[1]), (x, yn), steps=300),
            Case("series quick: long-horizon PatchTST", lambda: forecast.PatchForecaster(forecast.encoder(p),
                                                                                         p.long_horizons[0]),
                 lambda m, b: F.mse_loss(m(b[0]), b[1]), (xl, yl), steps=60)]


def tabular_cases() -> list[Case]:
    from maelib import tabular

    p = profiles.resolve("tabular", "quick")
    n = 8
    x, obs = torch.randn(p.batch_size, n), torch.rand(p.batch_size, n) > 0.2
    return [Case("tabular quick: MAE imputer", lambda: tabular.make_mae(n, p), tabular.step_mae(p.mask_ratio),
                 (x, x * obs, obs), steps=200),
            Case("tabular quick: feed-forward imputer", lambda: tabular.FeedForwardImputer(n, p.hidden),
                 tabular.step_ff_fair(p.mask_ratio), (x, x * obs, obs), steps=2000)]


def matmul_rate(dtype: torch.dtype, shape=(8192, 192, 768), repeats: int = 20) -> float:
    """FLOP/s of a matrix product of ``shape`` (m, k, n) in ``dtype`` on this machine's threads."""
    m, k, n = shape
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * m * k * n * repeats / (time.perf_counter() - started)


def items_per_s(case: Case, prec: str, fused: bool, epochs: int = 4) -> float:
    """Median items/s over epochs 2..``epochs`` of ``fit`` in precision ``prec`` with the attention path
    ``fused`` (set for the CPU in maelib.precision for the duration)."""
    data = tuple(torch.cat([t] * case.steps) for t in case.batch)
    n = len(case.batch[0])
    loader = TensorLoader(data, n, shuffle=True, seed=0, drop_last=True)
    saved = precision.FUSED_ATTENTION["cpu"]
    precision.FUSED_ATTENTION["cpu"] = fused
    try:
        torch.manual_seed(0)
        history = fit(case.build(), case.step, loader, TrainConfig(epochs=epochs, lr=1e-4, precision=prec),
                      "cpu", progress=False)
    finally:
        precision.FUSED_ATTENTION["cpu"] = saved
    return n * case.steps / statistics.median(history["epoch_s"].iloc[1:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="the cases whose name starts with this")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-batch", type=int, default=128)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    bf16_rate, fp32_rate = matmul_rate(torch.bfloat16), matmul_rate(torch.float32)
    flags = sorted(precision.cpu_flags() & set(precision.CPU_BF16_FLAGS))
    print(f"{args.threads} thread(s); bf16 units: {', '.join(flags) or 'none'}; precision 'auto' -> "
          f"{precision.resolve_precision('auto', 'cpu')}; matrix product 8192x192x768: bf16 {bf16_rate / 1e12:.2f}, "
          f"fp32 {fp32_rate / 1e12:.2f} TFLOP/s ({bf16_rate / fp32_rate:.1f}x)\n")
    cases = [c for c in image_cases(args.image_batch) + segmentation_cases() + volume_cases() + series_cases()
             + tabular_cases() if c.name.startswith(args.only)]
    head = " | ".join(f"{p} {'fused' if f else 'explicit'}" for p, f in CONFIGS)
    print(f"| step | {head} | new / old | GFLOP/item | bf16 explicit: % of bf16 matmul |")
    print("|---|" + "---|" * (len(CONFIGS) + 3))
    for case in cases:
        rates = [items_per_s(case, p, f) for p, f in CONFIGS]
        per_item = step_flops(case.build(), case.step, case.batch) / len(case.batch[0])
        share = rates[-1] * per_item / bf16_rate
        print(f"| {case.name} | " + " | ".join(f"{r:,.0f}" for r in rates)
              + f" | {rates[-1] / rates[0]:.2f}x | {per_item / 1e9:.3f} | {100 * share:.0f}% |", flush=True)
    print("\nitems/s: images, image crops, volume crops, series windows, table rows; 'new / old' is bf16 explicit "
          "over fp32 fused (the path before maelib.precision)")


if __name__ == "__main__":
    main()
