import pytest
import torch

from maelib.masking import gather_tokens, masking_from_visible, random_masking
from maelib.tokens import Columns, Patches1d, Patches2d, sincos_pos_embed


@pytest.mark.parametrize("tok, shape", [(Patches2d(32, 8, 3), (2, 3, 32, 32)), (Patches1d(24, 4, 2), (2, 24, 2)),
                                        (Columns(7), (2, 7))])
def test_tokenize_round_trip(tok, shape):
    x = torch.randn(shape)
    t = tok.tokenize(x)
    assert t.shape == (2, tok.num_tokens, tok.token_dim)
    assert torch.equal(tok.untokenize(t), x)


def test_patches2d_token_is_one_patch():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).reshape(2, 3, 8, 8)
    t = Patches2d(8, 4, 3).tokenize(x)
    # token 1 is the top-right 4x4 patch, pixels in (row, col, channel) order
    assert torch.equal(t[0, 1].reshape(4, 4, 3), x[0, :, :4, 4:].permute(1, 2, 0))


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_random_masking_keeps_the_right_tokens(ratio):
    n, length = 5, 64
    m = random_masking(n, length, ratio, generator=torch.Generator().manual_seed(0))
    n_keep = int(length * (1 - ratio))
    assert m.keep.shape == (n, n_keep)
    for i in range(n):
        assert len(set(m.keep[i].tolist())) == n_keep  # distinct
        assert m.mask[i, m.keep[i]].sum() == 0  # kept tokens are the visible ones
    assert torch.all(m.mask.sum(1) == length - n_keep)
    # restore puts a decoder's sequence (visible tokens in keep order, then mask tokens) back in place:
    # every visible token at its own index, a mask token wherever the mask says hidden
    ids = torch.arange(length, dtype=torch.float).expand(n, -1).unsqueeze(-1)
    decoder_in = torch.cat([gather_tokens(ids, m.keep), torch.full((n, length - n_keep, 1), -1.0)], dim=1)
    restored = gather_tokens(decoder_in, m.restore)[..., 0]
    expected = torch.where(m.mask.bool(), torch.tensor(-1.0), torch.arange(length, dtype=torch.float))
    assert torch.equal(restored, expected)


def test_masks_differ_per_sample():
    m = random_masking(4, 64, 0.75, generator=torch.Generator().manual_seed(1))
    assert len({tuple(r.tolist()) for r in m.mask}) == 4


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_mask_ratio_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"mask_ratio must be in \[0, 1\)"):
        random_masking(2, 16, bad)


@pytest.mark.parametrize("width", [None, 10])
def test_masking_from_visible_keeps_exactly_the_visible_tokens(width):
    visible = torch.rand(6, 10, generator=torch.Generator().manual_seed(0)) < 0.6
    m = masking_from_visible(visible, width=width)
    assert m.n_keep == (width or int(visible.sum(1).max()))
    assert torch.equal(m.mask, (~visible).float())
    assert torch.equal(m.valid.sum(1), visible.sum(1))
    for i in range(6):
        real = m.keep[i][m.valid[i]]
        assert set(real.tolist()) == set(torch.nonzero(visible[i]).flatten().tolist())


def test_padding_slots_change_nothing_the_mae_computes():
    """A fixed width (no host read of the largest count) gives the same predictions as the tight one."""
    from maelib.mae import MaskedAutoencoder

    torch.manual_seed(0)
    mae = MaskedAutoencoder(Columns(9), dim=16, depth=2, heads=2, decoder_dim=16, decoder_depth=1).eval()
    x, visible = torch.randn(5, 9), torch.rand(5, 9) < 0.5
    tokens = mae.tokenizer.tokenize(x)
    preds = []
    for width in (None, 9):
        m = masking_from_visible(visible, generator=torch.Generator().manual_seed(1), width=width)
        preds.append(mae.forward_decoder(mae.forward_encoder(tokens, m), m))
    assert torch.allclose(preds[0], preds[1], atol=1e-5)


def test_sincos_positions_are_distinct():
    pe = sincos_pos_embed(32, (4, 4))
    assert pe.shape == (16, 32)
    assert torch.cdist(pe, pe).fill_diagonal_(1).min() > 0.1


def test_masks_are_drawn_on_the_generators_device(monkeypatch):
    """A CPU generator with tokens on another device (the GPU run of 2026-12-04 failed so: CUDA refuses
    a CPU generator for a draw on the GPU): the noise is drawn where the generator lives, then moved."""
    real_rand = torch.rand

    def strict_rand(*size, device=None, generator=None, **kw):
        if generator is not None and torch.device(device or "cpu") != generator.device:
            raise RuntimeError(f"Expected a '{torch.device(device).type}' device type for generator")
        return real_rand(*size, device=device, generator=generator, **kw)

    monkeypatch.setattr(torch, "rand", strict_rand)
    g = torch.Generator().manual_seed(0)
    on_meta = random_masking(3, 16, 0.75, "meta", g)
    assert on_meta.keep.device.type == "meta" and on_meta.keep.shape == (3, 4)
    visible = torch.zeros(3, 16, dtype=torch.bool, device="meta")
    assert masking_from_visible(visible, g, width=16).keep.device.type == "meta"
