"""The fine-tuning recipes: layer-wise decay groups (none for a ViT from scratch), the original MAE's
global-pool classifier and learned positions, the frozen linear probe, each arm's learning rate chosen on
held-out training data, and Dice against a hand computation."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from maelib import budgets, images, profiles, segmentation, train, volumes
from maelib.heads import LinearProbe, ViTClassifier, encoder_like
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d
from maelib.train import param_groups


@pytest.fixture
def mae():
    torch.manual_seed(0)
    return MaskedAutoencoder(Patches2d(16, 8), dim=16, depth=2, heads=2, decoder_dim=16, decoder_depth=1)


def scales(model, decay):
    groups = param_groups(model, 0.05, model.layer_of, model.encoder.depth + 1, decay)
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr_scale"], g["weight_decay"]) for g in groups for p in g["params"]}


def test_layer_decay_groups_follow_the_mae_recipe(mae):
    model = ViTClassifier(encoder_like(mae, learn_positions=True), 5)
    s = scales(model, 0.5)
    # depth 2: embeddings are layer 0 (0.5^3), block i is layer i + 1, the head is layer 3 (scale 1)
    assert s["encoder.embed.weight"] == (0.125, 0.05) and s["encoder.pos_embed"] == (0.125, 0.0)
    assert s["encoder.cls_token"] == (0.125, 0.0)
    assert s["encoder.blocks.0.attn.qkv.weight"] == (0.25, 0.05) and s["encoder.blocks.1.mlp.fc1.weight"] == (0.5, 0.05)
    assert s["encoder.blocks.1.norm1.weight"] == (0.5, 0.0) and s["encoder.blocks.0.attn.qkv.bias"][1] == 0.0
    assert s["head.weight"] == (1.0, 0.05) and s["fc_norm.weight"] == (1.0, 0.0)
    assert "encoder.norm.weight" not in s  # the encoder's final norm is unused by the global-pool head


def test_scratch_gets_no_layer_decay_and_a_random_encoder(mae, monkeypatch):
    """The chapters' arms (images.arms, segmentation.arms): the MAE arm starts from the pretrained encoder
    with layer-wise decay, scratch from a random one with none; finetune gives scratch's optimizer groups
    one learning-rate scale (1), the MAE arm one per layer."""
    p = SimpleNamespace(precision="fp32", batch_size=4, finetune_epochs=1, epochs=1, pretrain_epochs=3, seed=0, drop_path=0.0,
                        layer_decay=0.75, finetune_lr=None, scratch_lr=None, matched_lr=None, width=8)
    torch.manual_seed(1)
    mae = MaskedAutoencoder(Patches2d(16, 8), dim=16, depth=4, heads=2, decoder_dim=16, decoder_depth=1)
    weight = mae.encoder.blocks[0].attn.qkv.weight
    encoders = {"images": lambda build: build(), "segmentation": lambda build: build().pyramid.encoder}
    flops = {"pretraining": 1.0, "supervised": 4.0}  # a pretraining step a quarter of a supervised one
    pre = segmentation.in_domain(p, 8, flops)
    matched = budgets.matched_epochs(pre, p.epochs, 8, flops)
    for chapter, arms in (("images", images.arms(mae, p, matched)), ("segmentation", segmentation.arms(mae, p, 3, matched))):
        pre, scratch, matched = arms.values()
        assert (pre.layer_decay, scratch.layer_decay, matched.layer_decay) == (0.75, 1.0, 1.0), chapter
        assert torch.equal(encoders[chapter](pre.build).blocks[0].attn.qkv.weight, weight), chapter
        assert not torch.equal(encoders[chapter](scratch.build).blocks[0].attn.qkv.weight, weight), chapter
        # the budget-matched arm trains for the MAE arm's pretraining and fine-tuning FLOPs: 1 + 3 / 4 epochs
        assert matched.epochs == 2 and scratch.epochs == pre.epochs, chapter
    scales = {}

    def fake_fit(model, step, loader, cfg, device, groups=None, **kw):
        scales[cfg.desc] = {g["lr_scale"] for g in groups}
        return pd.DataFrame([{"epoch": 1, "loss": 0.0, "val_acc": 0.5}])

    monkeypatch.setattr(images, "fit", fake_fit)
    pair = (torch.zeros(8, 3, 16, 16, dtype=torch.uint8), torch.arange(8) % 2)
    for arm, a in images.arms(mae, p, 2).items():
        images.finetune(a.build(), {"train": pair, "val": pair, "names": ["a", "b"]}, p, "cpu", arm, lr=1e-3,
                        layer_decay=a.layer_decay, epochs=a.epochs)
    assert scales["scratch"] == {1.0} == scales[images.MATCHED] and len(scales["MAE + fine-tune"]) == mae.config["depth"] + 2


def test_global_pool_skips_the_encoders_final_norm(mae):
    """As the original MAE: mean of the last block's patch tokens, then fc_norm; the encoder's norm is
    not applied (changing it changes nothing), and the positions are fine-tuned."""
    model = ViTClassifier(encoder_like(mae, learn_positions=True), 3).eval()
    x = torch.randn(2, 3, 16, 16)
    before = model(x)
    with torch.no_grad():
        model.encoder.norm.weight.copy_(torch.rand(16) * 3)
        model.encoder.norm.bias.copy_(torch.randn(16))
    assert torch.allclose(model(x), before)
    assert model.encoder.pos_embed.requires_grad and not model.encoder.norm.weight.requires_grad


def test_linear_probe_trains_only_the_probe(mae):
    p = SimpleNamespace(seed=0, probe_epochs=2, precision="fp32")
    g = torch.Generator().manual_seed(0)
    data = {"train": (torch.randint(0, 255, (16, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(16) % 2),
            "val": (torch.randint(0, 255, (8, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(8) % 2),
            "names": ["a", "b"]}
    before = {k: v.clone() for k, v in mae.encoder.state_dict().items()}
    probe, history = images.linear_probe(mae.encoder, data, p, "cpu")
    assert all(torch.equal(before[k], v) for k, v in mae.encoder.state_dict().items())
    bn = probe.net[0]
    assert isinstance(probe, LinearProbe) and not bn.affine and bn.weight is None and len(history) == 2


def test_each_arm_chooses_its_lr_on_held_out_training_images(monkeypatch):
    """choose_lr scores every grid value on a held-out part of the training images and never sees the
    validation split; a fixed learning rate skips the grid."""
    y = torch.arange(40) % 4
    data = {"train": (torch.arange(40).view(40, 1, 1, 1).expand(40, 3, 2, 2).to(torch.uint8), y),
            "val": "the reported split", "names": list("abcd")}
    held = images.holdout(data)
    assert len(held["val"][1]) == 4 and torch.equal(held["val"][1].sort().values, torch.arange(4))
    assert not set(held["val"][0][:, 0, 0, 0].tolist()) & set(held["train"][0][:, 0, 0, 0].tolist())
    seen = []

    def fake_finetune(encoder, d, p, device, desc, ckpt_dir=None, lr=None, layer_decay=1.0, progress=True,
                      epochs=None):
        seen.append(d["val"])
        return None, pd.DataFrame([{"val_acc": {1e-3: 0.2, 2e-3: 0.6, 4e-3: 0.4}[lr]}])

    monkeypatch.setattr(images, "finetune", fake_finetune)
    p = SimpleNamespace(seed=0, lr_grid=[1e-3, 2e-3, 4e-3])
    lr, grid = images.choose_lr(lambda: None, data, p, "cpu", "scratch", None, 1.0)
    assert lr == 2e-3 and grid == {1e-3: 20.0, 2e-3: 60.0, 4e-3: 40.0}
    assert all(v is not data["val"] for v in seen) and len(seen) == 3
    assert images.choose_lr(lambda: None, data, p, "cpu", "scratch", None, 1.0, fixed=5e-4) == (5e-4, {})


def test_a_grid_grows_past_the_end_where_its_best_value_lies():
    """The best value at the top of the grid: the grid doubles on until the score turns (or twice at
    most); at the bottom it halves; a value whose training diverges is never chosen."""
    tried = []

    def peak_at(best):
        def score(lr):
            tried.append(lr)
            return -abs(math.log2(lr / best))
        return score

    lr, scores = train.grid_search([1e-3, 2e-3, 4e-3], peak_at(8e-3), extend=2)
    assert lr == 8e-3 and list(scores) == [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]
    tried.clear()
    lr, scores = train.grid_search([1e-3, 2e-3, 4e-3], peak_at(1e-1), extend=2)
    assert lr == 1.6e-2 and len(tried) == 5  # stops after two extensions
    lr, scores = train.grid_search([1e-3, 2e-3, 4e-3], peak_at(5e-4), extend=2)
    assert lr == 5e-4 and min(scores) == 2.5e-4
    assert train.grid_search([1e-3, 2e-3, 4e-3], peak_at(2e-3), extend=2)[1].keys() == {1e-3, 2e-3, 4e-3}
    assert train.grid_search([1e-3, 2e-3, 4e-3], peak_at(8e-3))[0] == 4e-3  # extend=0: the grid as given
    assert len(train.grid_search([1e-3, 2e-3, 4e-3], lambda lr: 10.0, extend=2)[1]) == 3  # flat: no growth

    def diverges_above(lr):
        if lr > 4e-3:
            raise FloatingPointError("loss became nan")
        return lr
    with pytest.warns(UserWarning, match="diverged at 0.008"):
        lr, scores = train.grid_search([1e-3, 2e-3, 4e-3], diverges_above, extend=2)
    assert lr == 4e-3 and scores[8e-3] is None and len(scores) == 4
    with pytest.raises(ValueError, match="extend"):
        train.grid_search([1e-3], diverges_above, extend=-1)


def test_segmentation_holds_out_the_tail_of_the_training_images():
    data = {"train": (torch.arange(20).view(20, 1, 1, 1), torch.zeros(20, 1, 1)), "val": "reported"}
    held = segmentation.holdout(data)
    assert held["val"][0].flatten().tolist() == [18, 19] and len(held["train"][0]) == 18


def test_profiles_choose_learning_rates_by_default():
    for chapter in ("images", "segmentation"):
        for name in profiles.PROFILE_NAMES:
            p = profiles.resolve(chapter, name)
            assert p.finetune_lr is None and p.scratch_lr is None and len(p.lr_grid) >= 3


class Oracle(torch.nn.Module):
    """Logits that predict the class written in the image (its intensity, rounded)."""

    def forward(self, x):
        return 10.0 * F.one_hot(x[:, 0].round().long().clamp(0, 2), 3).permute(0, 4, 1, 2, 3).float()


def test_dice_against_a_hand_computation():
    truth = torch.zeros(1, 1, 16, 16, 16, dtype=torch.uint8)
    truth[0, 0, :8, :8, :8] = 1  # 512 voxels of class 1
    truth[0, 0, 8:, 8:, 8:4 + 8] = 2  # 256 voxels of class 2
    pred = torch.zeros(1, 1, 16, 16, 16)
    pred[0, 0, :8, :8, :4] = 1  # 256 of the 512 class-1 voxels, nothing else
    pred[0, 0, 8:, 8:, 8:] = 2  # 512 voxels, 256 of them truly class 2
    vs = volumes.VolumeSet(pred, truth, torch.tensor([[16, 16, 16]]))
    out = volumes.evaluate_dice(Oracle(), vs, (16, 16, 16), 3, "cpu")
    d1 = 2 * 256 / (256 + 512)
    d2 = 2 * 256 / (512 + 256)
    assert out["dice_1"] == pytest.approx(d1) and out["dice_2"] == pytest.approx(d2)
    assert out["dice"] == pytest.approx((d1 + d2) / 2)


def test_a_pretraining_step_costs_less_the_more_it_hides_and_counting_draws_nothing():
    """FLOPs per image of the image MAE's pretraining step fall with the mask ratio (the encoder sees only
    the visible patches); the supervised step does not depend on it; counting leaves torch's random
    state as it was, so a chapter's numbers do not move because it counted."""
    from maelib import profiles

    low, high = (images.flops_per_sample(profiles.resolve("images", "smoke", mask_ratio=r)) for r in (0.25, 0.75))
    assert high["pretraining"] < low["pretraining"] and high["supervised"] == low["supervised"]
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    segmentation.flops_per_sample(profiles.resolve("segmentation", "smoke"), 3)
    assert torch.equal(torch.rand(1), expected)


