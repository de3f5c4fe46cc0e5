"""The image MAE in the reader's browser (maelib/webmodel.py, book/_static/mae-live.js).

ONNX Runtime (Python) must give what PyTorch gives for the same image and mask (1e-4), and the page, in
headless Chromium over a local HTTP server, what PyTorch gives for a fixed mask (1e-3). The browser
tests skip only where Chromium or node_modules (``npm ci``) is missing.
"""

import io
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import ROOT
from maelib import browser, images, webmodel
from maelib import reference as reference_mod
from maelib.data import normalize
from maelib.mae import MaskedAutoencoder
from maelib.masking import masking_from_visible
from maelib.tokens import Patches2d

SIZE, PATCH = 32, 8
L = (SIZE // PATCH) ** 2


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return MaskedAutoencoder(Patches2d(SIZE, PATCH), dim=32, depth=2, heads=2, decoder_dim=32, decoder_depth=1,
                             norm_target=True).eval()


@pytest.fixture(scope="module")
def pictures():
    """Three uint8 (3, 32, 32) images with structure (gradients and a square), not noise."""
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    out = []
    for k in range(3):
        r, g = (xx * (7 + k)) % 256, (yy * (5 + 3 * k)) % 256
        b = ((xx // (4 + k) + yy // 6) % 2) * 200 + 20
        out.append(torch.stack([r, g, b]).to(torch.uint8))
    return torch.stack(out)


def reference(mae, image: torch.Tensor, visible: torch.Tensor) -> dict:
    """PyTorch, without the export's wrapper: uint8 (3, S, S) and bool (L,) -> reconstruction and pasted
    (3, S, S) in [0, 1], and the loss on hidden patches: the MSE on hidden pixels, as every loss on the
    masking page (maelib.reference.hidden_mse)."""
    with torch.no_grad():
        x = normalize(image[None], images.MEAN, images.STD)
        tokens = mae.tokenizer.tokenize(x)
        m = masking_from_visible(visible[None], width=L)
        pred = mae.forward_decoder(mae.forward_encoder(tokens, m), m)
        recon, pasted = mae.reconstruct(x, pred, m.mask)
        hidden = mae.tokenizer.untokenize(m.mask[:, :, None].expand_as(tokens).float())
        loss = reference_mod.hidden_mse(images.denormalize(pasted), image[None].float() / 255, hidden)
        return {"reconstruction": images.denormalize(recon)[0].numpy(), "pasted": images.denormalize(pasted)[0].numpy(),
                "loss": float(loss[0]), "input": x}


MASKS = {
    "random half": torch.arange(L) % 2 == 0,
    "one visible": torch.arange(L) == 5,
    "one hidden": torch.arange(L) != 3,
    "corner block": torch.tensor([r >= 2 or c >= 2 for r in range(4) for c in range(4)]),
}


@pytest.mark.parametrize("name", MASKS)
def test_onnx_runtime_matches_pytorch(mae, pictures, tmp_path, name):
    import onnxruntime as ort

    path = webmodel.export(mae, tmp_path / "mae.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    visible = MASKS[name]
    ref = reference(mae, pictures[1], visible)
    out = dict(zip(["reconstruction", "pasted", "loss"],
                   session.run(None, {"image": ref["input"].numpy(), "visible": visible.float()[None].numpy()})))
    assert out["reconstruction"].shape == (1, 3, SIZE, SIZE) and out["loss"].shape == ()
    np.testing.assert_allclose(out["reconstruction"][0], ref["reconstruction"], atol=1e-4)
    np.testing.assert_allclose(out["pasted"][0], ref["pasted"], atol=1e-4)
    assert float(out["loss"]) == pytest.approx(ref["loss"], abs=1e-4)
    # the visible patches are the image itself, the hidden ones are not
    shown = images.show_mask(mae, (~visible).float()[None])[0, ..., 0]
    original = pictures[1].permute(1, 2, 0).numpy() / 255
    pasted = out["pasted"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(pasted[shown == 1], original[shown == 1], atol=1e-5)
    assert np.abs(pasted[shown == 0] - original[shown == 0]).max() > 0.05


def test_the_page_loss_is_the_hidden_pixel_mse_of_the_explorer(mae, pictures, tmp_path):
    """The in-browser model's loss is the live explorer's and the precomputed slider's measure (item 4:
    the numbers on one page agree), not the training loss on normalised targets."""
    import onnxruntime as ort

    from maelib import widgets

    session = ort.InferenceSession(str(webmodel.export(mae, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    p = reference_mod.predictions(mae, pictures[:1], 0.5, seed=2, baselines=False)
    visible = (p["hidden"][0, 0, ::PATCH, ::PATCH].flatten() == 0).float()[None]
    x = normalize(pictures[:1], images.MEAN, images.STD).numpy()
    loss = session.run(None, {"image": x, "visible": visible.numpy()})[2]
    assert float(loss) == pytest.approx(widgets.update(mae, pictures[0], 0.5, 2)["loss"], abs=1e-5)


def test_fp16_weights_halve_the_file_and_change_nothing_for_a_fp16_checkpoint(pictures, tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    wide = MaskedAutoencoder(Patches2d(SIZE, PATCH), dim=96, depth=2, heads=2, decoder_dim=96, decoder_depth=1)
    ckpt = images.save_mae(wide, SimpleNamespace(mask_ratio=0.75, profile="test"), tmp_path / "m.pt", torch.float16)
    assert webmodel.stored_fp16(ckpt)
    half, _ = images.load_mae(ckpt)
    small = webmodel.export(half, tmp_path / "small.onnx", fp16_weights=True)
    big = webmodel.export(half, tmp_path / "big.onnx")
    assert small.stat().st_size < 0.6 * big.stat().st_size
    x = normalize(pictures[:1], images.MEAN, images.STD).numpy()
    feed = {"image": x, "visible": MASKS["random half"].float()[None].numpy()}
    run = lambda f: ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, feed)  # noqa: E731
    for a, b in zip(run(small), run(big)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_exported_graph_is_valid_with_static_shapes(mae, tmp_path):
    import onnx

    model = onnx.load(webmodel.export(mae, tmp_path / "mae.onnx"))
    onnx.checker.check_model(model, full_check=True)
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.input, *model.graph.output]}
    assert shapes == {"image": [1, 3, SIZE, SIZE], "visible": [1, L], "reconstruction": [1, 3, SIZE, SIZE],
                      "pasted": [1, 3, SIZE, SIZE], "loss": []}


def test_loss_is_zero_when_nothing_is_hidden(mae, pictures, tmp_path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(webmodel.export(mae, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    x = normalize(pictures[:1], images.MEAN, images.STD).numpy()
    recon, pasted, loss = session.run(None, {"image": x, "visible": np.ones((1, L), np.float32)})
    assert float(loss) == 0.0
    np.testing.assert_allclose(pasted[0], pictures[0].numpy() / 255, atol=1e-5)


def test_stage_falls_back_without_checkpoint_or_runtime(mae, tmp_path):
    ckpt = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="test"), tmp_path / "mae_final.pt")
    staged = webmodel.static_dir(tmp_path / "book") / webmodel.STAGED
    staged.mkdir(parents=True)
    (staged / webmodel.MODEL_FILE).write_text("an old model")
    report = webmodel.stage(tmp_path / "book", tmp_path / "missing.pt")
    assert not report["staged"] and "no image-MAE checkpoint" in report["reason"]
    assert not staged.exists()  # no stale model is published
    report = webmodel.stage(tmp_path / "book", ckpt, node_modules=tmp_path / "no_node_modules")
    assert not report["staged"] and "npm ci" in report["reason"] and not staged.exists()


def test_control_refers_to_local_files_only(mae, pictures):
    import re

    html = webmodel.control(mae, pictures, names=["a", "b", "c"])
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert 'src="../../_static/mae-live.js"' in html and "../../_static/mae-live/" in html
    with pytest.raises(ValueError, match="uint8"):
        webmodel.control(mae, pictures.float())


# --- in headless Chromium -------------------------------------------------------------------------------

def _need_browser():
    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium): the in-browser model is untested here")
    try:
        webmodel.runtime_files()
    except FileNotFoundError as e:
        pytest.skip(f"onnxruntime-web is not installed: {e}")


def make_site(folder, mae, pictures, stage=True):
    """A published layout: folder/_static (mae-live.js, .css and, when staged, mae-live/) and the page
    folder/executed/page.html with the control. Returns the page's path relative to ``folder``."""
    shutil.copytree(ROOT / "book" / "_static", folder / "_static", ignore=shutil.ignore_patterns(webmodel.STAGED))
    if stage:
        ckpt = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="test"), folder / "mae_final.pt")
        report = webmodel.stage(folder.parent, ckpt)  # static_dir(folder.parent) is folder/_static
        assert report["staged"], report
    page = folder / "executed" / "page.html"
    page.parent.mkdir()
    page.write_text("<!doctype html><html><body>" + webmodel.control(mae, pictures, static="../_static")
                    + "</body></html>")
    return "executed/page.html"


@pytest.fixture(scope="module")
def site(mae, pictures, tmp_path_factory):
    _need_browser()
    folder = tmp_path_factory.mktemp("site") / "book"
    folder.mkdir()
    return folder, make_site(folder, mae, pictures)


def _ready(page, url):
    page.goto(url)
    page.wait_for_selector(".mae-live[data-state=idle], .mae-live[data-state=unavailable]", state="attached")
    if page.is_visible(".mae-live-start"):
        page.click(".mae-live-start")  # the reader asks for the model: nothing of it loads before
    page.wait_for_selector(".mae-live[data-state=ready], .mae-live[data-state=unavailable]", state="attached")
    return page.get_attribute(".mae-live", "data-state")


SET_AND_RUN = """async (visible) => {
  const api = document.querySelector('.mae-live').maeLive;
  await api.ready;
  const r = await api.setVisible(visible);
  return {reconstruction: Array.from(r.reconstruction), pasted: Array.from(r.pasted), loss: r.loss};
}"""


@pytest.mark.slow
def test_the_page_computes_what_pytorch_computes(site, mae, pictures):
    folder, page_path = site
    with browser.serve(folder) as url, browser.open_page() as page:
        assert _ready(page, url + page_path) == "ready", page.inner_text(".mae-live-note")
        for name in ("random half", "corner block"):
            visible = MASKS[name]
            got = page.evaluate(SET_AND_RUN, visible.float().tolist())
            ref = reference(mae, pictures[0], visible)
            np.testing.assert_allclose(np.array(got["reconstruction"]).reshape(3, SIZE, SIZE), ref["reconstruction"],
                                       atol=1e-3, err_msg=name)
            np.testing.assert_allclose(np.array(got["pasted"]).reshape(3, SIZE, SIZE), ref["pasted"], atol=1e-3)
            assert got["loss"] == pytest.approx(ref["loss"], abs=1e-3)


@pytest.mark.slow
def test_the_reader_hides_patches_picks_images_and_opens_their_own(site, tmp_path):
    from PIL import Image

    folder, page_path = site
    hidden = lambda: page.evaluate("document.querySelector('.mae-live').maeLive.last.hidden")  # noqa: E731
    loss = lambda: page.get_attribute(".mae-live", "data-loss")  # noqa: E731
    with browser.serve(folder) as url, browser.open_page() as page:
        assert _ready(page, url + page_path) == "ready"
        assert hidden() == round(0.75 * L)  # the slider's starting ratio
        page.fill(".mae-live-ratio", "0.25")  # sets the value and fires "input": a new random mask
        page.wait_for_function(f"document.querySelector('.mae-live').maeLive.last.hidden === {round(0.25 * L)}")
        before, n = loss(), hidden()
        box = page.locator(".mae-live-input").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 8, box["y"] + box["height"] / 8)  # the top-left patch
        page.wait_for_function(f"document.querySelector('.mae-live').maeLive.last.hidden !== {n}")
        assert abs(hidden() - n) == 1 and loss() != before
        # a drag from the top-left to the top-right patch paints the first row with the opposite of the
        # first patch's state, and leaves the other rows alone
        state = "async () => (await document.querySelector('.mae-live').maeLive.update()).visible"
        before = page.evaluate(state)
        page.mouse.move(box["x"] + box["width"] / 8, box["y"] + box["height"] / 8)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 7 / 8, box["y"] + box["height"] / 8, steps=8)
        page.mouse.up()
        after = page.evaluate(state)
        assert after[:4] == [1 - before[0]] * 4 and after[4:] == before[4:]
        before = loss()
        page.select_option(".mae-live-image", "2")
        page.wait_for_function(f"document.querySelector('.mae-live').getAttribute('data-loss') !== '{before}'")
        buf = io.BytesIO()
        Image.new("RGB", (90, 60), (250, 30, 30)).save(buf, format="PNG")
        (tmp_path / "mine.png").write_bytes(buf.getvalue())
        page.set_input_files(".mae-live-file", str(tmp_path / "mine.png"))
        page.wait_for_function("document.querySelector('.mae-live-image').options.length === 4")
        assert page.input_value(".mae-live-image") == "3"
        # the reader's red picture is what the encoder sees now, and what the model ran on
        page.wait_for_function("""() => { const c = document.querySelector('.mae-live-input');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) if (d[i] - d[i + 2] > 150) return true; return false; }""")
        result = page.evaluate("async () => { const r = await document.querySelector('.mae-live').maeLive.update();"
                               " return {pasted: Array.from(r.pasted), visible: r.visible}; }")
        pasted, visible = result["pasted"], result["visible"]
        k = visible.index(1)  # a visible patch: pasted back as the reader's pixels
        row, col = divmod(k, SIZE // PATCH)
        pixel = (row * PATCH) * SIZE + col * PATCH
        assert [round(255 * pasted[c * SIZE * SIZE + pixel]) for c in range(3)] == [250, 30, 30]


@pytest.mark.slow
def test_hidden_patches_are_opaque_grey_on_the_page(site):
    """Hidden means hidden (item 4): the centre of every hidden patch of the picture the reader clicks is
    the neutral grey of every figure, whatever the image underneath."""
    folder, page_path = site
    with browser.serve(folder) as url, browser.open_page() as page:
        assert _ready(page, url + page_path) == "ready"
        visible = MASKS["random half"].float().tolist()
        page.evaluate(SET_AND_RUN, visible)
        centres = page.evaluate("""(patch) => { const c = document.querySelector('.mae-live-input');
            const ctx = c.getContext('2d'), g = Math.round(Math.sqrt(%d)), p = c.width / g, out = [];
            for (let k = 0; k < g * g; k++) out.push(Array.from(ctx.getImageData(
                (k %% g) * p + p / 2, Math.floor(k / g) * p + p / 2, 1, 1).data));
            return out; }""" % L, PATCH)
    grey = round(255 * reference_mod.HIDDEN_GREY)
    for k, v in enumerate(visible):
        if v == 0:
            assert centres[k][:3] == [grey] * 3, (k, centres[k])


@pytest.mark.slow
def test_the_page_loads_nothing_of_the_model_before_the_reader_asks(site):
    """The tour: the masking page moved 27.7 MB, 17.6 of them the runtime and the model, loaded on opening
    the page. They load when the reader presses the control's button, and not before."""
    folder, page_path = site
    with browser.serve(folder) as url, browser.open_page() as page:
        asked = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(url + page_path)
        page.wait_for_selector(".mae-live[data-state=idle]", state="attached")
        page.wait_for_timeout(500)
        heavy = lambda: [u for u in asked if u.endswith((".wasm", ".onnx", "ort.wasm.min.js"))]  # noqa: E731
        assert page.is_visible(".mae-live-start") and not heavy(), asked
        page.click(".mae-live-start")
        page.wait_for_selector(".mae-live[data-state=ready]", state="attached")
        assert any(u.endswith(".onnx") for u in heavy()) and not page.is_visible(".mae-live-start")


@pytest.mark.slow
def test_the_page_falls_back_where_the_model_cannot_run(site, mae, pictures, tmp_path):
    folder, page_path = site
    bare = tmp_path / "book"
    bare.mkdir()
    bare_page = make_site(bare, mae, pictures, stage=False)
    with browser.open_page() as page:
        assert _ready(page, (folder / page_path).as_uri()) == "unavailable"
        assert "opened from a file" in page.inner_text(".mae-live-note")
        with browser.serve(bare) as url:
            assert _ready(page, url + bare_page) == "unavailable"
            note = page.inner_text(".mae-live-note")
        assert "not published" in note and "precomputed slider" in note
        assert not page.is_visible(".mae-live-ui")


@pytest.mark.slow
def test_the_page_shows_the_original_beside_what_the_encoder_sees(site, pictures):
    """Issue #36: the in-browser control had no original, so a reader could not judge a reconstruction
    without the slider at 0. Four pictures under their headers, the original first and untouched by the
    mask, with a gap between them: in a row at 1280 px, two a row on a phone, never wider than the page."""
    folder, page_path = site
    with browser.serve(folder) as url, browser.open_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        assert _ready(page, url + page_path) == "ready"
        headers = page.eval_on_selector_all(".mae-live-panels figcaption", "els => els.map(e => e.textContent)")
        assert headers == ["original", "what the encoder sees (click or drag)", "decoder output, every patch",
                           "visible patches pasted back"]
        page.evaluate(SET_AND_RUN, MASKS["random half"].float().tolist())
        shown = page.evaluate("""() => { const c = document.querySelector('.mae-live-original');
            const s = c.width / %d; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
            for (let y = 0; y < %d; y++) for (let x = 0; x < %d; x++) {
              const i = 4 * (Math.floor((y + 0.5) * s) * c.width + Math.floor((x + 0.5) * s));
              out.push([d[i], d[i + 1], d[i + 2]]); }
            return out; }""" % (SIZE, SIZE, SIZE))
        assert np.array_equal(np.array(shown).reshape(SIZE, SIZE, 3), pictures[0].permute(1, 2, 0).numpy())
        for width, per_row in ((1280, 4), (390, 2)):
            page.set_viewport_size({"width": width, "height": 900})
            boxes = page.eval_on_selector_all(".mae-live-panels canvas", "els => els.map(e => { const b = "
                                              "e.getBoundingClientRect(); return [b.left, b.top, b.right]; })")
            tops = sorted({round(b[1]) for b in boxes})
            assert len(tops) == 4 // per_row, (width, boxes)
            row = sorted(b for b in boxes if round(b[1]) == tops[0])
            assert len(row) == per_row and all(b[0] - a[2] >= 8 for a, b in zip(row, row[1:])), (width, row)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
