"""The image MAE in the reader's browser: an ONNX export, the files the book publishes, the page's control.

On the masking chapter's page the reader hides and shows patches, and the page itself computes the
reconstruction and the loss on hidden patches with onnxruntime-web (WebAssembly, one thread): no kernel,
no server, nothing sent anywhere. Three pieces:

- :func:`export`: an image MAE -> one ``.onnx`` file with static shapes (:class:`BrowserMAE`);
- :func:`stage`: at build time, that file for the chapter's checkpoint and the runtime's three files
  (from ``node_modules``, installed by ``npm ci`` from package-lock.json) go into the folder Sphinx
  publishes as ``_static/`` (``html_static_path`` in _config.yml);
- :func:`control`: the HTML the chapter displays; ``book/_static/mae-live.js`` builds the control in it.

Where the model or the runtime is missing, or cannot run (a page opened from ``file://``), the control
says so in one line and the precomputed slider of :func:`maelib.widgets.static_control` still works.

The exported graph, for an MAE of image size S and L patches:

======  =============  =========================  ===================================================
        name           shape, dtype               meaning
======  =============  =========================  ===================================================
input   image          (1, 3, S, S) float32       normalised with :data:`maelib.images.MEAN`, ``STD``
input   visible        (1, L) float32             1 where the encoder sees a patch, 0 where it is hidden
output  reconstruction (1, 3, S, S) float32       the decoder's prediction of every patch, in [0, 1]
output  pasted         (1, 3, S, S) float32       visible patches as given, hidden ones predicted, [0, 1]
output  loss           () float32                 mean squared error on hidden pixels in [0, 1] RGB
                                                  (:func:`maelib.reference.hidden_mse`; 0 if none hidden)
======  =============  =========================  ===================================================
"""

from __future__ import annotations

import base64
import copy
import html
import json
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from .files import atomic_path
from .images import MEAN, STD, load_mae
from .mae import MaskedAutoencoder
from .masking import masking_from_visible


ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
RUNTIME_DIST = Path("onnxruntime-web") / "dist"
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
MODEL_FILE = "mae.onnx"
STAGED = "mae-live"  # the folder under _static/ that holds the model and the runtime
PAGE_STATIC = "../../_static"  # _static/ seen from a chapter's page (_build/html/book/<folder>/06_masking.html)


def static_dir(root: str | Path) -> Path:
    """The folder of the book rooted at ``root`` that Sphinx publishes as ``_static/``."""
    return Path(root) / "book" / "_static"


class BrowserMAE(nn.Module):
    """What the page runs: ``(image (1, 3, S, S), visible (1, L)) -> (reconstruction, pasted, loss)``.

    The same computation as :meth:`MaskedAutoencoder.forward` and :meth:`MaskedAutoencoder.reconstruct`
    for a mask given patch by patch: :func:`masking_from_visible` with ``width=L`` keeps the shapes fixed
    whatever the number of visible patches (padding slots are marked invalid and never attended to).
    With a normalised target, predictions are de-normalised with the visible patches' statistics. The
    loss is the masking page's one measure, the MSE on hidden pixels in [0, 1] RGB.
    """

    def __init__(self, mae: MaskedAutoencoder):
        super().__init__()
        self.mae = mae
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, visible: torch.Tensor):
        mae = self.mae
        tokens = mae.tokenizer.tokenize(image)
        masking = masking_from_visible(visible > 0.5, width=visible.shape[1])
        pred = mae.forward_decoder(mae.forward_encoder(tokens, masking), masking)
        recon, pasted = mae.reconstruct(image, pred, masking.mask)
        hidden = mae.tokenizer.untokenize(masking.mask.unsqueeze(-1).expand_as(tokens).to(image.dtype))
        pasted, original = self.to_unit(pasted), self.to_unit(image)
        loss = ((pasted - original) ** 2 * hidden).sum() / hidden.sum().clamp(min=1)  # the page's one loss
        return self.to_unit(recon), pasted, loss

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (1, 3, S, S) -> pixel values in [0, 1]."""
        return (x * self.std + self.mean).clamp(0, 1)


def export(mae: MaskedAutoencoder, path: str | Path, fp16_weights: bool = False) -> Path:
    """Write ``mae`` (encoder and decoder, float32, CPU) as one ONNX file at ``path`` (see the module's
    table for its inputs and outputs); returns ``path``. With ``fp16_weights`` the weight matrices are
    stored in float16 and cast to float32 where they are used (:func:`store_fp16`): half the download,
    and exactly the same model when its weights were float16 to begin with.

    Uses the TorchScript-based exporter (``dynamo=False``): the mask's random order of visible tokens
    (a ``torch.rand`` in :func:`masking_from_visible`, which changes no result) has no translation in the
    torch.export-based one.
    """
    model = BrowserMAE(copy.deepcopy(mae)).cpu().float().eval()  # the caller's model stays where and as it was
    size, length = mae.tokenizer.img_size, mae.tokenizer.num_tokens
    example = (torch.zeros(1, 3, size, size), torch.ones(1, length))
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's own notices of its deprecation
        torch.onnx.export(model, example, str(tmp), input_names=["image", "visible"],
                          output_names=["reconstruction", "pasted", "loss"], opset_version=17, dynamo=False)
        if fp16_weights:
            store_fp16(tmp)
    return Path(path)


def store_fp16(path: str | Path, min_size: int = 1024) -> None:
    """Rewrite the ONNX file at ``path`` so that every float32 initializer of at least ``min_size``
    values is stored as float16 and feeds a Cast back to float32: the graph computes as before."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph, casts = model.graph, []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < min_size:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)  # the casts before every use: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(path))