def test_the_image_mae_counts_its_unlabelled_images_in_the_budget():
    """Chapter 1's MAE pretrains on the labelled images and the unlabelled ones: its pretraining passes cover
    both, so its FLOPs and steps count both, and the budget-matched arm's epochs match that, not a pass over
    the labelled images alone."""
    p = SimpleNamespace(pretrain_epochs=4, batch_size=10)
    x = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    flops = {"pretraining": 1.0, "supervised": 3.0}
    alone = images.pretraining(p, {"train": (x.expand(30, -1, -1, -1), None)}, flops)
    more = images.pretraining(p, {"train": (x.expand(30, -1, -1, -1), None), "unlabelled": x.expand(60, -1, -1, -1)}, flops)
    assert (alone.images, alone.steps, alone.flops) == (30, 12, 120.0) and alone.what == "30 training images"
    assert (more.images, more.steps, more.flops) == (90, 36, 360.0) and "60 unlabelled" in more.what
    assert budgets.matched_epochs(alone, 5, 30, flops) == 5 + round(120 / 90)
    assert budgets.matched_epochs(more, 5, 30, flops) == 5 + 4  # three times the images: 360 / 90 epochs


def test_a_transferred_mae_counts_its_own_pretraining_in_the_budget(tmp_path):
    """Segmentation from an image MAE pretrained elsewhere: the MAE arm's budget adds that pretraining's
    passes, steps and FLOPs (from the provenance file beside the checkpoint, counted on its own model), the
    budget-matched arm trains the epochs that match them, and a checkpoint without a provenance file, or
    with an encoder of other widths, is refused by name."""
    import json

    torch.manual_seed(0)
    src = MaskedAutoencoder(Patches2d(16, 8), dim=16, depth=4, heads=2, decoder_dim=8, decoder_depth=1)
    path = images.save_mae(src, SimpleNamespace(mask_ratio=0.75, profile="test"), tmp_path / "src.pt")
    with pytest.raises(ValueError, match="mae_checkpoint .*no provenance file"):
        segmentation.transferred(path)
    path.with_suffix(".json").write_text(json.dumps(
        {"epochs": 3, "n_train_images": 100, "schedule": {"batch_size": 10, "mask_ratio": 0.75}}))
    pre = segmentation.transferred(path)
    flops_1 = segmentation.flops_per_sample(SimpleNamespace(img_size=16, patch_size=8, dim=16, depth=4, heads=2,
                                                            decoder_dim=8, decoder_depth=1, norm_target=False,
                                                            mask_ratio=0.75, width=8), 3)
    assert (pre.passes, pre.images, pre.steps) == (3, 100, 30)
    assert pre.flops == pytest.approx(300 * flops_1["pretraining"], rel=1e-6)
    p = SimpleNamespace(epochs=2, layer_decay=0.75, finetune_lr=None, scratch_lr=None, matched_lr=None, width=8)
    matched = budgets.matched_epochs(pre, p.epochs, 10, flops_1)
    assert matched == round(2 + pre.flops / (10 * flops_1["supervised"]))
    target = MaskedAutoencoder(Patches2d(16, 8), dim=16, depth=4, heads=2, decoder_dim=16, decoder_depth=2)
    assert images.load_pretrained(target, path) == ["pos_embed"]  # remade for the size; the decoder may differ
    assert torch.equal(target.encoder.blocks[0].attn.qkv.weight, src.encoder.blocks[0].attn.qkv.weight)
    table = budgets.arm_budget(segmentation.arms(target, p, 3, matched), pre, flops_1, 10, 5)
    mae_row = table.loc["MAE init"]
    assert mae_row["pretraining passes"] == 3 and mae_row["optimizer steps"] == 30 + 2 * 2
    assert mae_row["training FLOPs"] == pytest.approx(pre.flops + 2 * 10 * flops_1["supervised"])
    assert table.loc[segmentation.MATCHED, "FLOPs / MAE arm's"] == pytest.approx(1.0, abs=0.5 / (2 + pre.flops / (10 * flops_1["supervised"])))
    wider = MaskedAutoencoder(Patches2d(16, 8), dim=32, depth=4, heads=2, decoder_dim=16, decoder_depth=1)
    with pytest.raises(ValueError, match="mae_checkpoint .*other widths"):
        images.load_pretrained(wider, path)
