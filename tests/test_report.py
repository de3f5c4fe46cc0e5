"""What a run reports per seed (maelib.report.SeedValues): checked when written and when read."""

import pytest

from maelib import summary
from maelib.report import Results, SeedValues


def test_a_claim_entry_round_trips():
    v = SeedValues([0, 1], [0.3, 0.31], [0.2, 0.21], floor=[0.1, 0.1])
    assert v.to_dict() == {"seeds": [0, 1], "mae": [0.3, 0.31], "baseline": [0.2, 0.21], "floor": [0.1, 0.1]}
    assert SeedValues.from_dict(v.to_dict()) == v
    assert v.per_seed()[1] == {"seed": 1, "mae": 0.31, "baseline": 0.21, "floor": 0.1}


@pytest.mark.parametrize("bad, message", [
    (dict(seeds=[0, 1], mae=[0.3], baseline=[0.2, 0.2]), "mae has 1 values for 2 seeds"),
    (dict(seeds=[0, 0], mae=[0.3, 0.3], baseline=[0.2, 0.2]), "distinct integers"),
    (dict(seeds=[True], mae=[0.3], baseline=[0.2]), "distinct integers"),
    (dict(seeds=[0], mae=["0.3"], baseline=[0.2]), "mae must hold numbers"),
])
def test_a_malformed_entry_is_refused_when_written(bad, message):
    with pytest.raises(ValueError, match=message):
        SeedValues(**bad)


def test_a_misspelt_entry_is_an_error_when_read_not_a_chapter_that_was_not_run():
    record = {"chapter": "images", "finished": "2026-12-01T10:00:00",
              "metrics": {"claim": {"seeds": [0], "mea": [0.3], "baseline": [0.2]}}}
    with pytest.raises(ValueError, match=r"images run record finished 2026-12-01T10:00:00 .*unknown per-seed "
                                         r"entries \['mea'\]"):
        summary.seed_values(record)
    record["metrics"]["claim"] = {"seeds": [0], "baseline": [0.2]}
    with pytest.raises(ValueError, match=r"missing per-seed entries \['mae'\]"):
        summary.seed_values(record)
    assert summary.seed_values({"chapter": "images", "finished": "", "metrics": {}}) == []  # none: not run


def test_curves_are_per_seed_lists_of_epochs():
    v = SeedValues([0, 1], [0.3, 0.31], [0.2, 0.21], mae_curve=[[0.1, 0.3], [0.1, 0.31]],
                   baseline_curve=[[0.05, 0.2], [0.06, 0.21]])
    assert v.per_seed()[1]["mae_curve"] == [0.1, 0.31] and SeedValues.from_dict(v.to_dict()) == v
    with pytest.raises(ValueError, match="mae_curve has 1 values for 2 seeds"):
        SeedValues([0, 1], [0.3, 0.31], [0.2, 0.21], mae_curve=[[0.1, 0.3]])
    with pytest.raises(ValueError, match="baseline_curve must hold numbers"):
        SeedValues([0], [0.3], [0.2], baseline_curve=[["x"]])


def test_a_budget_is_read_back_and_a_malformed_one_refused():
    import pandas as pd

    from maelib.report import BUDGET_KEYS, budget_entries

    frame = pd.DataFrame([[14, 5, 190, 3.4e12, 1.0], [0, 11, 110, 3.5e12, 1.03]], index=["MAE arm", "matched arm"],
                         columns=[*BUDGET_KEYS, "FLOPs / MAE arm's"])
    budget = budget_entries(frame, {"mae": "MAE arm", "baseline_matched": "matched arm"})
    back = Results.from_dict(Results(budget=budget).to_dict())
    assert back.budget["baseline_matched"]["training FLOPs"] == 3.5e12 and back.budget["mae"]["supervised passes"] == 5
    with pytest.raises(ValueError, match="budget must map each arm"):
        Results(budget={"mae": {"training FLOPs": "a lot"}})


def test_per_item_values_travel_as_json_whole():
    """A glued object's printed form shortens a list of over 1,000 values to '...': a chapter glues its
    results as JSON text, which reads back whole, a non-finite number as null; items of the wrong kind are refused."""
    items = [[float(i % 7) for i in range(2500)]]
    r = Results(claims={"claim": SeedValues([0], [1.0], [2.0], mae_items=items, baseline_items=items,
                                            mae_vs_flat=[0.5])}, details={"spread": float("nan")})
    back = Results.from_dict(r.to_json())
    assert back.claim.mae_items == items and back.claim.mae_vs_flat == [0.5] and back.details["spread"] is None
    with pytest.raises(ValueError, match=r"mae_items must hold numbers, got \[\[.*\.\.\."):
        SeedValues([0], [1.0], [1.0], mae_items=[["x"] * 2000])
    with pytest.raises(ValueError, match="JSON"):
        Results.from_dict("{not json")
