import numpy as np
import pandas as pd
import pytest
import torch

from conftest import data_folder
from maelib import profiles, series
from maelib.data import ett


@pytest.fixture(scope="module")
def etth1():
    data_folder("ETT")
    return ett.load(lag=24, horizon=1)


def test_loader_rows_and_split_sizes(etth1):
    df, source = ett.load_frame()
    assert len(df) == 17_420 and "OT" in df
    assert source["verified"] and source["file"] == "ETTh1.csv"
    assert etth1["sizes"] == (12_194, 3_484, 1_742)
    for part, n in zip(ett.SPLITS, etth1["sizes"]):
        assert len(etth1["raw"][part]) == n
        assert len(etth1[part][0]) == n - 24 - 1 + 1  # every window inside the part


def test_no_window_crosses_a_split(etth1):
    scaler = etth1["scaler"]
    for part in ett.SPLITS:
        x, y = etth1[part]
        raw = scaler.transform(etth1["raw"][part]).astype(np.float32)
        assert np.array_equal(x[0], raw[:24]) and np.array_equal(y[-1], raw[-1:])  # first and last inside
    # dates are contiguous and ordered: train ends before val starts, val before test
    d = etth1["dates"]
    assert d["train"][-1] < d["val"][0] and d["val"][-1] < d["test"][0]


def test_scaler_is_fit_on_training_data_only(etth1, monkeypatch):
    train = etth1["raw"]["train"]
    assert etth1["scaler"].low == train.min() and etth1["scaler"].high == train.max()
    assert etth1["train"][0].min() >= 0 and etth1["train"][0].max() <= 1
    # a series whose later parts hold the extremes: the scaler must not see them
    values = np.concatenate([np.linspace(0, 1, 70), np.full(20, 5.0), np.full(10, -3.0)])
    frame = pd.DataFrame({"date": pd.date_range("2020", periods=100, freq="h"), "OT": values})
    monkeypatch.setattr(ett, "load_frame", lambda data_dir=None, dataset="ETTh1": (frame, {}))
    d = ett.load(lag=3, horizon=1)
    assert (d["scaler"].low, d["scaler"].high) == (0.0, 1.0)
    assert d["val"][0].max() == 5.0 and d["test"][0].min() == -3.0


def test_windows_are_exact():
    x, y = ett.windows(np.arange(10.0), lag=3, horizon=2)
    assert x.shape == (6, 3) and y.shape == (6, 2)
    assert x[2].tolist() == [2, 3, 4] and y[2].tolist() == [5, 6]


def test_persistence_mse_equals_numpy(etth1):
    x, y = etth1["test"]
    direct = np.mean((x[:, -1] - y[:, 0]) ** 2)
    lib = series.scores(series.persistence(x, 1), y, etth1["scaler"])["mse"]
    assert lib == pytest.approx(direct, rel=1e-6)


def test_linear_ar_recovers_a_linear_process():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    y = x @ np.array([[0.5], [-0.2], [0.1], [0.9]]) + 0.3
    assert np.allclose(series.LinearAR().fit(x, y).predict(x), y, atol=1e-8)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_shapes(kind):
    assert series.RecurrentForecaster(kind, horizon=3, hidden=8)(torch.randn(5, 24)).shape == (5, 3)


@pytest.mark.parametrize("net", [lambda p: series.RecurrentForecaster("gru", 2, 8),
                                 lambda p: series.TransformerForecaster(series.make_encoder(p, 1), 2)])
def test_an_untrained_forecaster_is_persistence_and_training_moves_it(net):
    p = profiles.resolve("series", "smoke")
    model = series.FromLast(net(p))
    x = torch.randn(6, p.lag)
    assert torch.equal(model(x), x[:, -1:].expand(6, 2))
    loss = torch.nn.functional.mse_loss(model(x), torch.randn(6, 2))
    loss.backward()
    assert model.net.head.weight.grad.abs().sum() > 0


