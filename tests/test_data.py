import re

import pytest
import torch

from conftest import data_folder
from maelib.data import DataMissingError, TensorLoader, random_resized_crop_flip, tinyimagenet
from maelib.data.registry import locate


def test_tinyimagenet_subset_loads(isolated_cache):
    data_folder("tinyimagenet")
    d = tinyimagenet.load(20, limit=100)
    x, y = d["train"]
    assert x.shape == (100, 3, 64, 64) and x.dtype == torch.uint8
    assert y.min() == 0 and y.max() == 19 and len(set(y.tolist())) == 20  # balanced prefix
    xv, yv = d["val"]
    assert xv.shape[1:] == (3, 64, 64) and len(d["names"]) == 20
    assert d["classes"][0] == "n01443537" and d["names"][0] == "goldfish"
    assert any(re.fullmatch(r"tinyimagenet_staged_\w{10}_20_train.npz", f.name) for f in isolated_cache.iterdir())  # cached


def test_greyscale_jpegs_become_rgb(isolated_cache):
    data_folder("tinyimagenet")
    x, _ = tinyimagenet.load(20)["val"]
    grey = (x[:, 0] == x[:, 1]).flatten(1).all(1) & (x[:, 1] == x[:, 2]).flatten(1).all(1)
    assert x.shape == (1000, 3, 64, 64)
    assert 0 < grey.sum() < 50  # about 1.5% of the images are greyscale, stored as 3 equal channels


def test_every_class_count_picks_staged_classes_with_images(isolated_cache):
    data_folder("tinyimagenet")
    for n in (7, 10):  # 7 does not divide the 200 canonical classes' stride into the staged 20
        d = tinyimagenet.load(n)
        assert len(set(d["train"][1].tolist())) == n and len(d["train"][1]) == 500 * n
        assert len(set(d["val"][1].tolist())) == n and len(d["val"][1]) == 50 * n


def test_more_classes_than_staged_is_a_clear_error(isolated_cache):
    data_folder("tinyimagenet")
    with pytest.raises(ValueError, match="n_classes=50 but .* holds training images for 20 classes only"):
        tinyimagenet.load(50)


def test_missing_data_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("MAELIB_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("MAELIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataMissingError) as e:
        locate("tinyimagenet", ("tin_subset20.tar.gz",))
    text = str(e.value)
    assert str(tmp_path / "nothing" / "tinyimagenet") in text
    assert "python -m maelib data fetch tinyimagenet" in text and "MAELIB_DATA" in text


def test_crop_with_full_scale_and_no_flip_is_identity():
    x = torch.rand(3, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    out = random_resized_crop_flip(x, g, scale=(1, 1), ratio=(1, 1), flip=False)
    assert torch.allclose(out, x, atol=1e-5)


def test_flip_mirrors_and_crops_vary_per_sample():
    x = torch.rand(1, 3, 16, 16).expand(64, -1, -1, -1).contiguous()
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(0), out_size=8)
    assert out.shape == (64, 3, 8, 8)
    assert len({round(v, 4) for v in out.mean((1, 2, 3)).tolist()}) > 32
    flipped = random_resized_crop_flip(x[:8], torch.Generator().manual_seed(1), scale=(1, 1), ratio=(1, 1))
    for f in flipped:
        assert torch.allclose(f, x[0], atol=1e-5) or torch.allclose(f, x[0].flip(-1), atol=1e-5)


def test_loader_order_depends_on_seed_and_epoch_only():
    t = torch.arange(20)
    a, b = TensorLoader((t,), 5, shuffle=True, seed=1), TensorLoader((t,), 5, shuffle=True, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    assert [x[0].tolist() for x in a] == [x[0].tolist() for x in b]
    b.set_epoch(3)
    assert [x[0].tolist() for x in a] != [x[0].tolist() for x in b]
    assert sorted(torch.cat([x[0] for x in a]).tolist()) == list(range(20))
