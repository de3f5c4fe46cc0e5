import numpy as np
import pytest
import torch

from conftest import data_folder
from maelib import profiles, tabular
from maelib.data import housing


def test_preprocessing_rows_and_one_hot_columns():
    data_folder("california_housing")
    frame = housing.preprocess(housing.load_frame()[0])
    assert frame.shape == (20_433, 14)
    assert list(frame.columns[-5:]) == [f"ocean_proximity={c}" for c in
                                        ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"]]
    assert (frame[housing.ONE_HOT].sum(axis=1) == 1).all()
    assert not frame.isna().any().any()


def test_scaling_uses_training_rows():
    data_folder("california_housing")
    d = housing.load(seed=0)
    assert len(d["train"]) + len(d["test"]) == 20_433
    assert np.allclose(d["train"].min(0), 0) and np.allclose(d["train"].max(0), 1)


def test_hide_sets_hidden_cells_to_zero_at_the_requested_rate():
    x = np.random.default_rng(0).random((4000, 10)).astype(np.float32) + 1
    filled, observed = housing.hide(x, 0.2, seed=1)
    assert abs((~observed).mean() - 0.2) < 0.01
    assert np.all(filled[~observed] == 0) and np.array_equal(filled[observed], x[observed])


def test_scores_count_exactly_the_hidden_cells():
    rng = np.random.default_rng(0)
    true = rng.random((200, 3))
    observed = rng.random((200, 3)) > 0.3
    imputed = true.copy()
    imputed[~observed] += 0.5  # every hidden cell off by 0.5
    cols = ["longitude", "latitude", "population"]
    s = tabular.scores(imputed, true, observed, cols)
    assert s["mse"] == pytest.approx(0.25) and s["mse_numeric"] == pytest.approx(0.25)
    assert s["wasserstein"] == pytest.approx(0.5) and set(s["mse_by_column"]) == set(cols)
    imputed[observed] += 100  # errors on observed cells are ignored
    assert tabular.scores(imputed, true, observed, cols)["mse"] == pytest.approx(0.25)


def test_numeric_and_categorical_errors_are_apart():
    """Numeric MSE averages per-column MSEs of numeric columns only; the category error counts rows whose
    true category cell is hidden beside another hidden one-hot cell (nothing gives it away), by the largest
    imputed hidden one-hot cell."""
    cols = ["longitude", "population", *housing.ONE_HOT[:3]]
    true = np.array([[0.0, 0.0, 1, 0, 0], [0.0, 0.0, 0, 1, 0], [0.0, 0.0, 0, 0, 1], [0.0, 0.0, 1, 0, 0],
                     [0.0, 0.0, 0, 0, 1]])
    observed = np.array([[0, 1, 0, 0, 0], [0, 1, 0, 0, 1], [1, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], bool)
    imputed = np.where(observed, true, 0.0)
    imputed[0] = [1.0, 0.0, 0.9, 0.1, 0.2]  # longitude off by 1; category right (cell 0 largest)
    imputed[1] = [0.5, 0.0, 0.7, 0.6, 0.0]  # longitude off by 0.5; category wrong (cell 0 > cell 1)
    imputed[2, 1] = 2.0  # population off by 2; category observed (row not scored)
    s = tabular.scores(imputed, true, observed, cols)
    assert s["mse_by_column"] == {"longitude": pytest.approx((1 + 0.25) / 2), "population": pytest.approx(4.0)}
    assert s["mse_numeric"] == pytest.approx((0.625 + 4.0) / 2)
    # rows 0 and 1 scored; row 3's category shows as an observed 1, row 4's as the only hidden cell
    assert s["category_error"] == pytest.approx(1 / 2)


def test_scikit_learn_imputers_fit_on_training_rows_only():
    """The reference imputers learn from the training rows: test rows with other values do not move the
    mean imputer's fill."""
    train = np.full((20, 2), 1.0, np.float32)
    train_obs = np.ones((20, 2), bool)
    test = np.array([[50.0, 50.0], [50.0, 0.0]], np.float32)
    test_obs = np.array([[True, True], [True, False]])
    out = tabular.impute_sklearn(tabular.sklearn_imputers(0)["mean (scikit-learn)"], train, train_obs, test, test_obs)
    assert out[1, 1] == pytest.approx(1.0)


def test_mae_imputation_never_reads_hidden_cells():
    p = profiles.resolve("tabular", "smoke")
    torch.manual_seed(0)
    mae = tabular.make_mae(6, p)
    rng = np.random.default_rng(0)
    x = rng.random((50, 6)).astype(np.float32)
    observed = rng.random((50, 6)) > 0.3
    a = tabular.impute(mae, np.where(observed, x, 0).astype(np.float32), observed, "cpu")
    b = tabular.impute(mae, np.where(observed, x, 7).astype(np.float32), observed, "cpu")
    assert np.allclose(a, b, atol=1e-5)
    assert np.array_equal(a[observed], x[observed])


def test_remask_scores_only_observed_cells():
    obs = torch.rand(100, 8) > 0.2
    visible, scored = tabular._remask(obs, 0.3)
    assert not (scored & ~obs).any() and not (visible & scored).any()
    assert torch.equal(visible | scored, obs)


@pytest.mark.parametrize("kw, msg", [
    ({"missing_rate": 1.0}, r"missing_rate must be in \(0, 1\)"),
    ({"mask_ratio": 0.0}, r"mask_ratio must be in \(0, 1\)"),
    ({"missing_rates": [0.1, 2]}, r"missing_rates must be in \(0, 1\)"),
    ({"columns": ["latitude", "colour"]}, r"unknown column\(s\) \['colour'\]"),
])
def test_bad_tabular_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("tabular", "smoke", **kw)


def test_each_network_chooses_its_learning_rate_on_held_out_training_rows(monkeypatch):
    """Every rate of the grid trains on 90% of the training rows and is scored on the other 10%; the
    lowest MSE wins, and the test rows are never touched."""
    from types import SimpleNamespace

    import numpy as np

    from maelib import tabular

    seen = []

    def fake_train(model, step, x_true, x_filled, observed, p, device, seed, desc, lr):
        seen.append((len(x_true), lr))
        model.lr = lr

    monkeypatch.setattr(tabular, "train_imputer", fake_train)
    monkeypatch.setattr(tabular, "impute", lambda model, filled, obs, device: filled)
    monkeypatch.setattr(tabular, "scores", lambda imputed, true, obs, cols: {"mse": {1e-3: 0.3, 2e-3: 0.1,
                                                                                      4e-3: 0.2}[seen[-1][1]]})
    data = {"train": np.random.default_rng(0).random((100, 4), dtype=np.float32), "test": "never read",
            "columns": ["a", "b", "c", "d"]}
    p = SimpleNamespace(hidden=8, mask_ratio=0.3, dim=8, depth=1, heads=2, lr_grid=[1e-3, 2e-3, 4e-3])
    lr, grid = tabular.choose_lr("MAE (re-masked observed cells)", data, p, "cpu", 0, 0.2)
    assert lr == 2e-3 and grid == {1e-3: 0.3, 2e-3: 0.1, 4e-3: 0.2}
    assert {n for n, _ in seen} == {90}  # trained on 90 of the 100 training rows


def test_per_row_items_give_back_the_mse_over_every_hidden_cell():
    from maelib import stats

    rng = np.random.default_rng(1)
    true, imputed = rng.random((50, 3)), rng.random((50, 3))
    observed = rng.random((50, 3)) > 0.4
    s = tabular.scores(imputed, true, observed, ["longitude", "latitude", "population"])
    assert len(s["items"]) == 50 and sum(n for _, n in s["items"]) == (~observed).sum()
    assert stats.item_scores(np.asarray([s["items"]], float), "ratio")[0] == pytest.approx(s["mse"], rel=1e-4)
