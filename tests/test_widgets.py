import re

import numpy as np
import pytest
import torch

from maelib import provenance, widgets
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return MaskedAutoencoder(Patches2d(32, 8), dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1,
                             norm_target=True).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_update_gives_four_panels_for_every_slider_value(mae, images):
    for ratio in np.arange(0.05, 0.951, 0.05):
        for seed in (0, 7):
            frame = widgets.update(mae, images[0], float(ratio), seed)
            for k in widgets.PANELS:
                assert frame[k].shape == (32, 32, 3)
                assert 0 <= frame[k].min() and frame[k].max() <= 1
            assert np.isfinite(frame["loss"])
    grey = lambda r: (widgets.update(mae, images[0], r, 0)["masked"] == 0.5).all(-1).mean()  # noqa: E731
    assert grey(0.9) > grey(0.2)  # more hidden patches at a higher ratio


def part(box, name: str):
    """The explorer's widget of CSS class ``mae-<name>`` (as a browser test finds it)."""
    found = [w for w in _walk(box) if f"mae-{name}" in getattr(w, "_dom_classes", ())]
    assert len(found) == 1, (name, found)
    return found[0]


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_explorer_redraws_when_a_slider_moves(mae, images):
    box = widgets.explorer(mae, images)
    ratio, seed, picture = part(box, "ratio"), part(box, "seed"), part(box, "picture")
    first = picture.value
    ratio.value = 0.3
    assert picture.value != first
    second = picture.value
    seed.value = 5
    assert picture.value != second
    assert "loss on hidden patches" in part(box, "caption").value


def _headers(html_text: str) -> list[str]:
    return re.findall(r'<div style="grid-column:(\d+);[^"]*">([^<]*)</div>', html_text)


def test_the_explorer_shows_the_original_first_under_a_header_over_each_panel(mae, images):
    """Issue #36: a reader judges a reconstruction against the truth without moving the slider to 0. The
    picture is the four panels with a gap between them, the original first, each under its header."""
    import io

    from PIL import Image

    box = widgets.explorer(mae, images)
    frame = widgets.update(mae, images[0], 0.75, 0)
    strip = np.asarray(Image.open(io.BytesIO(part(box, "picture").value)).convert("RGB")) / 255
    side = 32 * 3
    gap = (strip.shape[1] - 4 * side) // 3
    assert gap >= 8 and strip.shape[1] == 4 * side + 3 * gap
    original = np.kron(frame["original"], np.ones((3, 3, 1)))
    np.testing.assert_allclose(strip[:, :side], original, atol=1 / 255)
    assert (strip[:, side:side + gap] == 1).all()  # the gap: white, nothing of either panel
    masked = strip[:, side + gap:2 * side + gap]
    assert not np.allclose(masked, original, atol=1 / 255)  # hidden patches grey in the second panel
    headers = _headers(part(box, "headers").value)
    assert headers == [(str(2 * i + 1), widgets.HEADERS[k]) for i, k in enumerate(widgets.PANELS)]
    assert headers[0][1] == "original"
    children = list(box.children)
    assert children.index(part(box, "headers")) == children.index(part(box, "picture")) - 1  # over the picture


def test_static_control_has_one_frame_per_ratio_and_no_external_urls(mae, images):
    ratios = [0.1, 0.5, 0.9]
    frames = widgets.precompute(mae, images[:2], ratios, seeds=[0, 1])
    assert {s: len(f) for s, f in frames.items()} == {0: 3, 1: 3}
    html = widgets.static_control(frames)
    assert html.count("data:image/png;base64,") == 6
    assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert 'max="2"' in html


def test_a_precomputed_frame_has_gaps_between_panels_and_a_header_over_each_column(mae, images):
    """Issue #36: the frame was a 4 x 4 grid with no gaps and no headers, so that "decoder output" and
    "pasted back" merged. Each panel is framed by transparent gaps, and the headers stand over the columns
    in the frame's own proportions (a grid of the panel's and the gap's widths)."""
    import io

    from PIL import Image

    frames = widgets.precompute(mae, images, [0.5], seeds=[0])
    png = frames[0][0][1]
    img = np.asarray(Image.open(io.BytesIO(png)))
    s, g = 32, widgets.FRAME_GAP
    assert g >= 2 and img.shape == (3 * s + 2 * g, 4 * s + 3 * g, 4)
    rec = widgets.reconstructions(mae, images, 0.5, 0)
    for row in range(3):
        for col, k in enumerate(widgets.PANELS):
            y, x = row * (s + g), col * (s + g)
            panel = img[y:y + s, x:x + s]
            assert (panel[..., 3] == 255).all()
            np.testing.assert_allclose(panel[..., :3] / 255, rec[k][row], atol=1 / 255)
    for col in range(3):  # the gaps between columns and between rows let the page show through
        assert (img[:, col * (s + g) + s:(col + 1) * (s + g), 3] == 0).all()
    for row in range(2):
        assert (img[row * (s + g) + s:(row + 1) * (s + g), :, 3] == 0).all()
    html = widgets.static_control(frames)
    assert f"grid-template-columns:{s}fr {g}fr {s}fr {g}fr {s}fr {g}fr {s}fr" in html
    headers = _headers(html)
    assert headers == [(str(2 * i + 1), widgets.HEADERS[k]) for i, k in enumerate(widgets.PANELS)]
    assert html.index('class="mae-headers"') < html.index('class="frame"')  # over the picture


