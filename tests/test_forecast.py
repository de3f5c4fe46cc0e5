"""The long-horizon protocol (maelib.data.ett.load_months, maelib.forecast) and the published references."""

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, data_folder
from maelib import forecast, profiles, published
from maelib.data import ett

# the DLinear numbers of the issue (LTSF-Linear's univariate ETTh1 script, to four decimals)
DLINEAR_ISSUE = {96: ("0.0559", "0.1803"), 192: ("0.0712", "0.2042"), 336: ("0.0977", "0.2439"),
                 720: ("0.1186", "0.2741")}


@pytest.fixture(scope="module")
def etth1():
    data_folder("ETT")
    return ett.load_months(lag=336, horizon=96)


def synthetic_frame(n_rows: int) -> pd.DataFrame:
    """An hourly OT series whose validation and test months hold extremes the training months never see."""
    train_end, val_end = 12 * 720, 16 * 720
    values = np.concatenate([np.sin(np.arange(train_end) / 24.0), np.full(val_end - train_end, 50.0),
                             np.full(n_rows - val_end, -40.0)])
    return pd.DataFrame({"date": pd.date_range("2016-07-01", periods=n_rows, freq="h"), "OT": values})


def test_the_split_is_twelve_four_four_months(etth1):
    assert etth1["ends"] == (8640, 11520, 14400)
    assert [len(etth1[s][0]) for s in ett.SPLITS] == [8640 - 336 - 96 + 1, 2880 - 96 + 1, 2880 - 96 + 1]


def test_validation_and_test_inputs_reach_back_into_the_part_before(etth1):
    scaled = etth1["scaler"].transform(ett.load_frame()[0]["OT"].to_numpy())
    x, y = etth1["test"]
    assert np.allclose(x[0], scaled[11520 - 336:11520], atol=1e-6)  # the first test input: the last val rows
    assert np.allclose(y[0], scaled[11520:11520 + 96], atol=1e-6)  # its target: the first test rows
    assert np.allclose(y[-1], scaled[14400 - 96:14400], atol=1e-6)  # the last target ends with the test months


def test_the_scaler_is_fit_on_the_training_months_only(etth1, monkeypatch):
    """Fails when the scaler sees a single row past the 12 training months."""
    ot = ett.load_frame()[0]["OT"].to_numpy()
    assert etth1["scaler"].mean == pytest.approx(ot[:8640].mean(), abs=1e-12)
    assert etth1["scaler"].std == pytest.approx(ot[:8640].std(), abs=1e-12)
    frame = synthetic_frame(17_420)
    monkeypatch.setattr(ett, "load_frame", lambda data_dir=None, dataset="ETTh1": (frame, {}))
    d = ett.load_months(lag=336, horizon=96)
    train = frame["OT"].to_numpy()[:8640]
    assert (d["scaler"].mean, d["scaler"].std) == (pytest.approx(train.mean(), abs=1e-12),
                                                   pytest.approx(train.std(), abs=1e-12))
    assert d["test"][1].min() == pytest.approx((-40.0 - train.mean()) / train.std(), rel=1e-5)


def test_every_test_window_is_scored(etth1):
    """Fails when the last incomplete batch of test windows is dropped, in the data or in the scoring."""
    x, y = etth1["test"]
    assert len(x) == etth1["ends"][2] - etth1["ends"][1] - 96 + 1 == 2785
    model = forecast.DLinear(336, 96)
    pred = forecast.predict(model, x, "cpu", batch_size=128)  # 2785 = 21 x 128 + 97
    assert pred.shape == y.shape
    run = {"pred": {"persistence": forecast.persistence(x, 96)}, "history": {}}
    row = forecast.score_rows(run, etth1, 96, seed=0)[0]
    assert row["n_test"] == 2785 and row["n_kept"] == 2784  # a drop_last loader of 32 would keep 2784
    assert row["mse"] == pytest.approx(float(np.mean((x[:, -1:] - y) ** 2)), rel=1e-6)  # over all 2785
    assert row["mse"] != row["mse_drop_last"]


