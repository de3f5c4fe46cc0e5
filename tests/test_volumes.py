import json

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import data_folder
from maelib import catalog, profiles, volumes
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
    t = vdata.transforms("hippocampus", (32, 48, 32))
    for case in [pairs[1], next(c for c in pairs if c["label"].endswith("_003.nii"))]:  # 003 stores float labels
        item = t(case)
        assert item["image"].shape == item["label"].shape and item["image"].shape[0] == 1
        assert set(item["label"].unique().tolist()) == {0, 1, 2} and item["label"].dtype == torch.int64
        assert abs(float(item["image"].mean())) < 0.5  # normalised per volume


def test_spacing_resamples_the_hippocampus_to_finer_voxels_and_keeps_its_labels(isolated_cache):
    data_folder("hippocampus")
    case = vdata.hippocampus_files()[1]
    native = vdata.transforms("hippocampus", (16, 16, 16))(case)
    fine = vdata.transforms("hippocampus", (16, 16, 16), spacing=0.5)(case)
    for n, f in zip(native["image"].shape[1:], fine["image"].shape[1:]):
        assert abs(f - 2 * n) <= 1  # half the voxel size: about twice the voxels along each axis
    assert fine["image"].shape == fine["label"].shape
    assert set(fine["label"].unique().tolist()) == {0, 1, 2} and fine["label"].dtype == torch.int64
    # the structures keep their volume in mm^3: 8 fine voxels a native one
    for c in (1, 2):
        ratio = float((fine["label"] == c).sum()) / float((native["label"] == c).sum())
        assert 6.5 < ratio < 9.5, (c, ratio)


def test_spacing_interpolates_images_but_never_blends_label_classes(tmp_path):
    """Two structures side by side (classes 0 and 2, no 1): a label resampled by interpolation would put 1s on
    their border; nearest-neighbour keeps {0, 2}. The image is interpolated: new values appear between its two."""
    image, label = np.zeros((8, 8, 8), np.float32), np.zeros((8, 8, 8), np.uint8)
    image[4:], label[4:] = 100.0, 2
    for name, volume in (("image", image), ("label", label)):
        nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / f"{name}.nii.gz")
    item = vdata.transforms("hippocampus", (16, 16, 16), spacing=0.5)(
        {"image": str(tmp_path / "image.nii.gz"), "label": str(tmp_path / "label.nii.gz")})
    assert item["label"].shape[1:] == (16, 16, 16) and item["label"].dtype == torch.int64
    assert set(item["label"].unique().tolist()) == {0, 2}
    assert len(item["image"].unique()) > 2  # bilinear: values between the two sides


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
    item = vdata.transforms("btcv", (32, 32, 16))(files["val"][0])
    assert item["image"].shape == item["label"].shape
    same = vdata.transforms("btcv", (32, 32, 16), spacing=0.5)(files["val"][0])  # BTCV keeps the paper's spacing
    assert same["image"].shape == item["image"].shape
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1  # -175..250 window to [0, 1]
    assert set(item["label"].unique().tolist()) == {0, 6}


def test_btcv_without_training_cases_is_a_clear_error(tmp_path):
    (tmp_path / "dataset_0.json").write_text(json.dumps({"training": []}))
    with pytest.raises(ValueError, match="lists no training cases"):
        vdata.btcv_files(tmp_path)


@pytest.mark.parametrize("kw, msg", [({"roi": [30, 48, 32]}, "multiple of 16"),
                                     ({"mask_ratio": 1.0}, r"mask_ratio must be in \(0, 1\)"),
                                     ({"dataset": "brats"}, "dataset must be one of"),
                                     ({"spacing": 0.1}, r"spacing must be in \[0.25, 4\]"),
                                     ({"spacing": -1.0}, r"spacing must be in \[0.25, 4\]")])
