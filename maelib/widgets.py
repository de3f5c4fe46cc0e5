"""Interactive masking: an ipywidgets explorer for Jupyter, and a kernel-free control for the book.

Both show, for a trained image MAE, the original / masked / reconstruction / reconstruction with the
visible patches pasted back, side by side with a gap between them and a header over each column, and
the loss on hidden patches, as the mask ratio and the seed change. The loss is the one every number on
the masking page uses: the mean squared error on hidden pixels in [0, 1] RGB
(:func:`maelib.reference.hidden_mse`); hidden patches are drawn in opaque grey.
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
# each panel's column header, the same on every control of the page (mae-live.js says the same)
HEADERS = {"original": "original", "masked": "masked (hidden patches grey)",
           "reconstruction": "decoder output, every patch", "pasted": "visible patches pasted back"}
FRAME_GAP = 4  # pixels between two panels, and between two images, of a precomputed frame (at the MAE's size)
MIN_CHOICES = 12  # the fewest validation images a reader can pick from (issue #36: four were too few)


def spread_over_classes(labels, n: int) -> list[int]:
    """Indices of ``n`` images spread over the classes of ``labels`` (N,): the first image of each class
    in class order, then the second of each, and so on, so that ``n`` at most the number of classes
    gives one image of ``n`` different classes. Fewer when there are fewer images than ``n``."""
    labels = [int(v) for v in labels]
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    order = sorted(by_class)
    picked, rank = [], 0
    while len(picked) < n and any(rank < len(by_class[c]) for c in order):
        picked += [by_class[c][rank] for c in order if rank < len(by_class[c])][: n - len(picked)]
        rank += 1
    return picked


def gallery_names(labels, picked: list[int], class_names: list[str]) -> list[str]:
    """What the image choice calls each picked image: its class's name, numbered where a class comes
    back ("tabby cat", "tabby cat 2")."""
    seen: dict[str, int] = {}
    names = []
    for i in picked:
        name = class_names[int(labels[i])]
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return names


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
    """Panels side by side, upscaled with nearest neighbour, ``gap`` pixels apart on a white background."""
    h, w = panels[0].shape[:2]
    canvas = np.ones((h * scale, len(panels) * (w * scale + gap) - gap, 3))
    for i, p in enumerate(panels):
        big = np.kron(p.clip(0, 1), np.ones((scale, scale, 1)))
        canvas[:, i * (w * scale + gap): i * (w * scale + gap) + w * scale] = big
    return Image.fromarray((canvas * 255).round().astype(np.uint8))


def frame_grid(rows: list[list[np.ndarray]], gap: int = FRAME_GAP) -> Image.Image:
    """Images (S, S, 3) in [0, 1], one list of panels a row, on a transparent background with ``gap``
    pixels between panels and between rows: the page's colour shows between them, light or dark."""
    s = rows[0][0].shape[0]
    cols = len(rows[0])
    canvas = np.zeros((len(rows) * (s + gap) - gap, cols * (s + gap) - gap, 4))
    for r, panels in enumerate(rows):
        for c, p in enumerate(panels):
            y, x = r * (s + gap), c * (s + gap)
            canvas[y:y + s, x:x + s, :3] = p.clip(0, 1)
            canvas[y:y + s, x:x + s, 3] = 1
    return Image.fromarray((canvas * 255).round().astype(np.uint8), "RGBA")


