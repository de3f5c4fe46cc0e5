"""The masking page's in-browser MAE: time of one update in headless Chromium, and bytes the reader loads.

An update is what the page does when the reader hides or shows a patch: normalise the image, run the
ONNX model with onnxruntime-web (WebAssembly, one thread), draw the reconstruction and the pasted image,
print the loss. The model is the one the book ships, the image chapter's quick profile (64-pixel images,
16-pixel patches, ViT 128 wide and 6 deep with 4 heads, decoder 64 wide with 1 block), randomly
initialised unless ``--checkpoint`` names a trained one (same shapes, same cost). The first updates
(WebAssembly compilation, warm-up) are left out; the median and 90th percentile of the others are shown,
each with a different random mask. Targets: under 200 ms an update, model plus runtime under 20 MB.
Needs Chromium (Debian's package) and ``npm ci``.

    python benchmarks/browser_mae.py
    python benchmarks/browser_mae.py --checkpoint ~/.cache/maelib/runs/images-quick-.../mae_final.pt --updates 50
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

from maelib import browser, images, profiles, webmodel

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS, TARGET_BYTES = 200, 20_000_000

TIME_UPDATES = """async ([n, warmup]) => {
  const api = document.querySelector('.mae-live').maeLive;
  await api.start();  // what the reader's button does
  const L = api.last.visible.length, inPage = [], total = [];
  for (let i = 0; i < n + warmup; i++) {
    const visible = Array.from({length: L}, () => (Math.random() < 0.25 ? 1 : 0));
    const t0 = performance.now();
    const r = await api.setVisible(visible);
    if (i >= warmup) { inPage.push(r.ms); total.push(performance.now() - t0); }
  }
  return {inPage, total};
}"""


def quick_model():
    """A randomly initialised MAE of the image chapter's quick profile, and that profile's parameters."""
    p = SimpleNamespace(**profiles.PROFILES["images"]["quick"], profile="quick")
    torch.manual_seed(0)
    return images.make_mae(p).eval(), p


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="an image-MAE mae_final.pt (default: a random quick-profile model)")
    ap.add_argument("--updates", type=int, default=30, help="timed updates (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="updates left out first (default 3)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "book"
        shutil.copytree(ROOT / "book" / "_static", site / "_static", ignore=shutil.ignore_patterns(webmodel.STAGED))
        if args.checkpoint:
            ckpt, what = Path(args.checkpoint), f"checkpoint {args.checkpoint}"
        else:
            mae, p = quick_model()
            ckpt, what = images.save_mae(mae, p, Path(tmp) / "mae_final.pt"), "quick profile, random weights"
        report = webmodel.stage(Path(tmp), ckpt)
        if not report["staged"]:
            raise SystemExit(f"could not stage the model: {report['reason']}")
        mae, _ = images.load_mae(ckpt)
        size = mae.tokenizer.img_size
        generator = torch.Generator().manual_seed(0)
        pictures = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=generator)
        (site / "executed").mkdir()
        (site / "executed" / "page.html").write_text(
            "<!doctype html><html><body>" + webmodel.control(mae, pictures, static="../_static") + "</body></html>")
        with browser.serve(site) as url, browser.open_page(timeout_s=300) as page:
            page.goto(url + "executed/page.html")
            page.wait_for_selector(".mae-live[data-state=idle], .mae-live[data-state=unavailable]", state="attached")
            if page.is_visible(".mae-live-start"):
                page.click(".mae-live-start")  # as the reader does: nothing of the model loads before
            page.wait_for_selector(".mae-live[data-state=ready], .mae-live[data-state=unavailable]", state="attached")
            if page.get_attribute(".mae-live", "data-state") != "ready":
                raise SystemExit(page.inner_text(".mae-live-note"))
            times = page.evaluate(TIME_UPDATES, [args.updates, args.warmup])

    sizes = report["bytes"]
    model_b = sizes[webmodel.MODEL_FILE]
    runtime_b = sum(b for name, b in sizes.items() if name != webmodel.MODEL_FILE)
    n_params = sum(t.numel() for t in mae.parameters())
    cfg = mae.config
    print(f"model: {what}; {size}x{size} images, {mae.tokenizer.patch_size}-px patches "
          f"({mae.tokenizer.num_tokens} patches), ViT {cfg['dim']}x{cfg['depth']}, decoder "
          f"{cfg['decoder_dim']}x{cfg['decoder_depth']}, {n_params / 1e6:.2f} M parameters; Chromium "
          f"{page_version()}, onnxruntime-web wasm, 1 thread")
    rows = [
        ("update, model run + drawing (ms), median", statistics.median(times["inPage"]), TARGET_MS),
        ("update, model run + drawing (ms), p90", _p90(times["inPage"]), TARGET_MS),
        ("update as the page's caller sees it (ms), median", statistics.median(times["total"]), TARGET_MS),
        ("model file mae.onnx (MB)", model_b / 1e6, None),
        ("runtime: ort.wasm.min.js + .wasm + .mjs (MB)", runtime_b / 1e6, None),
        ("model + runtime (MB)", (model_b + runtime_b) / 1e6, TARGET_BYTES / 1e6),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':{width}s}  {'value':>8s}  {'target':>8s}  met")
    for name, value, target in rows:
        met = "" if target is None else ("yes" if value < target else "NO")
        print(f"{name:{width}s}  {value:8.2f}  {'' if target is None else f'< {target:g}':>8s}  {met}")
    print(f"({args.updates} timed updates after {args.warmup} left out, each with a new random mask)")


def _p90(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.9 * len(values)))]


def page_version() -> str:
    import subprocess

    exe = browser.chromium()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
    return next((w for w in out if w[:1].isdigit()), "?")


if __name__ == "__main__":
    main()