def test_bad_volume_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("volumes", "smoke", **kw)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_the_trained_profiles_give_the_mae_a_task_that_is_not_degenerate(profile):
    p = profiles.resolve("volumes", profile)
    tokens = int(np.prod([r // volumes.PATCH for r in p.roi]))
    assert tokens >= catalog.of("volumes").claims[0].min_tokens  # the study's floor (#34: at least 48)
    assert p.spacing is not None and p.spacing < 1  # the hippocampus resampled finer than its 1 mm to fit them


def toy_set(n=3, shape=(40, 36, 32)):
    """Volumes whose voxel values are their flat positions, a small labelled cube near one corner."""
    image = torch.arange(n * np.prod(shape), dtype=torch.float).reshape(n, 1, *shape)
    label = torch.zeros(n, 1, *shape, dtype=torch.uint8)
    label[:, :, 30:34, 2:6, 25:29] = 1
    return volumes.VolumeSet(image, label, torch.tensor([list(shape)] * n))


def test_crops_are_boxes_of_the_right_volume_half_of_them_on_the_structure():
    vs, roi = toy_set(), (16, 16, 16)
    g = torch.Generator().manual_seed(0)
    idx = torch.tensor([0, 1, 2, 1] * 50)
    image, label = volumes.pos_neg_crop(vs, idx, roi, g)
    assert image.shape == (200, 1, *roi) and label.shape == (200, 1, *roi)
    volume_size = 40 * 36 * 32
    first = image[:, 0, 0, 0, 0]
    assert torch.equal(first.long() // volume_size, idx)  # each crop comes from the volume asked for
    offsets = image[:, 0] - first.view(-1, 1, 1, 1)  # the same box shape everywhere: a contiguous crop
    assert torch.equal(offsets, offsets[:1].expand_as(offsets))
    assert offsets[0, 1, 0, 0] == 36 * 32 and offsets[0, 0, 1, 0] == 32 and offsets[0, 0, 0, 1] == 1
    on_structure = (label.flatten(1) > 0).any(1).float().mean()
    assert 0.4 < on_structure < 0.75  # the cube is 64 of 46,080 voxels: the positive draws find it


def test_volumes_that_fit_the_roi_are_not_cropped():
    vs = toy_set(shape=(16, 16, 16))
    image, label = volumes.pos_neg_crop(vs, torch.tensor([2, 0]), (16, 16, 16), torch.Generator())
    assert torch.equal(image, vs.image[[2, 0]]) and torch.equal(label, vs.label[[2, 0]])


def test_crop_loader_draws_every_volume_twice_an_epoch_the_same_way_per_seed():
    vs = toy_set(n=5)
    loader = volumes.crop_loader(vs, (16, 16, 16), batch_size=2, seed=3, device="cpu")
    epoch = [b for b in loader]
    assert [len(x) for x, _ in epoch] == [4, 4, 2] and all(y.dtype == torch.int64 for _, y in epoch)
    loader.transform = None  # the volume indices the crops were cut from
    assert sorted(torch.cat([b[0] for b in loader]).tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    again = [b for b in volumes.crop_loader(vs, (16, 16, 16), batch_size=2, seed=3, device="cpu")]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch, again))


def test_cases_of_different_sizes_are_cropped_inside_themselves_and_scored_at_their_size():
    small, large = torch.zeros(1, 1, 20, 20, 20), torch.zeros(1, 1, 30, 20, 24)
    vs = volumes.VolumeSet(torch.cat([F.pad(small, (0, 4, 0, 0, 0, 10)), large]),
                           torch.cat([F.pad(small, (0, 4, 0, 0, 0, 10), value=volumes.PAD_LABEL),
                                      large]).to(torch.uint8), torch.tensor([[20, 20, 20], [30, 20, 24]]))
    vs.label[0, 0, 15:18, 15:18, 15:18] = 1  # near the small case's far corner: crops would spill over
    _, label = volumes.pos_neg_crop(vs, torch.zeros(100, dtype=torch.long), (16, 16, 16), torch.Generator())
    assert (label != volumes.PAD_LABEL).all() and (label == 1).any()
    assert vs.same_shape_groups() == [[0], [1]] and vs.case(0)[0].shape == (1, 20, 20, 20)


    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(len(x), 3, *x.shape[2:])

    seen = []
    volumes.evaluate_dice(Probe(), vs, (16, 16, 16), 3, "cpu")
    assert {s[1:] for s in seen} == {(1, 16, 16, 16)}
    # 16-voxel windows at overlap 0.25: 2x2x2 over the 20^3 case, 3x2x2 over the other; 24 if both were
    # scored at the stack's 30x20x24
    assert sum(s[0] for s in seen) == 8 + 12


def test_each_arm_chooses_its_learning_rate_on_held_out_training_cases(monkeypatch):
    """Every rate trains on the first four fifths of the training cases and is scored on the last fifth;
    the best held-out Dice wins; the validation cases are never given."""
    from types import SimpleNamespace

    import pandas as pd

    from maelib import volumes

    seen = []

    def fake_train(model, train_ds, val_ds, roi, n_out, p, device, seed, desc, ckpt_dir=None, lr=None, epochs=None):
        seen.append((len(train_ds), len(val_ds), lr, epochs))
        return pd.DataFrame({"dice": [{5e-4: 0.2, 1e-3: 0.5, 2e-3: 0.4}[lr]]})

    monkeypatch.setattr(volumes, "train_unetr", fake_train)
    cases = volumes.VolumeSet(torch.zeros(10, 1, 2, 2, 2), torch.zeros(10, 1, 2, 2, 2, dtype=torch.uint8),
                              torch.full((10, 3), 2))
    p = SimpleNamespace(lr_grid=[5e-4, 1e-3, 2e-3])
    lr, grid = volumes.choose_lr(lambda: None, cases, (2, 2, 2), 2, p, "cpu", 0, "scratch", epochs=7)
    assert lr == 1e-3 and grid == {5e-4: 0.2, 1e-3: 0.5, 2e-3: 0.4}
    assert {(n_fit, n_held, e) for n_fit, n_held, _, e in seen} == {(8, 2, 7)}


def test_the_3d_maes_learned_tokens_are_not_decayed():
    """As in the image MAE: AdamW decays neither the [cls] token nor the mask token (they were decayed)."""
    from maelib.train import param_groups

    p = profiles.resolve("volumes", "smoke")
    mae = volumes.make_mae(p, p.roi)
    decayed = {id(t) for g in param_groups(mae, 0.05) if g["weight_decay"] > 0 for t in g["params"]}
    assert id(mae.cls_token) not in decayed and id(mae.mask_tokens) not in decayed
    assert id(mae.blocks[0].mlp.linear1.weight) in decayed


def test_case_items_average_to_the_reported_dice():
    """Each case's Dice over its classes, averaged over the cases, is the chapter's mean Dice where every
    class is in every case; a model that predicts the labels scores 1 on every case."""
    label = torch.zeros(2, 1, 20, 20, 20, dtype=torch.uint8)
    label[:, 0, 2:8, 2:8, 2:8], label[:, 0, 10:16, 10:16, 10:16] = 1, 2
    vs = volumes.VolumeSet(label.float(), label, torch.tensor([[20, 20, 20], [20, 20, 20]]))

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return F.one_hot(x[:, 0].round().long(), 3).permute(0, 4, 1, 2, 3).float()

    class Half(torch.nn.Module):  # class 2 predicted as 1: Dice 2/3 on class 1, 0 on class 2
        def forward(self, x):
            return F.one_hot(x[:, 0].round().long().clamp(max=1), 3).permute(0, 4, 1, 2, 3).float()

    assert volumes.case_items(Oracle(), vs, (16, 16, 16), 3, "cpu") == [1.0, 1.0]
    items = volumes.case_items(Half(), vs, (16, 16, 16), 3, "cpu")
    assert items == pytest.approx([1 / 3, 1 / 3])
    assert np.mean(items) == pytest.approx(volumes.evaluate_dice(Half(), vs, (16, 16, 16), 3, "cpu")["dice"])
