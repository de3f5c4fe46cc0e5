"""MAE pretraining throughput: images/s, GFLOP per image and MFU of maelib's pretraining step.

Two configurations, as in the original MAE code's reference measurements:
- ViT-Tiny/8 on 64x64 images (dim 192, depth 12, 3 heads; decoder 128 wide, 4 blocks), batch 1024;
- ViT-B/16 on 224x224 images (dim 768, depth 12, 12 heads; decoder 512 wide, 8 blocks), batch 256.
A step is forward + backward + AdamW (fused on CUDA) with mask ratio 0.75 on synthetic data, bf16
autocast on CUDA, optionally torch.compile. FLOPs are counted by torch's FlopCounterMode; MFU divides
the achieved FLOP/s by the device's peak (bf16 dense: H100 SXM 989 TFLOP/s, H200 989 TFLOP/s; on a
CPU no peak is assumed and MFU is not printed).

The end-to-end check (``--epoch``) times one pretraining epoch of the image chapter's real loader on
the staged 20-class TinyImageNet subset (data held on the device, crop/flip/normalise on the device)
and scales it to the 100,000 images of the full training set.

    python benchmarks/mae_throughput.py                # both configurations, on CUDA when present
    python benchmarks/mae_throughput.py --compile --epoch
    python benchmarks/mae_throughput.py --config tiny --batch 64 --steps 3   # a quick CPU look
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d
from maelib.train import autocast, pick_device

CONFIGS = {
    "tiny": dict(img=64, patch=8, dim=192, depth=12, heads=3, decoder_dim=128, decoder_depth=4, decoder_heads=4,
                 batch=1024, reference=19_000, target=47_000),
    "base": dict(img=224, patch=16, dim=768, depth=12, heads=12, decoder_dim=512, decoder_depth=8, decoder_heads=16,
                 batch=256, reference=2_840, target=5_100),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def build(c: dict) -> MaskedAutoencoder:
    return MaskedAutoencoder(Patches2d(c["img"], c["patch"]), c["dim"], c["depth"], c["heads"], c["decoder_dim"],
                             c["decoder_depth"], c["decoder_heads"], norm_target=True)


def flops_per_image(c: dict) -> float:
    model = build(c)
    x = torch.randn(2, 3, c["img"], c["img"])
    with FlopCounterMode(display=False) as counter:
        model(x, 0.75)[0].backward()
    return counter.get_total_flops() / 2


def peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def throughput(c: dict, device: torch.device, batch: int, steps: int, warmup: int, compile_: bool) -> float:
    torch.manual_seed(0)
    model = build(c).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05,
                            fused=device.type == "cuda")
    x = torch.randn(batch, 3, c["img"], c["img"], device=device)

    def step(inp):
        with autocast(device):
            loss = model(inp, 0.75)[0]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    run = torch.compile(step) if compile_ else step
    for _ in range(warmup):
        run(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        run(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def epoch_time(device: torch.device, batch: int) -> tuple[float, int]:
    """One image-chapter pretraining epoch (full-profile model) on the staged subset: (seconds, images)."""
    from maelib import images, profiles

    p = profiles.resolve("images", "full", batch_size=batch, pretrain_epochs=1)
    data = images.load_data(p)
    mae = images.make_mae(p)
    t = time.perf_counter()
    images.pretrain(mae, data, p, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, len(data["train"][1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    ap.add_argument("--batch", type=int, default=None, help="override the configuration's batch size")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--epoch", action="store_true", help="also time one real-data epoch (staged TinyImageNet)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; bf16 autocast: {device.type == 'cuda'}; torch.compile: {args.compile}")
    print(f"{'config':6s} {'batch':>6s} {'images/s':>10s} {'GFLOP/img':>10s} {'TFLOP/s':>8s} {'MFU':>6s} "
          f"{'ref (orig MAE, H200)':>21s} {'target':>8s}")
    for key in (CONFIGS if args.config == "all" else [args.config]):
        c = CONFIGS[key]
        batch = args.batch or (c["batch"] if device.type == "cuda" else 32)
        steps = args.steps or (20 if device.type == "cuda" else 3)
        ips = throughput(c, device, batch, steps, warmup=3 if device.type == "cuda" else 1, compile_=args.compile)
        gflop = flops_per_image(c) / 1e9
        tflops = ips * gflop / 1e3
        pk = peak(device)
        mfu = f"{100 * tflops * 1e12 / pk:5.1f}%" if pk else "  n/a"
        print(f"{key:6s} {batch:6d} {ips:10.1f} {gflop:10.2f} {tflops:8.2f} {mfu:>6s} {c['reference']:21,d} "
              f"{c['target']:8,d}")
    if args.epoch:
        seconds, n = epoch_time(device, 256 if device.type == "cuda" else 64)
        print(f"end-to-end pretraining epoch on {n:,} staged images: {seconds:.2f} s ({n / seconds:,.0f} images/s); "
              f"100,000 images would take about {seconds * 100_000 / n:.1f} s per epoch")


if __name__ == "__main__":
    main()
