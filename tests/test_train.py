import re

import pandas as pd
import pytest
import torch
from torch import nn

from maelib.data import TensorLoader
from maelib.train import TrainConfig, fit, lr_at


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    return x, y


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 1))


def step(m, b):
    return nn.functional.mse_loss(m(b[0]), b[1])


def test_training_is_deterministic_on_cpu():
    runs = []
    for _ in range(2):
        m = model()
        h = fit(m, step, TensorLoader(problem(), 8, shuffle=True, seed=1), TrainConfig(epochs=3, lr=1e-2, seed=1),
                progress=False)
        runs.append((h, m[0].weight.detach().clone()))
    assert (runs[0][0]["epoch_s"] > 0).all()
    pd.testing.assert_frame_equal(runs[0][0].drop(columns="epoch_s"), runs[1][0].drop(columns="epoch_s"))
    assert torch.equal(runs[0][1], runs[1][1])


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    data = problem()
    cfg = TrainConfig(epochs=4, lr=1e-2, seed=3, warmup_epochs=1, checkpoint=str(tmp_path / "ck.pt"))
    straight = model()
    h_straight = fit(straight, step, TensorLoader(data, 8, shuffle=True, seed=3),
                     TrainConfig(**{**cfg.__dict__, "checkpoint": None}), progress=False)

    calls = {"n": 0}

    def crash_after_two(m):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the machine goes away during epoch 3
        return {}

    interrupted = model()
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, step, TensorLoader(data, 8, shuffle=True, seed=3), cfg, evaluate=crash_after_two,
            progress=False)
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["epoch"] == 1  # epochs 1 and 2 were saved

    resumed = model()
    seen = []
    h = fit(resumed, step, TensorLoader(data, 8, shuffle=True, seed=3), cfg,
            evaluate=lambda m: seen.append(1) or {}, progress=False)
    assert len(seen) == 2  # only epochs 3 and 4 ran
    assert list(h["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_series_equal(h["loss"], h_straight["loss"])
    for a, b in zip(resumed.parameters(), straight.parameters()):
        assert torch.equal(a, b)


def test_changed_config_does_not_resume(tmp_path):
    ck = str(tmp_path / "ck.pt")
    fit(model(), step, TensorLoader(problem(), 8), TrainConfig(epochs=2, lr=1e-2, checkpoint=ck), progress=False)
    h = fit(model(), step, TensorLoader(problem(), 8), TrainConfig(epochs=2, lr=5e-3, checkpoint=ck), progress=False)
    assert len(h) == 2 and h["lr"].iloc[0] != 0


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 10, 1.0, 0.0) for s in range(101)]
    assert lrs[0] == 0 and abs(lrs[10] - 1.0) < 1e-9 and lrs[100] < 1e-9
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


@pytest.mark.parametrize("kw, msg", [({"epochs": 0}, "epochs must be >= 1"), ({"epochs": 2, "lr": 0}, "lr must be > 0")])
def test_bad_train_config_is_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw)


def test_nan_loss_stops_training():
    with pytest.raises(FloatingPointError, match="loss became nan during epoch 1"):
        fit(model(), lambda m, b: m(b[0]).sum() * float("nan"), TensorLoader(problem(), 8),
            TrainConfig(epochs=1), progress=False)


def test_mae_steps_trace_to_one_graph_without_host_reads():
    """The image and table MAE steps, wrapped as fit wraps them, trace into a single graph: ready for
    torch.compile and CUDA graphs, and free of .item()-style reads (each a host wait per step on a GPU)."""
    from maelib import profiles, tabular
    from maelib.mae import MaskedAutoencoder
    from maelib.masking import masking_from_visible
    from maelib.tokens import Patches2d
    from maelib.train import _Step

    torch.manual_seed(0)
    image_mae = MaskedAutoencoder(Patches2d(32, 8), 32, 2, 2, decoder_dim=32, decoder_depth=1, decoder_heads=2,
                                  norm_target=True)
    table_mae = tabular.make_mae(9, profiles.resolve("tabular", "smoke"))
    cases = [(_Step(image_mae, lambda m, b: m(b[0], 0.75)[0]), (torch.randn(4, 3, 32, 32),)),
             (_Step(table_mae, tabular.step_mae(0.3)), (None, torch.randn(8, 9), torch.rand(8, 9) < 0.8))]
    for runner, batch in cases:
        torch._dynamo.reset()
        explained = torch._dynamo.explain(runner)(batch)
        assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    # the check can fail: the tight width reads the largest visible count from the tensor
    tight = _Step(table_mae, lambda m, b: m.forward_encoder(m.tokenizer.tokenize(b[1]),
                                                            masking_from_visible(b[2])).sum())
    torch._dynamo.reset()
    assert torch._dynamo.explain(tight)((None, torch.randn(8, 9), torch.rand(8, 9) < 0.8)).graph_break_count > 0


