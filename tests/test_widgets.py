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


def test_explorer_redraws_when_a_slider_moves(mae, images):
    box = widgets.explorer(mae, images)
    ratio, seed = box.children[0].children
    picture = box.children[2]
    first = picture.value
    ratio.value = 0.3
    assert picture.value != first
    second = picture.value
    seed.value = 5
    assert picture.value != second
    assert "loss on hidden patches" in box.children[3].value


def test_static_control_has_one_frame_per_ratio_and_no_external_urls(mae, images):
    ratios = [0.1, 0.5, 0.9]
    frames = widgets.precompute(mae, images[:2], ratios, seeds=[0, 1])
    assert {s: len(f) for s, f in frames.items()} == {0: 3, 1: 3}
    html = widgets.static_control(frames)
    assert html.count("data:image/png;base64,") == 6
    assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert 'max="2"' in html


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
    ratio = box.children[0].children[0]
    first = box.children[2].value
    ratio.value = 0.3
    assert box.children[2].value != first
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
