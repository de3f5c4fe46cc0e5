from types import SimpleNamespace

import pytest
import torch

from maelib import images, profiles
from maelib.heads import ViTClassifier, encoder_like
from maelib.mae import MaskedAutoencoder, ViTEncoder
from maelib.masking import masking_from_visible, random_masking
from maelib.tokens import Columns, Patches1d, Patches2d


def small_mae(tok=None, **kw):
    torch.manual_seed(0)
    return MaskedAutoencoder(tok or Patches2d(32, 8), dim=32, depth=2, heads=2, decoder_dim=16, decoder_depth=1, **kw)


@pytest.mark.parametrize("tok, shape", [(Patches2d(32, 8), (3, 3, 32, 32)), (Patches1d(24, 4), (3, 24, 1)),
                                        (Columns(9), (3, 9))])
def test_forward_shapes_every_modality(tok, shape):
    mae = small_mae(tok)
    loss, pred, mask = mae(torch.randn(shape), 0.5)
    assert pred.shape == (3, tok.num_tokens, tok.token_dim)
    assert mask.shape == (3, tok.num_tokens)
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("norm_target", [False, True])
def test_loss_ignores_visible_patches(norm_target):
    mae = small_mae(norm_target=norm_target)
    x = torch.randn(2, 3, 32, 32)
    tokens = mae.tokenizer.tokenize(x)
    m = random_masking(2, tokens.shape[1], 0.75, generator=torch.Generator().manual_seed(0))
    pred = torch.randn_like(tokens)
    changed = pred + 100 * (1 - m.mask).unsqueeze(-1) * torch.randn_like(pred)
    assert torch.allclose(mae.loss(tokens, pred, m.mask), mae.loss(tokens, changed, m.mask))
    hidden_changed = pred + m.mask.unsqueeze(-1)
    assert not torch.allclose(mae.loss(tokens, pred, m.mask), mae.loss(tokens, hidden_changed, m.mask))


def test_encoder_never_receives_masked_tokens():
    mae = small_mae().eval()
    x = torch.randn(2, 3, 32, 32)
    m = random_masking(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    seen = []
    mae.encoder.blocks[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape))
    latent = mae.forward_encoder(mae.tokenizer.tokenize(x), m)
    assert seen == [torch.Size([2, 1 + 4, 32])]  # [cls] + the 4 visible patches, nothing else
    # changing the hidden pixels does not change the encoding at all
    hidden_px = mae.tokenizer.untokenize(m.mask.unsqueeze(-1).expand(-1, -1, mae.tokenizer.token_dim))
    x2 = x + 50 * hidden_px * torch.randn_like(x)
    assert torch.equal(latent, mae.forward_encoder(mae.tokenizer.tokenize(x2), m))


def test_table_encoder_sees_only_observed_cells():
    mae = small_mae(Columns(8)).eval()
    x = torch.rand(4, 8)
    visible = torch.rand(4, 8, generator=torch.Generator().manual_seed(3)) < 0.6
    m = masking_from_visible(visible)
    a = mae.forward_encoder(mae.tokenizer.tokenize(x), m)
    x2 = torch.where(visible, x, torch.randn_like(x) * 100)
    b = mae.forward_encoder(mae.tokenizer.tokenize(x2), m)
    real = torch.cat([torch.ones(4, 1, dtype=torch.bool), m.valid], 1)
    assert torch.allclose(a[real], b[real], atol=1e-5)