def test_the_choice_spreads_over_the_classes():
    """Issue #36: a reader could pick from 4 images. The masking chapter offers one validation image of
    each class, at least widgets.MIN_CHOICES of them; with fewer classes, the next image of each."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(20), 50))  # the validation set's order is not by class
    picked = widgets.spread_over_classes(labels, max(widgets.MIN_CHOICES, 20))
    assert len(picked) == 20 and len({labels[i] for i in picked}) == 20
    assert widgets.MIN_CHOICES >= 12
    few = np.repeat(np.arange(5), 4)
    picked = widgets.spread_over_classes(few, widgets.MIN_CHOICES)
    assert len(picked) == 12 and len(set(picked)) == 12
    assert list(np.bincount(few[picked])) == [3, 3, 2, 2, 2]  # round by round over the classes
    assert widgets.spread_over_classes(np.zeros(3, int), 12) == [0, 1, 2]  # fewer images than asked: all of them
    names = widgets.gallery_names(few, [0, 5, 1], ["cat", "dog", "owl", "fox", "eel"])
    assert names == ["cat", "dog", "cat 2"]


def test_the_masking_chapter_offers_the_spread_choice_to_both_controls():
    """The in-browser control and the live explorer get the gallery (one image of each class), not the
    slider's few images."""
    src = provenance.chapters()["masking"].read_text()
    assert "widgets.spread_over_classes(val_y, max(widgets.MIN_CHOICES" in src
    assert "webmodel.control(mae, gallery, names=gallery_names)" in src
    assert "widgets.explorer(mae, gallery, names=gallery_names" in src


def _save(mae, path, profile):
    from types import SimpleNamespace

    from maelib import images

    return images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile=profile), path)


def test_checkpoint_round_trip_and_missing_checkpoint_message(mae, isolated_cache):
    from maelib import images

    path = _save(mae, isolated_cache / "runs" / "images-smoke-x" / "mae_final.pt", "smoke")
    assert provenance.image_mae_checkpoint("smoke")[0] == path
    again, saved = images.load_mae(path)
    assert saved["img_size"] == 32 and saved["profile"] == "smoke"
    for a, b in zip(again.state_dict().values(), mae.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(provenance.NoCheckpointError, match="python -m maelib run images --profile quick"):
        provenance.image_mae_checkpoint("quick")


def test_the_checkpoint_is_the_profiles_not_the_newest(mae, isolated_cache):
    """A newer checkpoint of another profile (another image size) is not picked; the exact run of the
    profile's defaults wins over any other run of that profile."""
    import os

    from maelib import profiles

    smoke = _save(mae, isolated_cache / "runs" / "images-smoke-old" / "mae_final.pt", "smoke")
    quick = _save(mae, isolated_cache / "runs" / "images-quick-new" / "mae_final.pt", "quick")
    os.utime(smoke, (1, 1))
    assert quick.stat().st_mtime > smoke.stat().st_mtime
    path, how = provenance.image_mae_checkpoint("smoke")
    assert path == smoke and "newest image-chapter run at the smoke profile" in how
    exact = _save(mae, provenance.run_dir("images", profiles.resolve("images", "smoke")) / "mae_final.pt", "smoke")
    os.utime(exact, (1, 1))
    path, how = provenance.image_mae_checkpoint("smoke")
    assert path == exact and "default parameters" in how
    assert provenance.image_mae_checkpoint("smoke", smoke)[0] == smoke


def test_explorer_works_with_images_of_another_size(mae, images):
    """A 32-px MAE handed 64-px images (the crash of the masking chapter's live explorer)."""
    big = torch.nn.functional.interpolate(images.float(), size=64).to(torch.uint8)
    box = widgets.explorer(mae, big)
    ratio, picture = part(box, "ratio"), part(box, "picture")
    first = picture.value
    ratio.value = 0.3
    assert picture.value != first
    assert widgets.update(mae, big[0], 0.5, 0)["original"].shape == (32, 32, 3)


def test_a_checkpoint_that_holds_code_is_refused(tmp_path):
    """Checkpoints load with weights_only: a pickle that would construct an arbitrary object is refused."""
    from maelib import images

    path = tmp_path / "evil.pt"
    torch.save({"config": Evil(), "img_size": 32, "patch_size": 8, "state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a readable image-MAE checkpoint"):
        images.load_mae(path)


class Evil:
    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def test_uploaded_image_is_cropped_square_and_resized():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 10, 10)).save(buf, format="PNG")
    x = widgets.prepare_image(buf.getvalue(), 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and int(x[0, 0, 0]) == 200