def test_progress_bar_shows_each_loss_beside_its_own_epoch(capsys):
    """Every state the bar draws pairs the epoch count with that epoch's loss (a bar iterated by the loop
    itself would draw epoch k's loss beside the count k - 1)."""
    h = fit(model(), step, TensorLoader(problem(), 8), TrainConfig(epochs=3, lr=1e-2, desc="demo"), progress=True)
    states = re.findall(r"demo:.*?(\d+)/3 .*?loss=([-\d.e+]+)", capsys.readouterr().err.replace("\r", "\n"))
    assert states and states[-1][0] == "3"
    for count, loss in states:
        assert int(count) >= 1 and loss == f"{h['loss'][int(count) - 1]:.4g}"


def test_the_models_name_the_parameters_that_skip_weight_decay():
    """Learned positions anywhere (the tabular MAE's decoder_pos too, once decayed by a name-ending rule),
    the class and mask tokens, biases and norms skip decay; weight matrices do not."""
    from types import SimpleNamespace

    from maelib import tabular
    from maelib.train import param_groups

    mae = tabular.make_mae(5, SimpleNamespace(dim=8, depth=1, heads=2))
    decay_of = {id(p): g["weight_decay"] for g in param_groups(mae, 0.05) for p in g["params"]}
    named = dict(mae.named_parameters())
    assert named["decoder_pos"].requires_grad and named["encoder.pos_embed"].requires_grad  # learned here
    for name in ("decoder_pos", "encoder.pos_embed", "encoder.cls_token", "mask_token", "decoder_embed.bias"):
        assert decay_of[id(named[name])] == 0.0, name
    assert decay_of[id(named["decoder_embed.weight"])] == 0.05


def test_the_budget_table_counts_each_arms_pretraining_and_supervised_steps_and_flops():
    from maelib.train import Arm, budget

    arms = {"MAE": Arm(lambda: None, 0.75, None, 5), "scratch": Arm(lambda: None, 1.0, None, 5),
            "matched": Arm(lambda: None, 1.0, None, 19)}
    table = budget(arms, 10, {"MAE": 14}, {"pretraining": 1.0, "supervised": 4.0}, 40)
    assert table.loc["MAE"].tolist()[:3] == [14, 5, 190]
    assert table.loc["scratch"].tolist()[:3] == [0, 5, 50] and table.loc["matched", "optimizer steps"] == 190
    assert table.loc["MAE", "training FLOPs"] == 40 * (14 * 1.0 + 5 * 4.0)  # 40 samples a pass
    assert table.loc["matched", "FLOPs / MAE arm's"] == pytest.approx(19 * 4 / 34)


def test_the_matched_arm_gets_the_epochs_nearest_the_mae_arms_flops():
    from maelib.train import matched_epochs

    assert matched_epochs(14, 5, {"pretraining": 0.41, "supervised": 1.0}) == 11  # 5 + 5.74
    assert matched_epochs(20, 8, {"pretraining": 0.013, "supervised": 1.0}) == 8  # pretraining nearly free
    assert matched_epochs(2, 2, {"pretraining": 2.0, "supervised": 1.0}) == 6


def test_step_flops_counts_a_linear_layers_forward_and_backward():
    """A bias-free linear layer on (n, k) -> (n, m): 2nkm FLOPs forward, twice that backward (the input's
    and the weight's gradients), and the gradients it made are dropped."""
    from torch import nn

    from maelib.train import step_flops

    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8, requires_grad=True)
    assert step_flops(layer, lambda m, b: m(b).sum(), x) == 3 * (2 * 3 * 8 * 4)
    assert layer.weight.grad is None
