"""MAE pretraining throughput: images/s, GFLOP per image, MFU and peak memory of maelib's pretraining step.

Two configurations, as in the original MAE code's reference measurements (one H200, mask ratio 0.75):
- ``tiny``: ViT-Tiny/8 on 64x64 images (dim 192, depth 12, 3 heads; decoder 128 wide, 4 blocks), batch 1024;
- ``base``: ViT-B/16 on 224x224 images (dim 768, depth 12, 12 heads; decoder 512 wide, 8 blocks), batch 256.

The step timed is the one every chapter trains with: :func:`maelib.train.fit` (AdamW, fused on CUDA,
warmup + cosine schedule, bf16 autocast on CUDA) over synthetic images already on the device. Each
compile mode is a row: ``eager``, ``compile`` (torch.compile's default), ``max-autotune``
(``max-autotune-no-cudagraphs``) and ``cudagraphs`` (``reduce-overhead``: the step replayed as CUDA
graphs). The first epoch (warm-up, compilation) is left out; the rate is the median of the others.
FLOPs are counted by torch's FlopCounterMode; MFU divides the achieved FLOP/s by the device's dense
bf16 peak by its datasheet (H100 and H200 SXM: 989 TFLOP/s; about 790 was measured on this workplace's
machines for a large matrix product). On a CPU no peak is assumed and MFU is not printed. ``peak GiB``
is the most GPU memory the row's allocator held (data and model included; n/a on a CPU).

``--epoch`` times the image chapter's real pretraining (full-profile model and batch) on the staged
20-class TinyImageNet subset: data held on the device as uint8, crop/flip/normalise on the device, and
compares it with the step alone at the same batch size; it also scales it to the 100,000 images of the
full training set.

    python benchmarks/mae_throughput.py                        # both configurations, every mode on CUDA
    python benchmarks/mae_throughput.py --config tiny --modes eager cudagraphs --epoch
    python benchmarks/mae_throughput.py --config tiny --batch 32 --steps 3   # a quick CPU look
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch

from maelib.data import TensorLoader
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d
from maelib.train import TrainConfig, fit, pick_device, step_flops

CONFIGS = {
    "tiny": dict(img=64, patch=8, dim=192, depth=12, heads=3, decoder_dim=128, decoder_depth=4, decoder_heads=4,
                 batch=1024, reference=19_000, compiled_reference=45_100, target=47_000),
    "base": dict(img=224, patch=16, dim=768, depth=12, heads=12, decoder_dim=512, decoder_depth=8, decoder_heads=16,
                 batch=256, reference=2_840, compiled_reference=4_820, target=5_100),
}
MODES = {"eager": False, "compile": True, "max-autotune": "max-autotune-no-cudagraphs", "cudagraphs": "reduce-overhead"}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
MASK_RATIO = 0.75


def build(c: dict) -> MaskedAutoencoder:
    return MaskedAutoencoder(Patches2d(c["img"], c["patch"]), c["dim"], c["depth"], c["heads"],
                             decoder_dim=c["decoder_dim"], decoder_depth=c["decoder_depth"],
                             decoder_heads=c["decoder_heads"], norm_target=True)


def flops_per_image(c: dict) -> float:
    """Forward + backward FLOPs of one pretraining image (counted on the CPU, batch of 2)."""
    x = torch.randn(2, 3, c["img"], c["img"])
    return step_flops(build(c), lambda m, b: m(b, MASK_RATIO)[0], x) / 2


def peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def pretraining_step(model, batch):
    return model(batch[0], MASK_RATIO)[0]


def step_rate(c: dict, device: torch.device, batch: int, steps: int, epochs: int,
              mode) -> tuple[float, float, float | None]:
    """(images/s, first-epoch loss, peak GPU memory in GiB or None on a CPU) of ``fit`` on
    ``batch * steps`` synthetic images held on ``device``: the median over epochs 2..``epochs`` (the
    first one warms up and compiles)."""
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model = build(c)
    x = torch.randn(batch * steps, 3, c["img"], c["img"])
    loader = TensorLoader((x,), batch, shuffle=True, drop_last=True, device=device)
    cfg = TrainConfig(epochs=epochs, lr=1.5e-4, weight_decay=0.05, betas=(0.9, 0.95), compile=mode,
                      precision="bf16" if device.type == "cuda" else "fp32")  # as before maelib.precision
    history = fit(model, pretraining_step, loader, cfg, device, progress=False)
    seconds = statistics.median(history["epoch_s"].iloc[1:])
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return batch * steps / seconds, float(history["loss"].iloc[0]), memory


def count_syncs(fn, device: torch.device):
    """(fn(), how many calls made the host wait for the GPU), counted by CUDA's sync debug mode;
    (fn(), None) elsewhere."""
    if device.type != "cuda":
        return fn(), None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return result, sum("synchroniz" in str(w.message) for w in caught)


def real_epoch(device: torch.device, limit: int | None, epochs: int = 3) -> tuple[float, int, int, int | None]:
    """The image chapter's full-profile pretraining on the staged images: (median seconds per epoch
    after the first, images per epoch, batch size, host-GPU synchronisations in all)."""
    from maelib import images, profiles

    batch = min(profiles.PROFILES["images"]["full"]["batch_size"], limit or 10**9)
    p = profiles.resolve("images", "full", pretrain_epochs=epochs, limit=limit, batch_size=batch)
    data = images.load_data(p)
    history, syncs = count_syncs(lambda: images.pretrain(images.make_mae(p), data, p, device), device)
    n = len(data["train"][1]) // p.batch_size * p.batch_size  # drop_last
    return statistics.median(history["epoch_s"].iloc[1:]), n, p.batch_size, syncs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=None,
                    help="compile modes to time (default: all on CUDA, eager on a CPU)")
    ap.add_argument("--batch", type=int, default=None, help="override the configuration's batch size")
    ap.add_argument("--steps", type=int, default=None, help="steps per timed epoch")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per row, the first one untimed")
    ap.add_argument("--epoch", action="store_true", help="also time real-data epochs (staged TinyImageNet)")
    ap.add_argument("--epoch-limit", type=int, default=None,
                    help="images for --epoch (default: all on CUDA, 512 on a CPU)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    modes = args.modes or (list(MODES) if cuda else ["eager"])
    if not cuda and modes != ["eager"]:
        print("note: fit compiles on CUDA only; on a CPU every mode runs eager")
    steps, epochs = args.steps or (20 if cuda else 3), args.epochs or (4 if cuda else 2)
    print(f"device: {name}; torch {torch.__version__}; bf16 autocast: {cuda}; "
          f"{steps} steps per epoch, median of {epochs - 1} epochs after a warm-up one")
    header = (f"{'config':6s} {'mode':12s} {'batch':>6s} {'images/s':>10s} {'GFLOP/img':>10s} {'TFLOP/s':>8s} "
              f"{'MFU':>6s} {'peak GiB':>8s} {'loss@1':>7s} {'orig MAE':>9s} {'compiled':>9s} {'target':>8s}")
    print(header)
    rates = {}
    for key in (CONFIGS if args.config == "all" else [args.config]):
        c = CONFIGS[key]
        batch = args.batch or (c["batch"] if cuda else 32)
        gflop = flops_per_image(c) / 1e9
        for mode in modes:
            ips, loss, memory = step_rate(c, device, batch, steps, epochs, MODES[mode])
            rates[key, mode] = ips
            tflops = ips * gflop / 1e3
            pk = peak(device)
            mfu = f"{100 * tflops * 1e12 / pk:5.1f}%" if pk else "n/a"
            mem = f"{memory:8.2f}" if memory is not None else f"{'n/a':>8s}"
            print(f"{key:6s} {mode:12s} {batch:6d} {ips:10.1f} {gflop:10.2f} {tflops:8.2f} {mfu:>6s} {mem} {loss:7.4f} "
                  f"{c['reference']:9,d} {c['compiled_reference']:9,d} {c['target']:8,d}", flush=True)
    print("orig MAE / compiled: the original MAE code on one H200 (fp16 + GradScaler, eager), and the same "
          "model with bf16 + torch.compile + fused AdamW")
    if args.epoch:
        limit = args.epoch_limit if args.epoch_limit is not None else (None if cuda else 512)
        seconds, n, batch, syncs = real_epoch(device, limit)
        synthetic, _, _ = step_rate(CONFIGS["tiny"], device, batch, max(n // batch, 1), 3, False)
        print(f"end-to-end pretraining epoch (eager, batch {batch}) on {n:,} staged images: {seconds:.2f} s, "
              f"{n / seconds:,.0f} images/s; the step alone on synthetic data: {synthetic:,.0f} images/s "
              f"(end-to-end / step = {n / seconds / synthetic:.2f}); 100,000 images: about "
              f"{seconds * 100_000 / n:.1f} s per epoch")
        if syncs is not None:
            print(f"host waited for the GPU {syncs} times in 3 epochs of {n // batch} steps (a few per epoch "
                  f"are the loss read-out, the evaluation and the epoch's order; one per step would be a bug)")


if __name__ == "__main__":
    main()
