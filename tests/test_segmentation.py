import numpy as np
import pytest
import torch

from conftest import data_folder
from maelib import segmentation
from maelib.data import seg2d
from maelib.mae import ViTEncoder
from maelib.tokens import Patches2d


def test_pyramid_blocks_scale_with_depth():
    assert segmentation.pyramid_blocks(12) == (3, 6, 9, 12)
    assert segmentation.pyramid_blocks(4) == (1, 2, 3, 4)
    for depth in range(4, 25):  # evenly spaced, ending at the last block (depth 6 once gave 2, 3, 4, 6)
        blocks = segmentation.pyramid_blocks(depth)
        assert len(set(b - a for a, b in zip(blocks, blocks[1:]))) == 1 and blocks[-1] == depth and blocks[0] >= 1
    with pytest.raises(ValueError, match="at least 4 blocks"):
        segmentation.pyramid_blocks(3)


def test_pyramid_shapes():
    enc = ViTEncoder(Patches2d(64, 8), dim=32, depth=4, heads=2)
    levels = segmentation.ViTPyramid(enc)(torch.randn(2, 3, 64, 64))
    assert [tuple(l.shape) for l in levels] == [(2, 32, 32, 32), (2, 32, 16, 16), (2, 32, 8, 8), (2, 32, 4, 4)]


def test_upernet_output_matches_the_input_size():
    model = segmentation.ViTUPerNet(ViTEncoder(Patches2d(32, 8), dim=16, depth=4, heads=2), n_classes=5, width=8)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5, 32, 32)


def test_pixel_accuracy_and_miou_on_a_hand_made_case():
    true = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 2]])
    cm = segmentation.confusion(pred, true, n_classes=4)
    assert cm.sum() == 6  # the two void pixels are skipped
    s = segmentation.seg_scores(cm)
    assert s["pixel_acc"] == pytest.approx(4 / 6)
    # IoU: class 0 = 1/(2+2-1) = 1/3, class 1 = 2/(2+3-2) = 2/3, class 2 = 1/2; class 3 is absent
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_a_class_predicted_but_absent_counts_as_zero_iou():
    """mIoU averages over classes with a non-empty union (truth or prediction), as benchmark code does:
    predicting class 3 where it never occurs costs an IoU of 0 in the mean; a class neither present nor
    predicted is left out."""
    true = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 3, 1, 1]])
    s = segmentation.seg_scores(segmentation.confusion(pred, true, n_classes=5))
    # class 0: 1/2, class 1: 2/2, class 3 (absent, predicted once): 0; classes 2 and 4 are left out
    assert s["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert s["iou"][3] == 0 and s["iou"][2] != s["iou"][2]


def test_joint_crop_keeps_labels_aligned():
    blocks = torch.arange(16).reshape(4, 4)
    y = blocks.repeat_interleave(8, 0).repeat_interleave(8, 1).expand(6, 32, 32).contiguous()
    x = y[:, None].float().expand(6, 3, 32, 32).contiguous()
    xc, yc = segmentation.joint_crop_flip(x, y, torch.Generator().manual_seed(0), scale=(0.3, 1))
    agree = (xc[:, 0] - yc.float()).abs() < 0.5
    assert agree.float().mean() > 0.9  # only pixels on block edges may differ (bilinear vs nearest)
    assert not torch.equal(yc[0], y[0])  # it did crop


def test_camvid_loader_gives_aligned_pairs(isolated_cache):
    data_folder("camvid")
    d = seg2d.load_camvid(64, limit=5)
    for split, n in (("train", 5), ("val", 5), ("test", 5)):
        x, y = d[split]
        assert x.shape == (n, 3, 64, 64) and y.shape == (n, 64, 64)
        vals = set(y.unique().tolist())
        assert vals <= set(range(11)) | {seg2d.IGNORE}
    assert len(d["classes"]) == 11
    # sky is at the top of driving scenes, road at the bottom: labels align with their images
    y = d["train"][1]
    assert (y[:, :8] == 0).float().mean() > (y[:, -8:] == 0).float().mean()
    assert (y[:, -8:] == 3).float().mean() > (y[:, :8] == 3).float().mean()


def test_ade20k_loader_on_the_genuine_sample():
    data_folder("ade20k_sample")
    d = seg2d.load_ade20k(64, train_optional=True)
    x, y = d["val"]
    assert x.shape == (3, 3, 64, 64) and y.shape == (3, 64, 64)
    vals = set(y.unique().tolist())
    assert vals <= set(range(150)) | {seg2d.IGNORE}
    assert {0, 1, 2} <= vals  # wall, building, sky (ids 1, 2, 3 in the files) are in every sample
    assert len(d["classes"]) == 150 and d["classes"][0].startswith("wall")


def test_the_figure_shows_scenes_that_differ_not_neighbouring_frames():
    """Issue #36: Fig. 3.2 showed four near-identical consecutive CamVid frames."""
    y = torch.zeros(12, 8, 8, dtype=torch.long)  # twelve frames of one class...
    y[5, :4] = 3  # ...but for one with another class in half of it
    y[9] = 2  # and one of a third class entirely
    y[7, 0, 0] = 255  # void pixels count for no class
    chosen = segmentation.distinct_samples(y, 3, n_classes=4).tolist()
    assert chosen[0] == 0 and set(chosen[1:]) == {5, 9}
    assert len(segmentation.distinct_samples(y[:2], 4, n_classes=4)) == 2  # no more than there are


def test_frame_items_give_back_the_miou_of_all_frames():
    """Per-frame intersections and unions, summed over the frames by stats' "iou" aggregate, are exactly the
    mIoU of the whole validation split's confusion matrix (so the bootstrap resamples the reported metric)."""
    from maelib import stats

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (5, 8, 8), generator=g)
    y[0, :2] = segmentation.IGNORE
    logits = torch.randn(5, 4, 8, 8, generator=g)

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return logits[: len(x)]  # one batch of all five frames

    x = torch.zeros(5, 3, 8, 8)
    items = segmentation.frame_items(Fixed(), x, y, 4, "cpu")
    pred = logits.argmax(1)
    whole = segmentation.seg_scores(segmentation.confusion(pred, y, 4))["miou"]
    assert len(items) == 5 and stats.item_scores(np.asarray([items], float), "iou")[0] == pytest.approx(whole)