def test_encoder_weights_transfer_exactly():
    mae = small_mae()
    with torch.no_grad():
        for p in mae.parameters():
            p.add_(torch.randn_like(p))
    clf = ViTClassifier(encoder_like(mae, drop_path=0.1), n_classes=5)
    src, dst = mae.encoder.state_dict(), clf.encoder.state_dict()
    assert src.keys() == dst.keys()
    for k in src:
        assert torch.equal(src[k], dst[k]), k
    scratch = ViTClassifier(encoder_like(mae, pretrained=False), n_classes=5)
    assert not torch.equal(scratch.encoder.blocks[0].attn.qkv.weight, mae.encoder.blocks[0].attn.qkv.weight)
    assert clf(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_reconstruct_pastes_visible_patches_back():
    mae = small_mae()
    x = torch.randn(2, 3, 32, 32)
    _, pred, mask = mae(x, 0.75)
    recon, pasted = mae.reconstruct(x, pred, mask)
    vis = mae.tokenizer.untokenize((1 - mask).unsqueeze(-1).expand(-1, -1, 192)).bool()
    assert recon.shape == x.shape
    assert torch.equal(pasted[vis], x[vis])


def test_normalised_reconstruction_does_not_read_hidden_pixels():
    mae = small_mae(norm_target=True).eval()
    x = torch.randn(2, 3, 32, 32)
    m = random_masking(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    pred = torch.randn(2, 16, 192)
    hidden_px = mae.tokenizer.untokenize(m.mask.unsqueeze(-1).expand(-1, -1, 192))
    x2 = x + 10 * hidden_px * torch.randn_like(x)
    a, _ = mae.reconstruct(x, pred, m.mask)
    b, _ = mae.reconstruct(x2, pred, m.mask)
    assert torch.allclose(a, b)


def test_intermediates_end_where_forward_ends():
    """forward_intermediates' last block equals forward's output before the final norm, bit for bit, with
    and without a selection of tokens (padding slots included); blocks come back in the order asked."""
    torch.manual_seed(0)
    enc = ViTEncoder(Columns(9), dim=16, depth=3, heads=2).eval()
    tokens = enc.tokenizer.tokenize(torch.randn(4, 9))
    m = masking_from_visible(torch.rand(4, 9, generator=torch.Generator().manual_seed(1)) < 0.6, width=9)
    for keep, valid in [(None, None), (m.keep, m.valid)]:
        with torch.no_grad():
            first, last = enc.forward_intermediates(tokens, (1, 3), keep=keep, valid=valid)
            assert torch.equal(last, enc(tokens, keep, valid, final_norm=False))
            assert torch.equal(enc.norm(last), enc(tokens, keep, valid))
            assert not torch.equal(first, last)
            third, second = enc.forward_intermediates(tokens, (3, 2), keep=keep, valid=valid)
            assert torch.equal(third, last) and not torch.equal(second, last)


def test_intermediates_run_no_block_past_the_last_asked_and_refuse_other_numbers():
    enc = ViTEncoder(Patches2d(16, 8), dim=16, depth=3, heads=2)
    ran = []
    for i, block in enumerate(enc.blocks, start=1):
        block.register_forward_hook(lambda mod, inp, out, i=i: ran.append(i))
    enc.forward_intermediates(torch.randn(2, 4, 192), (2, 1))
    assert ran == [1, 2]
    for blocks in [(), (0,), (4,)]:
        with pytest.raises(ValueError, match=r"blocks must be block numbers in \[1, 3\]"):
            enc.forward_intermediates(torch.randn(2, 4, 192), blocks)


def test_the_mae_is_built_by_keyword_from_a_named_size():
    for size in profiles.MAE_SIZES.values():
        mae = MaskedAutoencoder(Patches2d(32, 16), **size)
        assert {k: mae.config[k] for k in size} == size
    with pytest.raises(TypeError):
        MaskedAutoencoder(Patches2d(32, 8), 32, 2, 2, 16)  # the decoder's width only by keyword


@pytest.mark.parametrize("chapter, sizes", [("images", "MAE_SIZES"), ("segmentation", "MAE_SIZES"),
                                            ("series", "SIZES"), ("tabular", "SIZES"), ("volumes", "VOLUME_SIZES")])
def test_every_profile_uses_a_named_size(chapter, sizes):
    for profile in profiles.PROFILE_NAMES:
        p = vars(profiles.resolve(chapter, profile, device="cpu"))
        named = [name for name, size in getattr(profiles, sizes).items() if all(p[k] == v for k, v in size.items())]
        assert named, (chapter, profile)


def test_a_saved_mae_loads_back_by_keyword_and_a_foreign_config_is_refused(tmp_path):
    mae = small_mae(norm_target=True)
    path = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="smoke"), tmp_path / "mae.pt")
    again, saved = images.load_mae(path)
    assert again.config == mae.config and saved["img_size"] == 32
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in mae.state_dict().items())
    state = torch.load(path, weights_only=True)
    for config in [{**state["config"], "width": 3}, {k: v for k, v in state["config"].items() if k != "mlp_ratio"}]:
        torch.save({**state, "config": config}, tmp_path / "other.pt")
        with pytest.raises(ValueError, match="its config must name"):
            images.load_mae(tmp_path / "other.pt")


def test_versus_flat_scores_against_the_mean_of_the_visible_tokens():
    """A decoder that returns the true targets scores 0 against the flat predictor; one that returns the
    mean of each sample's visible targets scores exactly the flat predictor's loss (ratio 1)."""
    import torch

    from maelib.mae import MaskedAutoencoder, versus_flat
    from maelib.tokens import Patches2d

    torch.manual_seed(0)
    mae = MaskedAutoencoder(Patches2d(16, 4), dim=16, depth=1, heads=2, decoder_dim=8, decoder_depth=1)
    x = torch.randn(3, 3, 16, 16)
    tokens = mae.tokenizer.tokenize(x)
    mae.forward_decoder = lambda latent, masking: tokens  # a perfect reconstruction
    perfect = versus_flat(mae, x, 0.75)
    assert perfect["loss"] == pytest.approx(0) and perfect["flat"] > 0.5 and perfect["ratio"] == pytest.approx(0)

    def flat(latent, masking):
        vis = (1 - masking.mask).unsqueeze(-1)
        return ((tokens * vis).sum(1, keepdim=True) / vis.sum(1, keepdim=True)).expand_as(tokens)

    mae.forward_decoder = flat
    assert versus_flat(mae, x, 0.75)["ratio"] == pytest.approx(1)
