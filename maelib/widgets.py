"""Interactive masking: an ipywidgets explorer for Jupyter, and a kernel-free control for the book.

Both show, for a trained image MAE, the original / masked / reconstruction / reconstruction with the
visible patches pasted back, and the loss on hidden patches, as the mask ratio and the seed change.
The loss is the one every number on the masking page uses: the mean squared error on hidden pixels in
[0, 1] RGB (:func:`maelib.reference.hidden_mse`); hidden patches are drawn in opaque grey.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import torch
from PIL import Image

from .images import resize
from .mae import MaskedAutoencoder
from .reference import masked_view, predictions


PANELS = ("original", "masked", "reconstruction", "pasted")


def reconstructions(mae: MaskedAutoencoder, x: torch.Tensor, mask_ratio: float, seed: int = 0) -> dict:
    """The panels of uint8 images (N, 3, H, W) at the MAE's size S, each (N, S, S, 3) numpy in [0, 1], and
    ``loss`` (N,), each image's MSE on its hidden pixels (what :func:`maelib.viz.reconstruction_comparison` draws)."""
    p = predictions(mae, x, mask_ratio, seed, baselines=False)
    panels = {"original": p["image"], "masked": masked_view(p["image"], p["hidden"]),
              "reconstruction": p["reconstruction"], "pasted": p["mae"]}
    return {**{k: v.permute(0, 2, 3, 1).cpu().numpy() for k, v in panels.items()}, "loss": p["mse"].cpu().numpy()}


def update(mae: MaskedAutoencoder, image: torch.Tensor, mask_ratio: float, seed: int) -> dict:
    """One explorer frame: uint8 image (3, H, W) -> the four panels (S, S, 3) in [0, 1] and the loss, at
    the MAE's image size S (the image is resized to it)."""
    rec = reconstructions(mae, image[None], mask_ratio, seed)
    return {**{k: rec[k][0] for k in PANELS}, "loss": float(rec["loss"][0])}


