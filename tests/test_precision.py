"""The precision of every training and the attention path (maelib.precision): what a run asks for is what
its matrix products do, fp32 runs stay fp32, and fp32 and bf16 runs never pool or share estimates."""

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn

from maelib import estimates, precision, profiles, provenance, tuning
from maelib.data import TensorLoader
from maelib.mae import MaskedAutoencoder
from maelib.tokens import Patches2d
from maelib.train import TrainConfig, fit


def _tiny_mae():
    torch.manual_seed(0)
    return MaskedAutoencoder(Patches2d(16, 4), 16, 2, 2, decoder_dim=16, decoder_depth=1)


def _train_and_watch(prec: str):
    """Train a tiny MAE one epoch in ``prec``; return (the dtypes its linear layers produced in training,
    the model, the optimizer-free history)."""
    mae, seen = _tiny_mae(), set()

    def hook(module, args, out):
        if module.training:
            seen.add(out.dtype)

    for m in mae.modules():
        if isinstance(m, nn.Linear):
            m.register_forward_hook(hook)
    loader = TensorLoader((torch.randn(16, 3, 16, 16),), 8, shuffle=True, seed=0)
    history = fit(mae, lambda m, b: m(b[0], 0.75)[0], loader, TrainConfig(epochs=1, precision=prec), "cpu",
                  progress=False)
    return seen, mae, history


def test_a_bf16_run_multiplies_in_bf16_and_keeps_fp32_weights_and_losses():
    seen, mae, history = _train_and_watch("bf16")
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in mae.parameters())  # master weights
    assert isinstance(history["loss"].iloc[0], float) and history["loss"].notna().all()


def test_an_fp32_run_stays_fp32():
    seen, mae, _ = _train_and_watch("fp32")
    assert seen == {torch.float32}
    assert all(p.dtype == torch.float32 for p in mae.parameters())


def test_the_mae_loss_is_computed_in_fp32_under_bf16():
    mae = _tiny_mae()
    with precision.autocast("cpu", "bf16"):
        loss = mae(torch.randn(2, 3, 16, 16), 0.75)[0]
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("flags, want", [({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16"),
                                         ({"avx2", "avx512f"}, "fp32"), (set(), "fp32")])
def test_auto_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch, flags, want):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    assert precision.resolve_precision("auto", "cpu") == want
    assert precision.resolve_precision("auto", "cuda") == "bf16"
    assert precision.resolve_precision("fp32", "cuda") == "fp32"


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_tile\n")
    assert precision.cpu_flags(str(info)) >= {"avx512_bf16", "amx_tile"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_a_chapter_records_the_precision_it_resolved_never_auto(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert profiles.resolve("images", "smoke", device="cpu").precision == "bf16"
    assert profiles.resolve("tabular", "smoke", device="cpu").precision == "fp32"  # small models: fp32 on a CPU
    assert profiles.resolve("tabular", "full", device="cpu").precision == "bf16"  # "auto"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
    assert profiles.resolve("images", "smoke", device="cpu").precision == "fp32"
    assert profiles.resolve("images", "smoke", precision="bf16").precision == "bf16"
    assert not hasattr(profiles.resolve("masking", "smoke"), "precision")  # trains nothing


def test_a_bad_precision_is_refused_naming_the_parameter():
    with pytest.raises(ValueError, match=r"precision must be one of 'auto', 'fp32', 'bf16', got 'fp16'"):
        profiles.resolve("images", "smoke", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        TrainConfig(epochs=1, precision="auto")


def test_fp32_and_bf16_seeds_never_pool():
    base = vars(profiles.resolve("tabular", "smoke", precision="fp32"))
    assert tuning.setting({"resolved": base}) != tuning.setting({"resolved": {**base, "precision": "bf16"}})


def test_a_checkpoint_is_not_resumed_in_another_precision(tmp_path):
    loader = TensorLoader((torch.randn(16, 3, 16, 16),), 8, shuffle=True, seed=0)
    step = lambda m, b: m(b[0], 0.75)[0]  # noqa: E731

    def run(prec):
        cfg = TrainConfig(epochs=1, precision=prec, checkpoint=str(tmp_path / "c.pt"))
        return fit(_tiny_mae(), step, loader, cfg, "cpu", progress=False).iloc[0].to_dict()

    first = run("bf16")
    assert run("bf16") == first  # resumed: the saved epoch, not a new one
    assert run("fp32") != first  # trained anew


@pytest.mark.parametrize("device, fused", [("cpu", False), ("cuda", True)])
def test_the_attention_path_follows_the_device(device, fused):
    block = Block(16, 2)
    precision.set_attention_path(block, device)
    assert block.attn.fused_attn is fused


def test_both_attention_paths_compute_the_same_attention():
    torch.manual_seed(0)
    block, x = Block(16, 2).eval(), torch.randn(3, 9, 16)
    mask = torch.ones(3, 1, 1, 9, dtype=torch.bool)
    mask[0, ..., -2:] = False  # padding slots, as the tabular MAE has
    outs = []
    for device in ("cpu", "cuda"):
        precision.set_attention_path(block, device)
        outs.append(block(x, attn_mask=mask))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)


def test_monai_blocks_take_the_fused_path_only_where_they_support_it():
    from monai.networks.blocks.selfattention import SABlock

    plain, saving = SABlock(16, 2), SABlock(16, 2, save_attn=True)
    for m in (plain, saving):
        precision.set_attention_path(m, "cuda")
    assert plain.use_flash_attention and not saving.use_flash_attention
    precision.set_attention_path(plain, "cpu")
    assert not plain.use_flash_attention


def test_time_estimates_are_kept_apart_by_precision(tmp_path, monkeypatch):

    fp32 = {"chapter": "tabular", "profile": "quick", "parameters": {}, "seed": 0, "wall_s": 600.0,
            "metrics": {}, "resolved": {"seeds": 1}, "version": "v"}
    monkeypatch.setattr(provenance, "load_records", lambda chapter=None, root=None: [fp32])
    assert [r for r, _ in estimates._classified("tabular", "quick", tmp_path, "fp32")] == [fp32]
    assert estimates._classified("tabular", "quick", tmp_path, "bf16") == []


def test_monai_mae_trains_under_bf16():
    """MONAI's MAE decoder writes bf16 tokens into float32 mask tokens (an index put autocast does not
    cast); the volumes chapter's MAE takes its step in bf16 all the same, its loss in fp32."""
    from maelib import volumes

    p = profiles.resolve("volumes", "smoke", precision="bf16")
    mae = volumes.make_mae(p, p.roi)
    with precision.autocast("cpu", "bf16"):
        loss = volumes.mae_loss(mae, torch.randn(1, 1, *p.roi), p.mask_ratio)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
