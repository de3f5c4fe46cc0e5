import pytest
import torch

from maelib.heads import ViTClassifier, encoder_like
from maelib.mae import MaskedAutoencoder
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