def test_a_dropping_predictor_is_refused():
    class Short(torch.nn.Module):
        def forward(self, x):
            return x[:-1, :2]

    with pytest.raises(RuntimeError, match="every window must be scored"):
        forecast.predict(Short(), np.zeros((5, 4), np.float32), "cpu")


def test_kept_by_drop_last():
    assert forecast.kept_by_drop_last(2785, 32) == 2784 and forecast.kept_by_drop_last(2785, 128) == 2688


def test_patches_as_patchtst_42_cuts_them():
    tok = forecast.StridedPatches1d(336, 16, 8, pad=8)
    assert tok.num_tokens == 42
    x = torch.arange(336.0).view(1, 336, 1)
    t = tok.tokenize(x)
    assert t.shape == (1, 42, 16)
    assert t[0, 1].tolist() == list(range(8, 24))
    assert t[0, -1].tolist() == list(range(328, 336)) + [335.0] * 8  # the end padded with the last value
    pre = forecast.StridedPatches1d(336, 16, 16)
    assert pre.num_tokens == 21 and torch.equal(pre.untokenize(pre.tokenize(x)), x)
    assert np.allclose(tok.positions[::2], pre.positions)  # every other overlapping patch sits where one did


def test_moving_average_keeps_a_constant_and_the_length():
    x = torch.full((2, 30), 3.0)
    assert torch.allclose(forecast.moving_average(x, 25), x)
    ramp = torch.arange(30.0).view(1, 30)
    assert torch.allclose(forecast.moving_average(ramp, 3)[0, 1:-1], ramp[0, 1:-1])


def test_dlinear_recipe_is_the_scripts():
    assert forecast.dlinear_recipe(96) == {"lr": 0.005, "epochs": 10, "batch_size": 32, "patience": 3}
    assert forecast.dlinear_recipe(720)["lr"] == 0.05 and forecast.dlinear_recipe(720)["epochs"] == 5


def small(**kw):
    return SimpleNamespace(**{**dict(long_lag=32, long_patch=8, long_stride=4, long_dim=8, long_depth=1,
                                     long_heads=2, long_epochs=1, long_batch_size=64, long_pretrain_epochs=1,
                                     long_pretrain_lr=1e-3, long_mask_ratio=0.4, long_lr_grid=[1e-3], precision="fp32"), **kw})


def test_the_two_arms_differ_only_in_the_encoders_weights():
    """Same seed, same head; the pretrained arm's encoder equals the MAE's (positions aside)."""
    p = small()
    rng = np.random.default_rng(0)
    series = rng.normal(size=300).astype(np.float32)
    x, y = ett.windows(series, 32, 8)
    data = {"train": (x, y), "val": (x[:40], y[:40])}
    mae, _ = forecast.pretrain(series, p, "cpu", seed=0)
    torch.manual_seed(0)
    fresh = forecast.PatchForecaster(forecast.encoder(p), 8)
    forecast.load_pretrained(fresh.encoder, mae)
    for k, v in mae.encoder.state_dict().items():
        if k != "pos_embed":
            assert torch.equal(fresh.encoder.state_dict()[k], v), k
    assert fresh.encoder.pos_embed.shape[1] == forecast.tokenizer(p).num_tokens
    torch.manual_seed(0)
    scratch = forecast.PatchForecaster(forecast.encoder(p), 8)
    assert torch.equal(scratch.head.weight, fresh.head.weight)
    model, hist = forecast.train_arm(forecast.PRETRAINED, data, p, mae, "cpu", 0, 1e-3)
    assert model(torch.from_numpy(x[:3])).shape == (3, 8) and "val_mse" in hist


def test_a_forecast_follows_the_windows_scale():
    """Instance normalisation: shifting and scaling the input shifts and scales the forecast."""
    p = small()
    torch.manual_seed(0)
    model = forecast.PatchForecaster(forecast.encoder(p), 8).eval()
    x = torch.randn(4, 32)
    with torch.no_grad():
        assert torch.allclose(model(3 * x + 10), 3 * model(x) + 10, atol=1e-3)