def headers_html(widths: list[float], gaps: float, unit: str = "fr", style: str = "") -> str:
    """A row of the :data:`HEADERS` of :data:`PANELS` over columns of ``widths`` with ``gaps`` between
    them (in ``unit``: ``fr`` to share the width of an image that scales with the page, ``px`` for one
    that does not): each header stands over its own panel."""
    tracks = f" {gaps:g}{unit} ".join(f"{w:g}{unit}" for w in widths)
    cells = "".join(f'<div style="grid-column:{2 * i + 1};align-self:end;text-align:center">'
                    f'{html.escape(HEADERS[k])}</div>' for i, k in enumerate(PANELS))
    return (f'<div class="mae-headers" style="display:grid;grid-template-columns:{tracks};font-size:0.85em;'
            f'line-height:1.2;margin:0.3em 0 0.2em;{style}">{cells}</div>')


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
    scale, gap = 3, 12
    side = mae.tokenizer.img_size * scale
    picture = W.Image(format="png", layout=W.Layout(max_width="100%"))
    headers = W.HTML(headers_html([side] * len(PANELS), gap, "fr",
                                  f"width:{len(PANELS) * (side + gap) - gap}px;max-width:100%"))
    caption = W.HTML()

    def redraw(*_):
        frame = update(mae, pool[choice.value], ratio.value, seed.value)
        picture.value = _png(_strip([frame[k] for k in PANELS], scale, gap))
        caption.value = (f"{html.escape(label)}{': ' if label else ''}loss on hidden patches: "
                         f"<b>{frame['loss']:.4f}</b> (MSE on this image's hidden pixels, RGB in [0, 1]); the "
                         "decoder predicts every patch but was trained on hidden ones only")

    def add_upload(change):
        for item in change["new"]:
            pool.append(prepare_image(bytes(item["content"]), mae.tokenizer.img_size))
            labels.append(item["name"])
        choice.options = [(n, i) for i, n in enumerate(labels)]
        choice.value = len(pool) - 1

    for w, name in ((ratio, "ratio"), (seed, "seed"), (choice, "image"), (upload, "upload"), (picture, "picture"),
                    (headers, "headers"), (caption, "caption")):
        w.add_class(f"mae-{name}")  # CSS classes by which a browser test finds the explorer's parts
    for w in (ratio, seed, choice):
        w.observe(redraw, "value")
    upload.observe(add_upload, "value")
    redraw()
    return W.VBox([W.HBox([ratio, seed]), W.HBox([choice, upload]), headers, picture, caption])


def precompute(mae: MaskedAutoencoder, images: torch.Tensor, ratios, seeds) -> dict:
    """Frames for the static control: {seed: [(ratio, png_bytes, mean hidden loss), ...]}, one per ratio.
    A frame is one image a row, its :data:`PANELS` side by side, :data:`FRAME_GAP` pixels apart
    (:func:`frame_grid`)."""
    frames = {}
    for s in seeds:
        frames[s] = []
        for r in ratios:
            rec = reconstructions(mae, images, float(r), int(s))
            rows = [[rec[k][i] for k in PANELS] for i in range(len(images))]
            frames[s].append((float(r), _png(frame_grid(rows)), float(rec["loss"].mean())))  # the page scales
    return frames


def static_control(frames: dict, element_id: str = "mae-masking", label: str = "", n_images: int | None = None) -> str:
    """A self-contained HTML/JavaScript slider over precomputed frames: no kernel, no network, works
    from file://. Every frame is an inline PNG (data URI) of :func:`precompute`, under a header over
    each column. ``label`` names the model, ``n_images`` the number of images a frame's mean loss is over."""
    seeds = list(frames)
    ratios = [r for r, _, _ in frames[seeds[0]]]
    data = {str(s): [{"r": r, "src": "data:image/png;base64," + base64.b64encode(png).decode(), "loss": loss}
                     for r, png, loss in frames[s]] for s in seeds}
    start = min(range(len(ratios)), key=lambda i: abs(ratios[i] - 0.75))
    seed_opts = "".join(f'<option value="{html.escape(str(s))}">{html.escape(str(s))}</option>' for s in seeds)
    width = Image.open(io.BytesIO(frames[seeds[0]][0][1])).width  # the columns of the frame, in its pixels
    side = (width - (len(PANELS) - 1) * FRAME_GAP) / len(PANELS)
    headers = headers_html([side] * len(PANELS), FRAME_GAP)
    return f"""<div id="{element_id}" class="mae-static-control" style="max-width:100%">
<div style="display:flex;gap:0.4em 1.5em;align-items:center;flex-wrap:wrap">
<label>mask ratio <input type="range" class="ratio" min="0" max="{len(ratios) - 1}" step="1" value="{start}"
 style="width:12em;max-width:45vw;vertical-align:middle"> <b class="ratio-value"></b></label>
<label>seed <select class="seed">{seed_opts}</select></label>
<span>mean MSE on hidden pixels{f" of these {n_images} images" if n_images else ""}: <b class="loss-value"></b></span></div>
<div style="font-size:0.85em;opacity:0.75;margin:0.4em 0">{html.escape(label) + "; " if label else ""}the decoder
 predicts every patch but was trained on hidden ones only</div>
{headers}
<img class="frame" alt="MAE reconstructions: one image a row; original, masked, decoder output, visible pasted back"
 style="width:100%;image-rendering:pixelated">
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
