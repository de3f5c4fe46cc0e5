"""The reference image MAE (maelib/reference.py): its quality table, the one loss every number on the
masking page uses, hidden patches drawn as hidden, and which model a reader sees."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from maelib import images, provenance, reference, widgets
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return MaskedAutoencoder(Patches2d(32, 8), dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1).eval()


@pytest.fixture(scope="module")
def smooth():
    """Four uint8 (3, 32, 32) images of smooth gradients: biharmonic inpainting fills them almost exactly."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    out = [torch.stack([xx * (0.3 + 0.2 * k), yy, (xx + yy) / 2]) for k in range(4)]
    return (torch.stack(out) * 255).round().to(torch.uint8)


def test_quality_table_compares_the_mae_with_both_baselines_on_the_same_masks(mae, smooth):
    q = reference.quality(mae, smooth, ratios=(0.25, 0.75), batch=3)
    assert list(q["mask_ratio"]) == [0.25, 0.75]
    assert (q["biharmonic"] < 0.2 * q["flat"]).all()  # smooth images: inpainting beats a flat fill
    np.testing.assert_allclose(q["below_flat"], 1 - q["mae"] / q["flat"])
    # the flat predictor by hand, on the masks predictions() drew (seed 0 * 1000 + batch offset 0)
    p = reference.predictions(mae, smooth[:3], 0.25, 0)
    image, hidden = p["image"], p["hidden"]
    colour = (image * (1 - hidden)).sum((2, 3)) / (1 - hidden).sum((2, 3))
    assert torch.allclose(p["flat"][hidden.bool()], colour[:, :, None, None].expand_as(image)[hidden.bool()])
    for k in ("mae", "flat", "biharmonic"):  # every predictor keeps the visible pixels as they are
        assert torch.allclose(p[k][~hidden.bool()], image[~hidden.bool()], atol=1e-5)
    assert hidden[:, 0].mean((1, 2)).tolist() == [0.25] * 3


def test_the_comparison_with_a_baseline_says_higher_or_lower_never_a_negative_below():
    """The tour: the quality table's "MAE below biharmonic" column read -20.4% (a double negative for "the
    MAE is worse"), and the prose never said that the MAE loses to biharmonic inpainting at 25%."""
    assert reference.relative(0.0271, 0.0544) == "50.2% lower"
    assert reference.relative(0.0271, 0.0225) == "20.4% higher"
    assert reference.relative(0.02, 0.02) == "the same"
    text = reference.against("biharmonic inpainting", [0.25, 0.75], [0.0271, 0.0320], [0.0225, 0.0465])
    assert text == "Against biharmonic inpainting, the MAE's error is 20.4% higher at 25% and 31.2% lower at 75% hidden."


def test_the_verdict_follows_the_sign_and_the_goal():
    assert "meets the goal of at least 25%" in reference.verdict(0.31)
    assert reference.verdict(0.1).startswith("only 10.0% below it, short of the goal")
    assert reference.verdict(-0.05).startswith("5.0% above it, short of the goal")


def test_hidden_patches_are_opaque_grey_in_every_panel_of_the_explorer_and_the_figure(mae, smooth):
    """Hidden means hidden: no pixel of a hidden patch shows through (item 4)."""
    rec = widgets.reconstructions(mae, smooth, 0.75, seed=3)
    p = reference.predictions(mae, smooth, 0.75, seed=3, baselines=False)
    hidden = p["hidden"].permute(0, 2, 3, 1).numpy().astype(bool)
    assert (rec["masked"][hidden] == reference.HIDDEN_GREY).all()
    np.testing.assert_array_equal(rec["masked"][~hidden], rec["original"][~hidden])
    frame = widgets.update(mae, smooth[0], 0.75, 3)
    assert (frame["masked"][hidden[0]] == reference.HIDDEN_GREY).all()


def test_every_loss_shown_is_the_hidden_pixel_mse(mae, smooth):
    """The slider's frame, the live explorer, the curve and the quality table report one measure, so that
    on one page they differ only by the images they average over (item 4)."""
    per_image = [widgets.update(mae, x, 0.75, 0)["loss"] for x in smooth[:1]]
    p = reference.predictions(mae, smooth[:1], 0.75, 0)
    assert per_image[0] == pytest.approx(float(((p["mae"] - p["image"]) ** 2)[p["hidden"].bool()].mean()), rel=1e-5)
    frames = widgets.precompute(mae, smooth, [0.75], [0])
    assert frames[0][0][2] == pytest.approx(float(widgets.reconstructions(mae, smooth, 0.75, 0)["loss"].mean()))
    curve = widgets.loss_curve(mae, smooth, [0.75], [0])
    assert curve["loss"].iloc[0] == pytest.approx(frames[0][0][2])
    assert reference.quality(mae, smooth, ratios=(0.75,), batch=len(smooth))["mae"].iloc[0] == pytest.approx(
        frames[0][0][2], rel=1e-5)


def test_the_reader_sees_the_committed_reference_model_before_a_chapter_run(mae, tmp_path, monkeypatch,
                                                                           isolated_cache):

    monkeypatch.setattr(provenance, "MODELS", tmp_path)
    run = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="smoke"),
                          isolated_cache / "runs" / "images-smoke-x" / "mae_final.pt")
    path, how, committed = provenance.shown_image_mae("smoke")
    assert path == run and not committed
    ref = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="reference"), tmp_path / reference.MODEL.name,
                          torch.float16)
    ref.with_suffix(".json").write_text(json.dumps({"epochs": 30, "n_train_images": 19000}))
    path, how, committed = provenance.shown_image_mae("smoke")
    assert path == ref and committed and "reference" in how
    _, saved = images.load_mae(path)
    assert reference.label(saved, reference.provenance(path)).startswith("reference model (30 epochs on 19,000 images")
    assert reference.label(saved, run=True).startswith("this run's model (reference profile")
    full = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="full"), tmp_path / "image_mae_full.pt")
    assert provenance.shown_image_mae("quick")[0] == full  # a GPU run, imported, replaces the CPU reference
    assert provenance.shown_image_mae("quick", run)[0] == run  # and a path given wins over all
    assert reference.MODEL == provenance.ROOT / "results" / "models" / provenance.REFERENCE_MODEL  # one file


def test_the_committed_reference_model_loads_and_has_its_provenance():
    if not reference.MODEL.is_file():
        pytest.skip("no committed reference model yet (python -m maelib reference train)")
    assert reference.MODEL.stat().st_size < 10e6
    mae, saved = images.load_mae(reference.MODEL)
    prov = reference.provenance(reference.MODEL)
    assert saved["patch_size"] <= 8 and mae.tokenizer.num_tokens >= 64
    assert {"command", "code_version", "data", "epochs", "train_s", "device"} <= set(prov)
    state = torch.load(reference.MODEL, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