@pytest.mark.parametrize("kw, msg", [
    ({"long_lag": 330}, r"long_lag \(330\) must be a multiple of long_patch \(16\)"),
    ({"long_stride": 32}, r"long_stride \(32\) must be at most long_patch"),
    ({"long_dim": 18}, r"long_dim \(18\) must be a multiple of long_heads"),
    ({"long_horizons": [96, 3000]}, r"long_horizons: 3000 does not fit"),
    ({"long_mask_ratio": 1.0}, r"long_mask_ratio must be in \(0, 1\)"),
    ({"long_lr_grid": [1e-3, 0]}, r"long_lr_grid must be in \(0, inf\)"),
])
def test_bad_long_horizon_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("series", "quick", **kw)


def test_quick_runs_h96_only_and_full_every_horizon():
    assert profiles.resolve("series", "quick").long_horizons == [96]
    assert profiles.resolve("series", "full").long_horizons == [96, 192, 336, 720]


def test_the_book_shows_the_dlinear_numbers_of_the_issue():
    table = published.long_horizon_table([96, 192, 336, 720])
    shown = table[table["published"] == "DLinear (published)"].set_index("H")
    assert {h: (r["MSE"], r["MAE"]) for h, r in shown.iterrows()} == DLINEAR_ISSUE
    assert "LTSF-Linear" in shown["source"].iloc[0] and "etth1.sh" in shown["source"].iloc[0]
    patchtst = table[table["published"].str.startswith("PatchTST/42")].set_index("H")
    assert patchtst.loc[96, "MSE"] == "0.055" and "Table 8" in patchtst["source"].iloc[0]


def test_the_long_horizon_claim_reads_patchtsts_direction():
    from maelib import summary

    c = next(c for c in summary.CLAIMS if c.key == "claim_long")
    assert (c.paper_mae, c.paper_base) == (0.366, 0.375) and c.paper_gap > 0  # pretraining better at H = 96
    assert summary.reference_text(c.paper_mae_cell) == "0.366"


PUBLISHED_NUMBERS = sorted({v for r in published.REFERENCES.values() for _, vs in r.rows for v in vs}, key=len,
                           reverse=True)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.name)
def test_no_published_number_is_typed_in_a_chapter(path):
    text = path.read_text()
    typed = [v for v in PUBLISHED_NUMBERS if re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", text)]
    typed += [v for v in ("0.0559", "0.1803") if v in text]
    assert not typed, f"{path.name} types the published {typed}; take them from maelib.published"


def test_each_horizon_pairs_the_pretrained_arm_with_scratch_by_seed():
    """The long-horizon verdict's inputs: per horizon, each seed's pretrained and scratch MSEs in seed order,
    persistence as the floor, and stats.direction's word (lower MSE is better)."""
    import pandas as pd

    from maelib import stats

    rows = [{"seed": s, "horizon": h, "model": m, "mse": v}
            for h, shift in ((96, 0.0), (192, 0.5)) for s in range(5)
            for m, v in ((forecast.PRETRAINED, 1.0 + 0.01 * s - shift), (forecast.SCRATCH, 1.2 + 0.01 * s),
                         ("persistence", 2.0))]
    out = forecast.paired_by_horizon(pd.DataFrame(rows[::-1]))  # any row order
    values, st = out[96]
    assert list(out) == [192, 96] and values.seeds == [0, 1, 2, 3, 4] and values.floor == [2.0] * 5
    assert values.mae == [1.0 + 0.01 * s for s in range(5)] and st["gap"] == pytest.approx(0.2)
    assert stats.direction(st) == "better" and stats.direction(out[192][1]) == "better"
    assert stats.direction({"gap": -0.1, "lo": -0.2, "hi": -0.05}) == "worse"
    assert stats.direction({"gap": 0.1, "lo": -0.2, "hi": 0.3}) == "no detectable difference"