def runtime_files(node_modules: str | Path = NODE_MODULES) -> list[Path]:
    """The onnxruntime-web files the page loads; FileNotFoundError names what to run when one is missing."""
    dist = Path(node_modules) / RUNTIME_DIST
    missing = [f for f in RUNTIME_FILES if not (dist / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {dist} (run `npm ci` in the repository root)")
    return [dist / f for f in RUNTIME_FILES]


def stage(root: str | Path, checkpoint_path: str | Path | None, node_modules: str | Path = NODE_MODULES) -> dict:
    """Put the browser model of an image-MAE checkpoint (:func:`maelib.images.load_mae`) and the runtime
    into ``static_dir(root) / "mae-live"``, for the next book build to publish.

    Never raises for what the page can do without: with no checkpoint, no runtime in ``node_modules``
    or a model that cannot be exported, the folder is removed (no stale model is published) and the
    page falls back to the precomputed slider. Returns ``{"staged": bool, "reason": str, "bytes":
    {file name: size}}``.
    """
    dest = static_dir(root) / STAGED
    shutil.rmtree(dest, ignore_errors=True)
    try:
        if not checkpoint_path or not Path(checkpoint_path).is_file():
            raise FileNotFoundError(f"no image-MAE checkpoint at {checkpoint_path}")
        files = runtime_files(node_modules)
        mae, _ = load_mae(checkpoint_path)
        with atomic_path(dest) as tmp:
            tmp.mkdir()
            for f in files:
                shutil.copyfile(f, tmp / f.name)
            export(mae, tmp / MODEL_FILE, fp16_weights=stored_fp16(checkpoint_path))
    except Exception as e:  # noqa: BLE001 - any failure leaves the page its fallback
        return {"staged": False, "reason": f"{type(e).__name__}: {e}", "bytes": {}}
    sizes = {f.name: f.stat().st_size for f in sorted(dest.iterdir())}
    return {"staged": True, "reason": f"model of {checkpoint_path}", "bytes": sizes}


def stored_fp16(checkpoint_path: str | Path) -> bool:
    """Whether an image-MAE checkpoint holds its weights in float16 (the committed models do): then its
    ONNX export stores them so too, at no loss."""
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
    return all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


def _png_uri(image: torch.Tensor) -> str:
    """uint8 (3, S, S) -> a PNG data URI (no colour profile, so a canvas reads back the same values)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def control(mae: MaskedAutoencoder, images: torch.Tensor, names: list[str] | None = None,
            static: str = PAGE_STATIC, element_id: str = "mae-live") -> str:
    """The HTML of the in-browser control for ``mae`` over uint8 ``images`` (N, 3, S, S) at the model's
    size S. ``static`` is the published ``_static/`` folder relative to the page; the script
    ``mae-live.js`` there builds the control, loads ``mae-live/mae.onnx`` with the runtime beside it, and
    otherwise leaves a one-line note. Nothing is loaded from the network.
    """
    size, patch = mae.tokenizer.img_size, mae.tokenizer.patch_size
    if tuple(images.shape[1:]) != (3, size, size) or images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (N, 3, {size}, {size}), got {images.dtype} {tuple(images.shape)}")
    names = list(names or [f"validation image {i + 1}" for i in range(len(images))])
    pool = [{"name": n, "src": _png_uri(x)} for n, x in zip(names, images)]
    config = {"size": size, "patch": patch, "mean": list(MEAN), "std": list(STD), "base": f"{static}/{STAGED}/"}
    static_attr = html.escape(static, quote=True)
    pool_json = json.dumps(pool).replace("<", "\\u003c")  # no "</script>" can end the data early
    return f"""<div id="{html.escape(element_id)}" class="mae-live" data-config="{html.escape(json.dumps(config))}">
<link rel="stylesheet" href="{static_attr}/mae-live.css">
<p class="mae-live-note">The in-browser model needs JavaScript and this page served over HTTP; the precomputed slider
below works anywhere.</p>
<script type="application/json" class="mae-live-images">{pool_json}</script>
<script src="{static_attr}/mae-live.js"></script>
</div>"""