def _strip(panels: list[np.ndarray], scale: int = 3, gap: int = 4) -> Image.Image:
    """Panels side by side, upscaled with nearest neighbour, on a white background."""
    h, w = panels[0].shape[:2]
    canvas = np.ones((h * scale, len(panels) * (w * scale + gap) - gap, 3))
    for i, p in enumerate(panels):
        big = np.kron(p.clip(0, 1), np.ones((scale, scale, 1)))
        canvas[:, i * (w * scale + gap): i * (w * scale + gap) + w * scale] = big
    return Image.fromarray((canvas * 255).round().astype(np.uint8))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def prepare_image(data: bytes, size: int) -> torch.Tensor:
    """An uploaded image file -> uint8 (3, size, size), centre-cropped to a square."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def explorer(mae: MaskedAutoencoder, images: torch.Tensor, names: list[str] | None = None, label: str = ""):
    """The live explorer: sliders for mask ratio and seed, an image choice and an upload of one's own;
    ``label`` names the model shown (``"reference model (...)"``)."""
    import ipywidgets as W

    pool = list(resize(images, mae.tokenizer.img_size))
    labels = list(names or [f"validation image {i}" for i in range(len(pool))])
    ratio = W.FloatSlider(value=0.75, min=0.05, max=0.95, step=0.05, description="mask ratio", continuous_update=False)
    seed = W.IntSlider(value=0, min=0, max=99, description="seed", continuous_update=False)
    choice = W.Dropdown(options=[(n, i) for i, n in enumerate(labels)], description="image")
    upload = W.FileUpload(accept="image/*", multiple=False, description="your image")
    picture = W.Image(format="png")
    caption = W.HTML()

    def redraw(*_):
        frame = update(mae, pool[choice.value], ratio.value, seed.value)
        picture.value = _png(_strip([frame[k] for k in PANELS]))
        caption.value = (f"{html.escape(label)}{': ' if label else ''}original / masked (hidden patches grey) / "
                         f"reconstruction / visible pasted back &mdash; loss on hidden patches: "
                         f"<b>{frame['loss']:.4f}</b> (MSE on this image's hidden pixels, RGB in [0, 1])")

    def add_upload(change):
        for item in change["new"]:
            pool.append(prepare_image(bytes(item["content"]), mae.tokenizer.img_size))
            labels.append(item["name"])
        choice.options = [(n, i) for i, n in enumerate(labels)]
        choice.value = len(pool) - 1

    for w, name in ((ratio, "ratio"), (seed, "seed"), (choice, "image"), (upload, "upload"), (picture, "picture"),
                    (caption, "caption")):
        w.add_class(f"mae-{name}")  # CSS classes by which a browser test finds the explorer's parts
    for w in (ratio, seed, choice):
        w.observe(redraw, "value")
    upload.observe(add_upload, "value")
    redraw()
    return W.VBox([W.HBox([ratio, seed]), W.HBox([choice, upload]), picture, caption])


def precompute(mae: MaskedAutoencoder, images: torch.Tensor, ratios, seeds) -> dict:
    """Frames for the static control: {seed: [(ratio, png_bytes, mean hidden loss), ...]}, one per ratio."""
    frames = {}
    for s in seeds:
        frames[s] = []
        for r in ratios:
            rec = reconstructions(mae, images, float(r), int(s))
            rows = [np.concatenate([rec[k][i] for k in PANELS], axis=1) for i in range(len(images))]
            frames[s].append((float(r), _png(_strip([np.concatenate(rows, axis=0)], scale=1)),  # the page scales
                              float(rec["loss"].mean())))
    return frames


def static_control(frames: dict, element_id: str = "mae-masking", label: str = "", n_images: int | None = None) -> str:
    """A self-contained HTML/JavaScript slider over precomputed frames: no kernel, no network, works
    from file://. Every frame is an inline PNG (data URI). ``label`` names the model, ``n_images`` the
    number of images a frame's mean loss is over."""
    seeds = list(frames)
    ratios = [r for r, _, _ in frames[seeds[0]]]
    data = {str(s): [{"r": r, "src": "data:image/png;base64," + base64.b64encode(png).decode(), "loss": loss}
                     for r, png, loss in frames[s]] for s in seeds}
    start = min(range(len(ratios)), key=lambda i: abs(ratios[i] - 0.75))
    seed_opts = "".join(f'<option value="{html.escape(str(s))}">{html.escape(str(s))}</option>' for s in seeds)
    return f"""<div id="{element_id}" class="mae-static-control" style="max-width:100%">
<div style="display:flex;gap:1.5em;align-items:center;flex-wrap:wrap">
<label>mask ratio <input type="range" class="ratio" min="0" max="{len(ratios) - 1}" step="1" value="{start}"
 style="width:16em;vertical-align:middle"> <b class="ratio-value"></b></label>
<label>seed <select class="seed">{seed_opts}</select></label>
<span>mean MSE on hidden pixels{f" of these {n_images} images" if n_images else ""}: <b class="loss-value"></b></span></div>
<div style="font-size:0.85em;opacity:0.75;margin:0.4em 0">{html.escape(label) + ": " if label else ""}columns: original /
 masked (hidden patches grey) / the decoder’s output for every patch (trained on hidden ones only) / visible
 pasted back</div>
<img class="frame" alt="MAE reconstructions" style="width:100%;image-rendering:pixelated">
<script type="application/json" class="frames">{json.dumps(data)}</script>
<script>
(function () {{
  var root = document.getElementById({json.dumps(element_id)});
  var frames = JSON.parse(root.querySelector("script.frames").textContent);
  var slider = root.querySelector("input.ratio"), seed = root.querySelector("select.seed");
  function show() {{
    var f = frames[seed.value][parseInt(slider.value, 10)];
    root.querySelector("img.frame").src = f.src;
    root.querySelector(".ratio-value").textContent = f.r.toFixed(2);
    root.querySelector(".loss-value").textContent = f.loss.toFixed(4);
  }}
  slider.addEventListener("input", show);
  seed.addEventListener("change", show);
  show();
}})();
</script></div>"""


@torch.no_grad()
def loss_curve(mae: MaskedAutoencoder, images: torch.Tensor, ratios, seeds) -> "pd.DataFrame":  # noqa: F821
    """Mean reconstruction loss on hidden patches for each (ratio, seed): the mask-ratio story."""
    import pandas as pd

    rows = [{"mask_ratio": float(r), "seed": int(s), "loss": float(reconstructions(mae, images, float(r), int(s))["loss"].mean())}
            for r in ratios for s in seeds]
    return pd.DataFrame(rows)