def test_masked_transformer_hides_inputs_only_in_training():
    p = profiles.resolve("series", "smoke")
    model = series.TransformerForecaster(series.make_encoder(p, 1), 1, mask_ratio=0.75)
    seen = []
    model.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    x = torch.randn(2, p.lag)
    model.train()(x)
    model.eval()(x)
    assert seen == [1 + p.lag // 4, 1 + p.lag]


@pytest.mark.parametrize("kw, msg", [
    ({"lag": 0}, r"lag must be in \[1, inf\)"),
    ({"horizon": 0}, r"horizon must be in \[1, inf\)"),
    ({"mask_ratios": [0.5, 1.0]}, r"mask_ratios must be in \(0, 1\), got 1.0"),
    ({"split": [0.9, 0.1, 0.0]}, r"split must be in \(0, 1\)"),
    ({"split": [0.7, 0.2, 0.2]}, r"summing to 1"),
    ({"split": [0.9, 0.0999, 0.0001], "lag": 24}, r"split leaves the test part with 1 rows"),
])
def test_bad_series_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("series", "smoke", **{"patch_size": 1, **kw})


def test_too_short_part_is_a_clear_error():
    with pytest.raises(ValueError, match="too short for lag=30 and horizon=1"):
        ett.windows(np.arange(20.0), 30, 1)


def test_each_next_step_model_chooses_its_learning_rate_on_validation(monkeypatch):
    """Every rate of the grid trains; the lowest best validation MSE wins and that model is the one
    scored on the test part; a rate in lrs (the seed-0 run's) skips the grid."""
    import pandas as pd
    from types import SimpleNamespace

    trained = []

    def fake_train(model, data, p, device, desc, seed, lr=None):
        trained.append(lr)
        model.lr = lr
        return pd.DataFrame({"val_mse": [{1e-3: 0.5, 2e-3: 0.2, 4e-3: 0.3}[lr]]})

    monkeypatch.setattr(series, "train_forecaster", fake_train)
    monkeypatch.setattr(series, "predict", lambda model, x, device: np.full(len(x), model.lr))
    p = SimpleNamespace(lr=None, lr_grid=[1e-3, 2e-3, 4e-3])
    data = {"test": (np.zeros((4, 2)), np.zeros((4, 1)))}
    out = series.Trained()
    series._train_scored(lambda: torch.nn.Linear(1, 1), data, p, "cpu", "RNN", 0, out, None)
    assert sorted(trained) == [1e-3, 2e-3, 4e-3] and out.lr["RNN"] == 2e-3 and out.val["RNN"] == 0.2
    assert (out.preds["RNN"] == 2e-3).all() and out.grid["RNN"] == {1e-3: 0.5, 2e-3: 0.2, 4e-3: 0.3}
    trained.clear()
    series._train_scored(lambda: torch.nn.Linear(1, 1), data, p, "cpu", "RNN", 0, out, {"RNN": 4e-3})
    assert trained == [4e-3] and out.grid["RNN"] == {}


def test_the_papers_arms_are_plain_and_their_residual_copies_a_second_comparison(monkeypatch):
    """Table 2's claim is judged on the paper's transformers as it built them (the forecast itself, no
    FromLast); the copies from the last value form the second comparison, each with per-window errors."""
    from types import SimpleNamespace

    built = {}

    def fake_train(model, data, p, device, desc, seed, lr=None):
        built[desc] = model
        return pd.DataFrame({"val_mse": [0.1 if "mask 0.5" in desc else 0.2]})

    monkeypatch.setattr(series, "train_forecaster", fake_train)
    monkeypatch.setattr(series, "predict", lambda model, x, device: np.full((len(x), 1), 0.5))
    monkeypatch.setattr(series, "mae_recipe", lambda *a, **k: None)
    p = SimpleNamespace(lr=1e-3, lr_grid=[1e-3], horizon=1, hidden=4, lag=8, dim=8, depth=1, heads=2,
                        mask_ratios=[0.25, 0.5], seed=0, seeds=2)
    rng = np.random.default_rng(0)
    data = {part: (rng.random((6, 8), dtype=np.float32), rng.random((6, 1), dtype=np.float32))
            for part in ("train", "val", "test")}
    data["scaler"] = SimpleNamespace(inverse=lambda a: a)
    runs = series.seed_runs(data, p, "cpu")
    assert isinstance(built[series.NO_MASKING], series.TransformerForecaster)
    assert isinstance(built[series.masked_name(0, residual=True)], series.FromLast)
    assert runs.claim.chosen == [series.masked_name(0.5)] * 2
    assert runs.residual.chosen == [series.masked_name(0.5, residual=True)] * 2
    assert len(runs.claim.mae_items[0]) == 6 and runs.claim.mae_items[0][0] == pytest.approx(
        float(f"{(0.5 - data['test'][1][0, 0]) ** 2:.5g}"))
