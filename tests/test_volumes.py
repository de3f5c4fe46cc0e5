import json

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import data_folder
from maelib import profiles, volumes
from maelib.data import volumes as vdata


@pytest.fixture
def p():
    return profiles.resolve("volumes", "smoke")


def test_patchify3d_matches_monai_token_order():
    x = torch.arange(32 * 48 * 32, dtype=torch.float).reshape(1, 1, 32, 48, 32)
    t = volumes.patchify3d(x)
    assert t.shape == (1, 2 * 3 * 2, 16 ** 3)
    # token 1 is grid cell (0, 0, 1): the last axis varies fastest, as in Conv3d(...).flatten(2)
    assert torch.equal(t[0, 1], x[0, 0, :16, :16, 16:32].reshape(-1))


def test_weight_transfer_is_exact_and_complete(p):
    torch.manual_seed(0)
    mae = volumes.make_mae(p, tuple(p.roi))
    with torch.no_grad():
        for t in mae.parameters():
            t.add_(torch.randn_like(t))
    unetr = volumes.make_unetr(p, tuple(p.roi), 3)
    before = {k: v.clone() for k, v in unetr.vit.state_dict().items()}
    copied = volumes.transfer(mae, unetr)
    after = unetr.vit.state_dict()
    assert sorted(copied) == sorted(after)  # every ViT tensor came from the MAE
    src = mae.state_dict()
    for name, value in after.items():
        key = f"blocks.12.{name[5:]}" if name.startswith("norm.") else name
        assert torch.equal(value, src[key]), name
        assert not torch.equal(value, before[name]), f"{name} kept its initial value"


def test_mae_loss_ignores_visible_patches(p, monkeypatch):
    torch.manual_seed(0)
    mae = volumes.make_mae(p, tuple(p.roi))
    x = torch.randn(2, 1, *p.roi)
    mask = torch.tensor([[1, 0] * 6, [0, 1] * 6])
    pred = torch.randn(2, 12, 16 ** 3)
    monkeypatch.setattr(mae, "forward", lambda x, masking_ratio=None: (pred, mask))
    a = volumes.mae_loss(mae, x, 0.5)
    pred[mask == 0] += 100  # change the visible patches' predictions only
    assert volumes.mae_loss(mae, x, 0.5) == pytest.approx(a.item())


def test_hippocampus_loader(isolated_cache):
    data_folder("hippocampus")
    pairs = vdata.hippocampus_files()
    assert len(pairs) == 260
    s = vdata.split(pairs, 0.2, seed=0, limit=10)
    assert len(s["train"]) == 8 and len(s["val"]) == 2
    t = vdata.transforms("hippocampus", (32, 48, 32), train=False)
    for case in [pairs[1], next(c for c in pairs if c["label"].endswith("_003.nii"))]:  # 003 stores float labels
        item = t(case)
        assert item["image"].shape == item["label"].shape and item["image"].shape[0] == 1
        assert set(item["label"].unique().tolist()) == {0, 1, 2} and item["label"].dtype == torch.int64
        assert abs(float(item["image"].mean())) < 0.5  # normalised per volume


def test_btcv_layout_loader_on_a_tiny_synthetic_folder(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    entries = []
    for i in range(2):
        img = np.random.default_rng(i).uniform(-500, 500, (40, 36, 20)).astype(np.int16)
        lab = np.zeros((40, 36, 20), np.uint8)
        lab[10:20, 10:20, 5:10] = 6  # "liver"
        nib.save(nib.Nifti1Image(img, affine), tmp_path / "imagesTr" / f"img{i:04d}.nii.gz")
        nib.save(nib.Nifti1Image(lab, affine), tmp_path / "labelsTr" / f"label{i:04d}.nii.gz")
        entries.append({"image": f"imagesTr/img{i:04d}.nii.gz", "label": f"labelsTr/label{i:04d}.nii.gz"})
    (tmp_path / "dataset_0.json").write_text(json.dumps({"training": entries[:1], "validation": entries[1:]}))
    files = vdata.btcv_files(tmp_path)
    assert len(files["train"]) == 1 and len(files["val"]) == 1
    item = vdata.transforms("btcv", (32, 32, 16), train=False)(files["val"][0])
    assert item["image"].shape == item["label"].shape
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1  # -175..250 window to [0, 1]
    assert set(item["label"].unique().tolist()) == {0, 6}


def test_btcv_without_training_cases_is_a_clear_error(tmp_path):
    (tmp_path / "dataset_0.json").write_text(json.dumps({"training": []}))
    with pytest.raises(ValueError, match="lists no training cases"):
        vdata.btcv_files(tmp_path)


@pytest.mark.parametrize("kw, msg", [({"roi": [30, 48, 32]}, "multiple of 16"),
                                     ({"mask_ratio": 1.0}, r"mask_ratio must be in \(0, 1\)"),
                                     ({"dataset": "brats"}, "dataset must be one of")])
def test_bad_volume_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("volumes", "smoke", **kw)
