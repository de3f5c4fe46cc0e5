import json

import nbformat
import pytest

from maelib import runs, summary

CLAIM = {c.chapter: c for c in summary.CLAIMS if c.key == "claim"}  # each chapter's seed-paper claim


def record(chapter, seed, mae, base, profile="quick", parameters=None, finished="2026-11-26T10:00:00", code="c1",
           **extra):
    """A run record holding one seed (or several: lists) of a chapter's claim values."""
    seeds = seed if isinstance(seed, list) else [seed]
    mae, base = (mae, base) if isinstance(mae, list) else ([mae], [base])
    resolved = {"mask_ratio": 0.75, "seed": seeds[0], **(parameters or {})}
    return {"chapter": chapter, "notebook": f"{chapter}.py",
            "parameters": {"profile": profile, "seed": seeds[0], **(parameters or {})},
            "resolved": resolved, "profile": profile, "seed": seeds[0], "device": "cpu",
            "metrics": {"claim": {"seeds": seeds, "mae": mae, "baseline": base, **extra},
                        "mask_ratio_metric": {"label": "m", "values": mae}},
            "wall_s": 1.0, "finished": f"{finished}.{seeds[0]:06d}", "git_commit": "abc", "stamp": f"s{seeds[0]}",
            "code": code}


def test_paired_interval_is_scipys_t_interval():
    from scipy import stats

    mae, base = [0.31, 0.30, 0.33, 0.29, 0.32], [0.28, 0.29, 0.30, 0.29, 0.28]
    st = summary.paired(mae, base, higher_is_better=True)
    gaps = [a - b for a, b in zip(mae, base)]
    lo, hi = stats.t.interval(0.95, 4, loc=sum(gaps) / 5, scale=stats.sem(gaps))
    assert st["n"] == 5 and st["gap"] == pytest.approx(sum(gaps) / 5)
    assert (st["lo"], st["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert st["p"] == pytest.approx(stats.ttest_rel(mae, base).pvalue)
    flipped = summary.paired(mae, base, higher_is_better=False)  # lower is better: the sign turns
    assert flipped["gap"] == pytest.approx(-st["gap"]) and flipped["lo"] == pytest.approx(-st["hi"])


def verdict_of(mae, base, chapter="segmentation", same=True):
    c = CLAIM[chapter]
    return summary.verdict(summary.paired(mae, base, c.higher_is_better), c, same)


def test_verdict_holds_when_the_interval_excludes_zero_in_the_papers_direction():
    up, down = [0.30, 0.31, 0.32, 0.33, 0.31], [0.20, 0.21, 0.20, 0.22, 0.21]
    assert verdict_of(up, down)[0] == "holds"  # the paper: MAE init better
    assert verdict_of(down, up)[0] == "does not hold"


def test_a_verdict_needs_five_seeds():
    v, why = verdict_of([0.30, 0.31, 0.32], [0.20, 0.21, 0.20])
    assert v == "inconclusive (3 seeds)" and "at least 5 seeds" in why


def test_an_interval_that_includes_zero_is_inconclusive():
    v, why = verdict_of([0.30, 0.20, 0.25, 0.28, 0.22], [0.26, 0.24, 0.25, 0.24, 0.26])
    assert v == "inconclusive" and "includes 0" in why


def test_table_1_is_the_papers_mae_above_scratch():
    c = CLAIM["images"]
    assert (c.paper_mae, c.paper_base) == (45.6, 37.7) and c.paper_gap > 0
    assert verdict_of([45, 46, 44, 45, 47], [40, 41, 39, 40, 42], "images")[0] == "holds"


def test_table_2_has_the_papers_numbers_and_direction():
    c = CLAIM["series"]
    assert c.paper_base == 0.01538 and c.paper_mae == 0.07546 and c.paper_gap < 0  # masking worse
    assert verdict_of([0.05] * 4 + [0.051], [0.01] * 4 + [0.011], "series")[0] == "holds"


def test_lower_is_better_claims_flip_the_sign():
    # the paper: the MAE's MSE is higher (MAE worse)
    assert verdict_of([0.5, 0.51, 0.52, 0.5, 0.53], [0.01, 0.011, 0.012, 0.01, 0.013], "tabular")[0] == "holds"
    assert verdict_of([0.01, 0.011, 0.012, 0.01, 0.013], [0.5, 0.51, 0.52, 0.5, 0.53], "tabular")[0] == "does not hold"


def test_forecasts_worse_than_persistence_are_judged_with_a_caveat():
    """The paired interval decides; that both arms are worse than the persistence floor is said, and does
    not turn a clear gap into 'inconclusive'."""
    c = CLAIM["series"]
    mae, base = [0.0045, 0.0044, 0.0046, 0.0045, 0.0047], [0.0040, 0.0041, 0.0040, 0.0042, 0.0040]
    st = summary.paired(mae, base, False)
    v, why = summary.verdict(st, c, True, floor=[0.001] * 5, mae=mae, base=base)
    assert v == "holds" and "worse than the persistence floor" in why  # masking worse, as in the paper


def test_a_non_finite_gap_is_inconclusive():
    st = summary.paired([0.3, float("nan"), 0.31, 0.32, 0.3], [0.2] * 5, True)
    assert summary.verdict(st, CLAIM["segmentation"], True)[0] == "inconclusive"


def test_a_verdict_comes_from_the_profile_with_enough_seeds():
    """One full-profile seed does not hide five quick ones; five full seeds win over five quick ones."""
    quick = [record("images", s, 45.0 + s % 2, 40.0) for s in range(5)]
    full = [record("images", 0, 30.0, 40.0, profile="full")]
    assert summary.verdicts(summary.claim_rows(quick + full))["Table 1"] == "holds"
    full = [record("images", s, 30.0 + s % 2, 40.0, profile="full") for s in range(5)]
    assert summary.verdicts(summary.claim_rows(quick + full))["Table 1"] == "does not hold"


def test_different_dataset_is_said():
    v, why = verdict_of([0.30, 0.31, 0.32, 0.33, 0.31], [0.20, 0.21, 0.20, 0.22, 0.21], "volumes", same=False)
    assert v == "holds" and "different dataset" in why


def test_seeds_of_different_code_are_never_pooled():
    """Three seeds from one code version and three from another are two groups of three, not six seeds;
    the newest group with five seeds is judged even when a newer, smaller group exists."""
    old = [record("images", s, 40.0 + s, 30.0, code="old", finished="2026-11-26T09:00:00") for s in range(5)]
    new = [record("images", s, 30.0, 40.0 + s, code="new", finished="2026-11-26T11:00:00") for s in range(3)]
    groups = summary.groups(old + new, "images", "quick")
    assert [(g["code"], len(g["seeds"])) for g in groups] == [("new", 3), ("old", 5)]
    assert summary.judged_group(old + new, "images", "quick")["code"] == "old"
    rows = summary.claim_rows(new[:1] + old[:3] + new[1:])
    row = rows[(rows["table"] == "Table 1") & (rows["profile"] == "quick")].iloc[0]
    assert row["n"] == 3 and row["code"] == "new" and row["verdict"] == "inconclusive (3 seeds)"


def test_a_record_holding_several_seeds_counts_as_that_many():
    rec = record("tabular", [0, 1, 2, 3, 4], [0.5, 0.51, 0.52, 0.5, 0.53], [0.01, 0.011, 0.012, 0.01, 0.013],
                 baseline_fair=[0.4] * 5)
    rows = summary.claim_rows([rec])
    row = rows[(rows["table"] == "Table 5") & (rows["profile"] == "quick")].iloc[0]
    assert row["n"] == 5 and row["verdict"] == "holds" and row["fair"] == pytest.approx(0.4)


def test_claims_table_ignores_changed_parameters():
    recs = [record("images", s, 41.0 + s, 30.0) for s in range(5)]
    recs.append(record("images", 0, 10.0, 90.0, parameters={"mask_ratio": 0.5}))  # a sweep run
    table = summary.claims_table(recs)
    row = table.loc["Table 1"]
    assert row["verdict"].startswith("holds: MAE better") and "(n = 5)" in row["quick: gap [95% CI] (n), p"]
    assert row["full: gap [95% CI] (n), p"] == "not run"
    assert table.loc["Table 3", "verdict"] == "not run"
    assert summary.verdicts(summary.claim_rows(recs)) == {"Table 1": "holds", "Table 2": "not run",
                                                          "Table 3": "not run", "Table 4": "not run",
                                                          "Table 5": "not run", "PatchTST, H = 96": "not run"}


def test_the_series_chapter_holds_two_claims_each_with_its_own_values():
    """The next-step claim reads metrics['claim'], the long-horizon one metrics['claim_long'] of the same runs."""
    recs = [record("series", s, 0.05, 0.01, floor=[0.001]) for s in range(5)]
    for s, r in enumerate(recs):
        r["metrics"]["claim_long"] = {"seeds": [s], "mae": [0.050 - 0.001 * (s % 2)], "baseline": [0.056],
                                      "floor": [0.069]}
    v = summary.verdicts(summary.claim_rows(recs))
    assert v["Table 2"] == "holds"  # masking worse, as in the paper
    assert v["PatchTST, H = 96"] == "holds"  # pretraining better, as PatchTST's Table 12 at H = 96
    rows = summary.claim_rows(recs)
    long = rows[(rows["table"] == "PatchTST, H = 96") & (rows["profile"] == "quick")].iloc[0]
    assert long["n"] == 5 and long["baseline"] == pytest.approx(0.056) and "different dataset" in long["reason"]


def test_sweep_frame_takes_only_mask_ratio_runs():
    recs = [record("images", 0, 40.0, 30.0),
            record("images", 1, 50.0, 30.0, parameters={"mask_ratio": 0.5}),
            record("images", 1, 60.0, 30.0, parameters={"mask_ratio": 0.5, "epochs": 3})]
    frame = summary.sweep_frame(recs)
    assert len(frame) == 2 and set(frame["mask_ratio"]) == {0.75, 0.5}


def test_registry_schema(tmp_path):
    """Records written by run_chapter carry every key of the schema; others are ignored."""
    good = record("images", 0, 40.0, 30.0)
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps({"chapter": "images"}))  # incomplete: not a record
    (tmp_path / "c.json").write_text("{broken")
    loaded = runs.load_records(root=tmp_path)
    assert loaded == [good]
    assert set(runs.RECORD_KEYS) <= set(good)


def test_committed_records_follow_the_schema():
    for f in runs.RECORDS.glob("*.json"):
        assert runs.record_problem(json.loads(f.read_text())) is None, f.name


@pytest.mark.slow
def test_summary_notebook_runs_on_a_registry_fixture(tmp_path):
    reg = tmp_path / "registry"
    reg.mkdir()
    recs = [record("images", s, 40.0 + s, 30.0) for s in range(5)]
    recs += [record("images", s, 35.0 + 2 * r, 30.0, parameters={"mask_ratio": r}) for s in range(2) for r in (0.25, 0.5)]
    for i, r in enumerate(recs):
        (reg / f"r{i}.json").write_text(json.dumps(r))
    out = runs.run_chapter("summary", {"profile": "smoke", "records_dir": str(reg)}, force=True,
                           out_dir=tmp_path / "out", progress=False, records_dir=None)
    values = runs.glued(nbformat.read(out, as_version=4))
    assert values["n_records"] == len(recs)
    assert values["n_sweep"] == 9  # the 5 default runs (mask ratio 0.75) are points of the sweep too
    assert values["results"]["verdicts"]["Table 1"] == "holds"
    assert values["results"]["verdicts"]["Table 3"] == "not run"


def test_the_code_version_follows_the_computing_modules(tmp_path, monkeypatch):
    """A change to how results are shown (viz.py) keeps a run's code version, so seeds are not split by
    it; a change to what is computed (mae.py) makes a new version. Both make executed chapters stale."""
    import shutil

    shutil.copytree(runs.ROOT / "maelib", tmp_path / "maelib", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runs, "ROOT", tmp_path)
    compute, everything = runs.code_hash(), runs.code_hash(computing_only=False)
    with open(tmp_path / "maelib" / "viz.py", "a") as f:
        f.write("\n# a figure's colour changed\n")
    assert runs.code_hash() == compute and runs.code_hash(computing_only=False) != everything
    with open(tmp_path / "maelib" / "mae.py", "a") as f:
        f.write("\n# the model changed\n")
    assert runs.code_hash() != compute


def test_seeds_reuse_the_learning_rates_the_seed_0_run_chose(tmp_path):
    """A run finds the choice of the seed-0 run with its setting and code version; a different setting, an
    earlier code version or another seed's run does not count."""
    code = runs.code_hash()
    chosen = {"lr": {"MAE init": 1e-3, "scratch": 2e-3},
              "lr_grid": {"MAE init": {"0.001": 0.3, "0.002": 0.2}, "scratch": {"0.001": 0.2, "0.002": 0.25}}}

    def rec(seed, code, **resolved):
        r = record("segmentation", seed, 0.3, 0.3, code=code, parameters=resolved)
        r["metrics"].update(chosen)
        return r

    for i, r in enumerate([rec(0, "an earlier version"), rec(1, code), rec(0, code, epochs=99)]):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    resolved = {"mask_ratio": 0.75, "seed": 3}
    assert summary.tuning("segmentation", resolved, root=tmp_path) is None
    (tmp_path / "r9.json").write_text(json.dumps(rec(0, code)))
    found = summary.tuning("segmentation", resolved, root=tmp_path)
    assert found["lr"] == chosen["lr"] and found["lr_grid"] == chosen["lr_grid"]
