import re

import numpy as np
import pytest
import torch

from maelib import widgets
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
    dark = lambda r: (widgets.update(mae, images[0], r, 0)["masked"].sum(-1) == 0).mean()  # noqa: E731
    assert dark(0.9) > dark(0.2)  # more hidden patches at a higher ratio


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


def test_checkpoint_round_trip_and_missing_checkpoint_message(mae, tmp_path):
    path = tmp_path / "runs" / "images-x" / "mae_final.pt"
    path.parent.mkdir(parents=True)
    torch.save({"config": mae.config, "img_size": 32, "patch_size": 8, "mask_ratio": 0.75,
                "state_dict": mae.state_dict()}, path)
    assert widgets.find_checkpoint(tmp_path / "runs") == path
    again = widgets.load_mae(path)
    for a, b in zip(again.state_dict().values(), mae.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(widgets.NoCheckpointError, match="python -m maelib run images"):
        widgets.find_checkpoint(tmp_path / "empty")


def test_uploaded_image_is_cropped_square_and_resized():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 10, 10)).save(buf, format="PNG")
    x = widgets.prepare_image(buf.getvalue(), 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and int(x[0, 0, 0]) == 200
