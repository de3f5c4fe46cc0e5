import json

import nbformat
import numpy as np
import pytest

from maelib import claim_tables, profiles, provenance, runs, stats, summary, tuning, viz
from maelib.report import Results

CLAIM = {c.chapter: c for c in summary.CLAIMS if c.key == "claim"}  # each chapter's seed-paper claim


def record(chapter, seed, mae, base, profile="quick", parameters=None, finished="2026-11-26T10:00:00", code="c1",
           **extra):
    """A run record holding one seed (or several: lists) of a chapter's claim values."""
    seeds = seed if isinstance(seed, list) else [seed]
    mae, base = (mae, base) if isinstance(mae, list) else ([mae], [base])
    resolved = {**vars(profiles.resolve(chapter, profile)), "seed": seeds[0], **(parameters or {})}
    return {"chapter": chapter, "notebook": f"{chapter}.py",
            "parameters": {"profile": profile, "seed": seeds[0], **(parameters or {})},
            "resolved": resolved, "profile": profile, "seed": seeds[0], "device": "cpu",
            "metrics": {"claim": {"seeds": seeds, "mae": mae, "baseline": base, **extra},
                        "mask_ratio_metric": {"label": "m", "values": mae}},
            "wall_s": 1.0, "finished": f"{finished}.{seeds[0]:06d}", "git_commit": "abc", "stamp": f"s{seeds[0]}",
            "code": code}


def test_paired_interval_is_scipys_t_interval():
    from scipy import stats as sps

    mae, base = [0.31, 0.30, 0.33, 0.29, 0.32], [0.28, 0.29, 0.30, 0.29, 0.28]
    st = stats.paired(mae, base, higher_is_better=True)
    gaps = [a - b for a, b in zip(mae, base)]
    lo, hi = sps.t.interval(0.95, 4, loc=sum(gaps) / 5, scale=sps.sem(gaps))
    assert st["n"] == 5 and st["gap"] == pytest.approx(sum(gaps) / 5)
    assert (st["lo"], st["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert st["p"] == pytest.approx(sps.ttest_rel(mae, base).pvalue)
    flipped = stats.paired(mae, base, higher_is_better=False)  # lower is better: the sign turns
    assert flipped["gap"] == pytest.approx(-st["gap"]) and flipped["lo"] == pytest.approx(-st["hi"])


def row_of(chapter, mae, base, table=None, **extra):
    """The quick-profile claim row of five (or len(mae)) seeds of ``chapter`` recorded at this code."""
    c = CLAIM[chapter]
    recs = [record(chapter, s, m, b, code=provenance.version(chapter), **{k: [v[s]] for k, v in extra.items()})
            for s, (m, b) in enumerate(zip(mae, base))]
    rows = summary.claim_rows(recs)
    return rows[(rows["table"] == (table or c.table)) & (rows["profile"] == "quick")].iloc[0]


def verdict_of(mae, base, chapter="segmentation"):
    row = row_of(chapter, mae, base)
    return row["verdict"], row["reason"]


def test_verdict_holds_when_the_interval_excludes_zero_in_the_papers_direction():
    up, down = [0.30, 0.31, 0.32, 0.33, 0.31], [0.20, 0.21, 0.20, 0.22, 0.21]
    assert verdict_of(up, down)[0] == "holds"  # the paper: MAE init better
    assert verdict_of(down, up)[0] == "does not hold"


def test_a_verdict_needs_five_seeds():
    v, why = verdict_of([0.30, 0.31, 0.32], [0.20, 0.21, 0.20])
    assert v == "inconclusive (3 seeds)" and "at least 5 seeds" in why


def test_an_interval_that_includes_zero_and_the_papers_gap_is_underpowered():
    v, why = verdict_of([0.30, 0.20, 0.25, 0.28, 0.22], [0.26, 0.24, 0.25, 0.24, 0.26])
    assert v == "inconclusive (underpowered)" and "includes both 0 and the paper's gap" in why


def test_table_1_is_the_papers_mae_above_scratch():
    c = CLAIM["images"]
    assert (c.paper_mae, c.paper_base) == (45.6, 37.7) and c.paper_gap > 0
    assert verdict_of([45, 46, 44, 45, 47], [40, 41, 40, 40, 42], "images")[0] == "holds"


def test_table_2_has_the_papers_numbers_and_direction():
    c = CLAIM["series"]
    assert c.paper_base == 0.01538 and c.paper_mae == 0.07546 and c.paper_gap < 0  # masking worse
    assert verdict_of([0.05, 0.052, 0.049, 0.051, 0.05], [0.01, 0.011, 0.0105, 0.01, 0.011], "series")[0] == "holds"


def test_a_paper_gap_on_an_unstated_scale_is_taken_as_its_ratio_at_ours():
    """Table 2's MSEs are on a scale the paper does not state (its masked row is 5x its unmasked one): its
    gap is that ratio at our baseline's scale, not 0.06 of our units, which a 1e-4-sized MSE could never
    reach (the verdict would be 'ruled out' whatever the runs said)."""
    base = [1.70e-4, 1.71e-4, 1.69e-4, 1.72e-4, 1.70e-4]
    mae = [b * 1.5 + d for b, d in zip(base, [0, 2e-6, -1e-6, 1e-6, 3e-6])]  # masking 1.5x worse
    row = row_of("series", mae, base)
    c = CLAIM["series"]
    assert row["paper_gap"] == pytest.approx(-(c.paper_mae / c.paper_base - 1) * np.mean(base))
    assert "ratio (MAE / baseline = 4.91) at our baseline's scale" in row["paper_note"]
    assert row["verdict"] == "holds"  # masking worse, as in the paper
    same = row_of("series", base, base[::-1])  # no gap, an interval ~1e-6 wide: the paper's ~7e-4 ruled out
    assert same["verdict"] == "the paper's effect ruled out" and same["paper_gap"] < same["lo"]
    images = row_of("images", [45, 46, 44, 45, 47], [40, 41, 40, 40, 42])
    assert images["paper_gap"] == pytest.approx(45.6 - 37.7) and not images["paper_note"]  # a stated scale


def test_lower_is_better_claims_flip_the_sign():
    # the paper: the MAE's MSE is higher (MAE worse)
    assert verdict_of([0.5, 0.51, 0.52, 0.5, 0.53], [0.01, 0.011, 0.012, 0.01, 0.013], "tabular")[0] == "holds"
    assert verdict_of([0.01, 0.011, 0.012, 0.01, 0.013], [0.5, 0.51, 0.52, 0.5, 0.53], "tabular")[0] == "does not hold"


def test_forecasts_worse_than_persistence_are_judged_with_a_caveat():
    """The paired interval decides; that both arms are worse than the persistence floor is said, and does
    not turn a clear gap into 'inconclusive'."""
    mae, base = [0.0045, 0.0044, 0.0046, 0.0045, 0.0047], [0.0040, 0.0041, 0.0040, 0.0042, 0.0040]
    row = row_of("series", mae, base, floor=[0.001] * 5)
    assert row["verdict"] == "holds" and "worse than the persistence floor" in row["reason"]


def test_a_non_finite_gap_is_inconclusive():
    assert verdict_of([0.3, float("nan"), 0.31, 0.32, 0.3], [0.2] * 5)[0] == "inconclusive"


def test_the_family_of_claims_is_holm_adjusted():
    """Two claims at one profile, raw p 0.027 and 0.042: each holds alone, and neither survives Holm's
    correction (adjusted p 2 x 0.027 for both)."""
    seg_gaps, img_gaps = [0.001, 0.016, 0.006, 0.014, 0.009], [3, 0, 2, 1, 1.4]
    seg = [record("segmentation", s, 0.3 + g, 0.3, code=provenance.version("segmentation")) for s, g in enumerate(seg_gaps)]
    img = [record("images", s, 40.0 + g, 40.0, code=provenance.version("images")) for s, g in enumerate(img_gaps)]
    alone = summary.claim_rows(seg).set_index(["table", "profile"]).loc[("Table 3", "quick")]
    assert alone["verdict"] == "holds" and alone["p_holm"] == pytest.approx(alone["p"])  # a family of one
    rows = summary.claim_rows(seg + img).set_index(["table", "profile"])
    p_seg, p_img = rows.loc[("Table 3", "quick"), "p"], rows.loc[("Table 1", "quick"), "p"]
    assert p_seg == pytest.approx(0.0274, abs=1e-3) and p_img == pytest.approx(0.0417, abs=1e-3)
    for table in ("Table 3", "Table 1"):
        row = rows.loc[(table, "quick")]
        assert row["p_holm"] == pytest.approx(2 * p_seg)
        assert row["verdict"] == "inconclusive" and "does not survive Holm's correction across the 2 claims" in row["reason"]


def test_seeds_of_an_older_version_are_marked():
    old = [record("images", s, 45 + s, 40.0, code="an older version") for s in range(5)]
    row = summary.claim_rows(old).set_index(["table", "profile"]).loc[("Table 1", "quick")]
    assert not row["current"] and "older version of the code" in row["reason"]
    assert "(older)" in claim_tables.evidence_table(old).loc[("Table 1", "quick"), "version"]


def test_the_history_shows_every_version_and_which_one_is_judged():
    old = [record("images", s, 45 + s, 40.0, code="v-old", finished="2026-11-20T10:00:00") for s in range(5)]
    new = [record("images", s, 40.0, 41 + s, code=provenance.version("images")) for s in range(2)]
    hist = claim_tables.history(old + new)
    part = hist[(hist["table"] == "Table 1") & (hist["profile"] == "quick")]
    assert list(part["version"]) == [provenance.version("images")[:8], "v-old"]  # newest first
    assert list(part["judged"]) == ["", "yes"] and list(part["this book's code"]) == ["yes", "no"]
    assert "(n\u00a0=\u00a02)" in part.iloc[0]["gap [95% CI] (n)"]


def test_versions_whose_seeds_hold_the_same_values_share_one_history_row():
    """Issue #36: Table 2's history repeated one interval four times, once per code version that changed
    no number. Versions with the same values share a row; a value that differs keeps its own."""
    def group(code, day, shift=0.0):
        return [record("tabular", s, 0.1 + s / 100 + shift, 0.2, code=code, finished=f"2026-11-{day}T10:00:00")
                for s in range(5)]

    hist = claim_tables.history(group("v1", 20) + group("v2", 21) + group("v3", 22) + group("v4", 23, shift=1e-12))
    part = hist[(hist["table"] == "Table 5") & (hist["profile"] == "quick")]
    assert list(part["version"]) == ["v4", "v3 and 2 older, same values"]
    assert list(part["judged"]) == ["yes", ""]


def test_the_history_gives_the_gap_its_verdict_judges():
    """A group with a budget-matched arm stronger than the short scratch arm: its history row gives the
    paper's comparison, the claims table's gap, whichever scratch arm scored better."""
    version = provenance.version("images")
    recs = [record("images", s, 45.0 + 0.3 * s, 40.0, code=version, baseline_matched=[48.0 + 0.2 * s])
            for s in range(5)]
    row = claim_tables.history(recs).set_index(["table", "profile"]).loc[("Table 1", "quick")]
    claim = summary.claim_rows(recs).set_index(["table", "profile"]).loc[("Table 1", "quick")]
    assert row["gap [95% CI] (n)"].startswith(viz.sig(claim["gap"])) and claim["gap"] > 0


def test_a_claims_history_writes_its_gaps_in_one_notation():
    """The tour: Table 2's history printed ``-0.000135 (n = 1)`` two rows under ``-6.59e-05 [...]``. Where
    one group of a claim needs an exponent, every group of that claim is written with one."""
    small = [record("series", s, 1e-4 + 1e-6 * s, 1.6e-4, code="older", finished="2026-11-20T10:00:00")
             for s in range(5)]
    large = [record("series", 0, 1.0e-3, 1.135e-3, code="newer")]
    rows = claim_tables.history(small + large)
    cells = list(rows[rows["table"] == "Table 2"]["gap [95% CI] (n)"])
    assert len(cells) == 2 and all("e" + claim_tables.NB_HYPHEN in c for c in cells), cells


def test_a_verdict_whose_arm_did_not_learn_on_every_seed_says_so():
    """Table 4's old seeds: one seed of both arms at Dice 0.05 against medians near 0.4. The reason says
    so, and the learning table marks both arms; seeds that all learned carry no such note."""
    version = provenance.version("volumes")
    dice = [0.59, 0.37, 0.65, 0.38, 0.05]
    recs = [record("volumes", s, d, d + 0.002 * (-1) ** s, code=version) for s, d in enumerate(dice)]
    row = summary.claim_rows(recs).set_index(["table", "profile"]).loc[("Table 4", "quick")]
    assert "not every seed learned (MAE init, scratch" in row["reason"]
    learning = claim_tables.learning_table(recs)
    assert list(learning[learning["table"] == "Table 4"]["every seed learned"]) == ["no", "no"]
    fine = [record("volumes", s, 0.8 + 0.01 * s, 0.79, code=version) for s in range(5)]
    assert "learned" not in summary.claim_rows(fine).set_index(["table", "profile"]).loc[("Table 4", "quick"), "reason"]


def test_a_gap_in_scientific_notation_never_breaks_inside_its_exponent():
    text = claim_tables._gap_text({"gap": -1.2e-06, "lo": -3.46e-06, "hi": 1.01e-06, "n": 5})
    assert "e-" not in text and text.count("e\u2011") == 3 and "(n\u00a0=\u00a05)" in text


def test_a_verdict_comes_from_the_profile_with_enough_seeds():
    """One full-profile seed does not hide five quick ones; five full seeds win over five quick ones."""
    quick = [record("images", s, 45.0 + s % 2, 40.0) for s in range(5)]
    full = [record("images", 0, 30.0, 40.0, profile="full")]
    assert summary.verdicts(summary.claim_rows(quick + full))["Table 1"] == "holds"
    full = [record("images", s, 30.0 + s % 2, 40.0, profile="full") for s in range(5)]
    assert summary.verdicts(summary.claim_rows(quick + full))["Table 1"] == "does not hold"


def test_different_dataset_is_said():
    c = CLAIM["volumes"]
    recs = [record("volumes", s, 0.30 + 0.01 * s, 0.20, code=provenance.version("volumes")) for s in range(5)]
    for r in recs:
        r["metrics"]["dataset"] = "hippocampus"
    rows = summary.claim_rows(recs)
    row = rows[(rows["table"] == c.table) & (rows["profile"] == "quick")].iloc[0]
    assert row["verdict"] == "holds" and "different dataset" in row["reason"]


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
    table = claim_tables.claims_table(recs)
    row = table.loc["Table 1"]
    assert row["verdict"].startswith("holds") and "(n\u00a0=\u00a05), quick" in row["gap [95% CI] (n)"]
    assert claim_tables.verdict_reasons(recs)["Table 1"].startswith("holds: MAE better")
    assert row["p: t / Holm / sign-flip"].count(" / ") == 2
    assert table.loc["Table 3", "verdict"] == "not run"
    assert summary.verdicts(summary.claim_rows(recs)) == {"Table 1": "holds", "Table 2": "not run",
                                                          "Table 3": "not run", "Table 4": "not run",
                                                          "Table 5": "not run", "PatchTST, H = 96": "not run"}


def test_the_series_chapter_holds_two_claims_each_with_its_own_values():
    """The next-step claim reads metrics['claim'], the long-horizon one metrics['claim_long'] of the same runs."""
    recs = [record("series", s, 0.05 + 0.001 * (s % 3), 0.01, floor=[0.001]) for s in range(5)]
    for s, r in enumerate(recs):
        r["metrics"]["claim_long"] = {"seeds": [s], "mae": [0.050 - 0.001 * (s % 2)], "baseline": [0.056],
                                      "floor": [0.069]}
    v = summary.verdicts(summary.claim_rows(recs))
    assert v["Table 2"] == "holds"  # masking worse, as in the paper
    assert v["PatchTST, H = 96"] == "holds"  # pretraining better, as PatchTST's Table 12 at H = 96
    rows = summary.claim_rows(recs)
    long = rows[(rows["table"] == "PatchTST, H = 96") & (rows["profile"] == "quick")].iloc[0]
    assert long["n"] == 5 and long["baseline"] == pytest.approx(0.056) and "different dataset" in long["reason"]


def test_a_ratio_sweep_takes_only_runs_that_changed_the_ratio():
    recs = [record("images", 0, 40.0, 30.0),
            record("images", 1, 50.0, 30.0, parameters={"mask_ratio": 0.5}),
            record("images", 1, 60.0, 30.0, parameters={"mask_ratio": 0.5, "epochs": 3})]
    frame = summary.ratio_frame(recs)
    assert len(frame) == 2 and set(frame["ratio"]) == {0.75, 0.5}


def test_the_sweep_names_a_run_by_the_version_the_claims_table_names():
    """A record's library hash (``code``) and its pooling version (library + notebook) differ: the sweep
    labels its points by the latter, so the figure and the claims table name the same seeds alike."""
    recs = [{**record("images", s, 40.0, 30.0, code="lib-only"), "version": "lib-and-notebook"} for s in range(2)]
    assert set(summary.ratio_frame(recs)["code"]) == {"lib-and-notebook"}
    assert summary.groups(recs, "images", "quick")[0]["code"] == "lib-and-notebook"


def test_registry_schema(tmp_path):
    """Records written by run_chapter carry every key of the schema; others are ignored."""
    good = record("images", 0, 40.0, 30.0)
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps({"chapter": "images"}))  # incomplete: not a record
    (tmp_path / "c.json").write_text("{broken")
    loaded = provenance.load_records(root=tmp_path)
    assert loaded == [good]
    assert set(provenance.RECORD_KEYS) <= set(good)


@pytest.mark.parametrize("claim, why", [({"seeds": [0, 1], "mae": [0.5, float("inf")], "baseline": [0.4, 0.3]},
                                          r"claim's mae\[1\] holds a value that is not finite"),
                                         ({"seeds": [0, 1], "mae": [0.5], "baseline": [0.4, 0.3]},
                                          r"claim's per-seed lists differ in length \(seeds 2, mae 1, baseline 2\)")])
def test_a_record_that_cannot_be_pooled_is_set_aside_by_name(tmp_path, claim, why):
    """Infinity in the per-seed values or lists of different lengths: the record is named and left out,
    and the summary pools the rest (it ended in an OverflowError naming no record)."""
    good = record("images", 0, 40.0, 30.0)
    (tmp_path / "a.json").write_text(json.dumps(good))
    bad = record("images", 1, 40.0, 30.0)
    bad["metrics"]["claim"] = claim
    (tmp_path / "bad.json").write_text(json.dumps(bad))  # Infinity, as json writes it
    with pytest.warns(provenance.RecordSetAside, match=f"bad.json does not follow the schema .its {why}"):
        assert summary.load(tmp_path) == [good]


def test_committed_records_follow_the_schema():
    for f in provenance.PUBLISHED.glob("*.json"):
        record = json.loads(f.read_text())
        assert provenance.record_problem(record) is None, f.name
        for key in ("claim", "claim_long", "claim_numeric"):
            summary.seed_values(record, key)  # each per-seed entry reads back as a SeedValues
        back = json.loads(json.dumps(Results.from_dict(record["metrics"]).to_dict()))
        assert back == record["metrics"], f.name  # the declared results type reads every record back whole


@pytest.mark.parametrize("metrics, why", [
    ({"lr": {"MAE": "fast"}}, "lr must map each arm to a number"),
    ({"lr_grid": {"MAE": [0.1]}}, "lr_grid must map each arm"),
    ({"mask_ratio_metric": {"label": "top-1", "values": ["high"]}}, "mask-ratio metric is a label and numbers"),
    ({"claim": {"seeds": [0], "mae": [1.0]}}, "missing per-seed entries"),
    ({"wall_s": "long"}, "wall_s must be a number"),
])
def test_malformed_results_are_refused_naming_the_entry(metrics, why):
    with pytest.raises(ValueError, match=why):
        Results.from_dict(metrics)
    record = {"chapter": "tabular", "notebook": "05_tabular.ipynb", "parameters": {}, "resolved": {}, "profile": "quick",
              "seed": 0, "device": "cpu", "metrics": metrics, "wall_s": 1.0, "finished": "2026-12-04T00:00:00+00:00",
              "git_commit": None, "stamp": "x"}
    assert provenance.record_problem(record)  # the registry sets such a record aside


@pytest.mark.slow
def test_summary_notebook_runs_on_a_registry_fixture(tmp_path):
    reg = tmp_path / "registry"
    reg.mkdir()
    recs = [record("images", s, 40.0 + s, 30.0) for s in range(5)]
    recs += [record("images", s, 35.0 + 2 * r, 30.0, parameters={"mask_ratio": r}) for s in range(2) for r in (0.25, 0.5)]
    recs += [payoff_record(s) for s in range(3)]
    for i, r in enumerate(recs):
        (reg / f"r{i}.json").write_text(json.dumps(r))
    out = runs.run_chapter("summary", {"profile": "smoke", "records_dir": str(reg)}, force=True,
                           out_dir=tmp_path / "out", progress=False, records_dir=None)
    values = runs.glued(nbformat.read(out, as_version=4))
    assert values["n_records"] == len(recs)
    assert values["n_ratio_points"] == 9  # the 5 default runs (mask ratio 0.75) are points of the sweep too
    assert "undecided" in values["ratio_verdict"]  # two seeds a ratio besides the default: no best ratio yet
    assert values["results"]["verdicts"]["Table 1"] == "holds"
    assert values["results"]["verdicts"]["Table 3"] == "not run"
    said = values["payoff_sentence"]  # scratch passes 60% at 40 FLOPs, the MAE arm at 50 (see payoff_record)
    assert "with 100% of the labels, from about" in said and "From 3 seeds at the quick profile." in said, said
    assert "At Chapter 1's budget on all the labels, the branches against" in values["payoff_check"]


def payoff_record(seed):
    """A run of the chapter on when MAE pays: scratch at 10, 20, 40 and 80 FLOPs (top-1 40, 50, 60, 70), the MAE
    arm at 40, 50 and 70 (50, 70, 90): behind at its cheapest, ahead from the next."""
    points = [{"arm": "scratch", "fraction": 1.0, "epochs": e, "flops": float(e), "top1": t + seed, "labelled": 1,
               "steps": 1} for e, t in ((10, 40), (20, 50), (40, 60), (80, 70))]
    points += [{"arm": "MAE + fine-tune", "fraction": 1.0, "epochs": e, "flops": 30.0 + e, "top1": t + seed,
                "labelled": 1, "steps": 1} for e, t in ((10, 50), (20, 70), (40, 90))]
    r = record("payoff", seed, 0.0, 0.0)
    r["metrics"] = {"points": points, "lr": {"MAE + fine-tune": 4e-3, "scratch": 2e-3}}
    return r


def _copy_of_the_code(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(provenance.ROOT / "maelib", tmp_path / "maelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(provenance.ROOT / "notebooks", tmp_path / "notebooks")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    monkeypatch.setattr(provenance, "NOTEBOOKS", tmp_path / "notebooks")
    return tmp_path


def _touch(path, text="\n# changed\n"):
    with open(path, "a") as f:
        f.write(text)


def test_a_chapters_version_follows_the_code_its_notebook_reaches(tmp_path, monkeypatch):
    """A change to a module the tabular chapter reaches (tabular.py, mae.py under it) gives it a new
    version; a change to one it does not reach (images.py, volumes.py) or a new module leaves its seeds
    pooled as they were, while the image chapter, which reaches images.py, gets a new version."""
    root = _copy_of_the_code(tmp_path, monkeypatch)
    assert {"maelib.tabular", "maelib.mae", "maelib.train"} <= provenance.chapter_modules("tabular")
    assert not {"maelib.images", "maelib.volumes", "maelib.runs"} & provenance.chapter_modules("tabular")
    tab, img = provenance.version("tabular"), provenance.version("images")
    _touch(root / "maelib" / "images.py")
    (root / "maelib" / "audio.py").write_text('"""A sixth modality."""\n')
    assert provenance.version("tabular") == tab and provenance.version("images") != img
    for module in ("tabular.py", "mae.py"):
        _touch(root / "maelib" / module)
        assert provenance.version("tabular") != tab
        tab = provenance.version("tabular")
    shown = provenance.code_hash("tabular", computing_only=False)  # what decides whether the page is rebuilt
    _touch(root / "maelib" / "claim_tables.py")  # the notebook shows its table with it: it computes nothing
    assert provenance.version("tabular") == tab and provenance.code_hash("tabular", computing_only=False) != shown


def test_a_notebook_that_does_not_parse_is_named_not_a_traceback(tmp_path, monkeypatch):
    root = _copy_of_the_code(tmp_path, monkeypatch)
    _touch(root / "notebooks" / "05_tabular.py", "\n# %%\nx = (\n")
    with pytest.raises(ValueError, match=r"05_tabular.py does not parse: line \d+"):
        provenance.version("tabular")


def test_imports_inside_functions_and_relative_imports_are_followed(tmp_path, monkeypatch):
    root = _copy_of_the_code(tmp_path, monkeypatch)
    (root / "maelib" / "late.py").write_text('"""Imported only inside a function."""\n')
    (root / "maelib" / "tokens.py").write_text((root / "maelib" / "tokens.py").read_text()
                                               + "\n\ndef _later():\n    from . import late\n")
    assert "maelib.late" in provenance.chapter_modules("tabular")  # tabular -> mae -> tokens -> late
    tab = provenance.version("tabular")
    _touch(root / "maelib" / "late.py")
    assert provenance.version("tabular") != tab


def test_the_pooling_version_covers_the_notebooks_code_not_its_prose(tmp_path, monkeypatch):
    """Seeds are pooled by a version that changes with the code of the chapter's notebook (not its prose),
    and with tuning.py (which decides which learning rates a seed reuses)."""
    root = _copy_of_the_code(tmp_path, monkeypatch)
    version = provenance.version("segmentation")
    _touch(root / "notebooks" / "03_segmentation.py", "\n# %% [markdown]\n# A sentence of the chapter mended.\n")
    assert provenance.version("segmentation") == version  # prose decides no number
    _touch(root / "notebooks" / "03_segmentation.py", "\n# %%\nscored_differently = True\n")
    assert provenance.version("segmentation") != version
    version = provenance.version("segmentation")
    _touch(root / "maelib" / "tuning.py")
    assert provenance.version("segmentation") != version


def test_seeds_reuse_the_learning_rates_the_seed_0_run_chose(tmp_path):
    """A run finds the choice of the seed-0 run with its setting and code version; a different setting, an
    earlier code version or another seed's run does not count."""
    code = provenance.version("segmentation")
    chosen = {"lr": {"MAE init": 1e-3, "scratch": 2e-3},
              "lr_grid": {"MAE init": {"0.001": 0.3, "0.002": 0.2}, "scratch": {"0.001": 0.2, "0.002": 0.25}}}

    def rec(seed, code, **resolved):
        r = record("segmentation", seed, 0.3, 0.3, code=code, parameters=resolved)
        r["metrics"].update(chosen)
        return r

    for i, r in enumerate([rec(0, "an earlier version"), rec(1, code), rec(0, code, epochs=99)]):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    resolved = {**vars(profiles.resolve("segmentation", "quick")), "seed": 3}
    assert tuning.recorded("segmentation", resolved, root=tmp_path) is None
    (tmp_path / "r9.json").write_text(json.dumps(rec(0, code)))
    found = tuning.recorded("segmentation", resolved, root=tmp_path)
    assert found["lr"] == chosen["lr"] and found["lr_grid"] == chosen["lr_grid"]


def test_table_2_is_judged_against_the_papers_row_for_the_ratio_validation_chose():
    mae, base = [0.05, 0.052, 0.049, 0.051, 0.05], [0.01, 0.011, 0.0105, 0.01, 0.011]
    chosen = ["transformer forecaster, input mask 0.25"] * 4 + ["transformer forecaster, input mask 0.75"]
    row = row_of("series", mae, base, chosen=chosen)
    assert row["paper_cell"] == ("Table 2", "MAE, mask=0.25", "Mean Sqr. Err.") and row["paper_mae"] == 0.07778
    assert row["paper_note"].startswith("the paper's row at mask 0.25, which validation chose for 4 of 5 seeds; ")
    assert row["paper_gap"] == pytest.approx(-(0.07778 / 0.01538 - 1) * np.mean(base))  # its ratio, at our scale
    recs = [record("series", s, m, b, chosen=[c]) for s, (m, b, c) in enumerate(zip(mae, base, chosen))]
    cell = claim_tables.claims_table(recs).loc["Table 2", "paper: MAE / baseline"]
    assert cell.startswith("0.07778 / 0.01538") and cell.endswith(claim_tables.NOTE_MARK)  # the note under the table
    assert claim_tables.paper_notes(recs)["Table 2"] == row["paper_note"]
    assert row_of("series", mae, base)["paper_mae"] == 0.07546  # nothing recorded: the claim's own row (0.50)


def test_runs_on_other_data_are_neither_pooled_nor_tuned_together(tmp_path):
    """Under dataset="auto", a run that read ADE20K and one that read CamVid have the same resolved
    parameters; the data they read (name and checksum) keeps them apart, for pooling and for reuse."""
    version = provenance.version("segmentation")
    camvid = {"dataset": "camvid", "file": "camvid.zip", "sha256": "a" * 64, "verified": True}
    ade = {"dataset": "ade20k", "file": "ade.zip", "sha256": "b" * 64, "verified": True}
    recs = []
    for data in (camvid, ade):
        for s in range(5):
            r = record("segmentation", s, 0.3 + 0.01 * s, 0.29, code=version)
            r["resolved"]["dataset"], r["data"] = "auto", data  # the default parameters, other data read
            r["metrics"].update({"lr": {"MAE init": 1e-3}, "lr_grid": {"MAE init": {"0.001": 0.3}}})
            recs.append(r)
    found = summary.groups(recs, "segmentation", "quick")
    assert sorted(g["dataset"] for g in found) == ["ade20k", "camvid"] and all(len(g["seeds"]) == 5 for g in found)
    (tmp_path / "r0.json").write_text(json.dumps(recs[0]))  # only CamVid's seed 0 chose
    resolved = {**recs[0]["resolved"], "seed": 1}
    assert tuning.recorded("segmentation", resolved, camvid, root=tmp_path)["lr"] == {"MAE init": 1e-3}
    assert tuning.recorded("segmentation", resolved, ade, root=tmp_path) is None
    assert tuning.recorded("segmentation", resolved, {**camvid, "sha256": "c" * 64}, root=tmp_path) is None


def test_a_power_sweep_asks_for_the_seeds_that_80_percent_power_needs():
    version = provenance.version("segmentation")
    seeds, why = summary.seeds_needed("segmentation", "quick", [])
    assert seeds == [0, 1, 2, 3, 4] and why.endswith("0 seeds at this version and setting, so a pilot of 5")
    one = [record("segmentation", 0, 0.3, 0.3, code=provenance.version("segmentation"))]
    assert "1 seed at this version and setting" in summary.seeds_needed("segmentation", "quick", one)[1]
    gaps = [0.0085 + d for d in (0.01, -0.01, 0.005, -0.005, 0.0)]  # sd 0.0079 around the paper's gap
    pilot = [record("segmentation", s, 0.3 + g, 0.3, code=version) for s, g in enumerate(gaps)]
    seeds, why = summary.seeds_needed("segmentation", "quick", pilot)
    need = stats.seeds_for_power(CLAIM["segmentation"].paper_gap, float(np.std(gaps, ddof=1)))
    assert 5 < need <= 20 and seeds == list(range(5, need)) and f"{need} seeds for 80% power" in why
    noisy = [record("segmentation", s, 0.3 + g * 10, 0.3, code=version) for s, g in enumerate(gaps)]
    seeds, why = summary.seeds_needed("segmentation", "quick", noisy)
    assert seeds == list(range(5, 20))  # capped at 20, and said so: never "20 seeds for 80% power"
    assert "20 seeds, the most a sweep runs; 80% power at the paper's gap" in why and "for 80%" not in why
    old = [record("segmentation", s, 0.3 + g, 0.3, code="older") for s, g in enumerate(gaps)]
    assert summary.seeds_needed("segmentation", "quick", old)[0] == [0, 1, 2, 3, 4]  # another version: a pilot
    grid = [record("segmentation", s, 0.3 + g, 0.3, code=version, parameters={"lr_grid": [1.0]})
            for s, g in enumerate(gaps)]
    for r in grid:  # a default run when it ran: the profile's grid has changed since
        r["parameters"] = {"profile": "quick", "seed": r["seed"]}
    seeds, why = summary.seeds_needed("segmentation", "quick", grid)
    assert seeds == [0, 1, 2, 3, 4] and "0 seeds at this version and setting" in why  # the new grid's pilot


def test_the_seeds_for_power_come_from_the_comparison_the_verdict_judges():
    """The pilot's MAE arm is noisy against the short scratch arm (the paper's comparison, which the verdict
    judges) and tight against the budget-matched one: the seeds asked are those of the noisy comparison,
    whichever arm scored better."""
    version = provenance.version("segmentation")
    wobble = (0.01, -0.01, 0.005, -0.005, 0.0)
    pilot = [record("segmentation", s, 0.33, 0.32 + 2 * w, code=version, baseline_matched=[0.45])
             for s, w in enumerate(wobble)]
    seeds, why = summary.seeds_needed("segmentation", "quick", pilot)
    sd = float(np.std([0.33 - 0.32 - 2 * w for w in wobble], ddof=1))
    need = stats.seeds_for_power(CLAIM["segmentation"].paper_gap_here(CLAIM["segmentation"].paper_mae, 0.32), sd)
    assert seeds == list(range(5, need or stats.MAX_SEEDS)) and seeds and f"(sd {sd:.3g})" in why


def test_in_fewer_epochs_is_judged_on_the_recorded_curves():
    """Per seed, the epochs each arm needs to reach 90% of scratch's final score: here the MAE arm gets
    there at epoch 2 and scratch at epoch 4, so 2 epochs saved; a curve that never gets there counts E + 1."""
    version = provenance.version("volumes")
    recs = []
    for s in range(5):
        mae_curve, base_curve = [0.5, 0.9, 0.95, 0.96], [0.2, 0.5, 0.8, 0.95 + 0.001 * s]
        recs.append(record("volumes", s, mae_curve[-1], base_curve[-1], code=version, mae_curve=[mae_curve],
                           baseline_curve=[base_curve]))
    got = claim_tables.curves(recs, CLAIM["volumes"], "quick")
    assert [v.shape for v in got.values()] == [(5, 4), (5, 4)]
    row = claim_tables.epochs_table(recs).iloc[0]
    assert row["table"] == "Table 4" and row["MAE arm: epochs"] == 2 and row["scratch: epochs"] == 4
    assert row["epochs saved [95% CI] (n)"].startswith("2.00") and "(n\u00a0=\u00a05)" in row["epochs saved [95% CI] (n)"]
    assert stats.epochs_to_reach([0.1, 0.2], 0.5) == 3.0  # never reached: one epoch past the run
    assert claim_tables.epochs_table([record("volumes", 0, 0.3, 0.2, code=version)]).empty  # no curves recorded


@pytest.mark.parametrize("matched, verdict", [(46.0, "MAE worse"), (30.0, "MAE better")])
def test_a_claim_is_judged_by_the_papers_comparison_whichever_scratch_arm_scores_better(matched, verdict):
    """Scratch trained as long as the MAE's fine-tuning is beaten. Whether scratch given the MAE arm's passes
    scores better or worse, the claim's verdict is the paper's comparison (no arm picked by its result),
    and the budget-matched comparison gets a verdict of its own beside it."""
    version = provenance.version("images")
    recs = [record("images", s, 45.0 + 0.3 * s, 40.0 + 0.2 * s, code=version,
                   baseline_matched=[matched + 0.25 * s]) for s in range(5)]
    row = summary.claim_rows(recs).set_index(["table", "profile"]).loc[("Table 1", "quick")]
    assert row["baseline"] == pytest.approx(40.4) and row["verdict"] == "holds"
    assert row["matched_verdict"][0] == verdict
    assert np.sign(row["matched_gap"]["gap"]) == (1 if verdict == "MAE better" else -1)
    budget = claim_tables.budget_table(recs).iloc[0]
    assert budget["its verdict"] == verdict  # a word or two; why, in the list under the table
    assert claim_tables.compute_reasons(recs)["Table 1 (quick)"].startswith(f"{verdict}: the 95% interval")
    assert budget[claim_tables.ARM_BUDGETS].startswith("not counted")  # these records counted no FLOPs
    assert budget["the paper's comparison [95% CI] (n)"].startswith(viz.sig(row["gap"]))
    table = claim_tables.claims_table(recs)
    assert table.loc["Table 1", claim_tables.COMPUTE_VERDICT] == verdict
    assert table.loc["Table 5", claim_tables.COMPUTE_VERDICT] == "–"  # not run


def test_the_budget_table_gives_each_arms_flops_and_epochs_from_the_records():
    version = provenance.version("images")
    budget = {key: {"pretraining passes": pre, "supervised passes": ep, "optimizer steps": 10 * (pre + ep),
                    "training FLOPs": flops}
              for key, pre, ep, flops in (("mae", 14, 5, 3.4e12), ("baseline", 0, 5, 2.4e12),
                                          ("baseline_matched", 0, 11, 5.3e12))}
    recs = [record("images", s, 45.0 + 0.3 * s, 40.0, code=version, baseline_matched=[41.0 + 0.2 * s])
            for s in range(5)]
    recs[-1]["metrics"]["budget"] = budget
    cell = claim_tables.budget_table(recs).iloc[0][claim_tables.ARM_BUDGETS]
    assert cell.replace("\u00a0", " ") == "3.4e+12 (5) / 2.4e+12 (5) / 5.3e+12 (11)"
    assert "this comparison is the paper's" not in claim_tables.compute_reasons(recs)["Table 1 (quick)"]
    budget["baseline_matched"]["supervised passes"] = 5  # as many epochs as scratch (Table 4 at quick)
    assert claim_tables.compute_reasons(recs)["Table 1 (quick)"].endswith("so this comparison is the paper's")


def test_a_comparison_without_a_paper_gap_says_what_it_lacks():
    """The compute comparison has no paper gap to rule out: with too few seeds it says so, with an interval
    over 0 it names the gaps it leaves open."""
    assert stats.compare(stats.paired([1.0, 2.0], [1.0, 1.5]))[0] == "inconclusive (2 seeds)"
    word, why = stats.compare(stats.paired([1.0, 2.0, 3.0, 4.0, 5.0], [1.1, 1.9, 3.2, 3.8, 5.0]))
    assert word == "no detectable difference" and "is not ruled out" in why
    assert stats.compare(stats.paired([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.1, 2.9, 4.0, 5.1]))[0] == "MAE better"
    assert stats.compare(stats.paired([], []))[0] == "not run"


def test_an_arm_with_a_seed_that_did_not_learn_is_marked():
    version = provenance.version("volumes")
    recs = [record("volumes", s, v, 0.3 + 0.01 * s, code=version) for s, v in enumerate([0.6, 0.62, 0.05, 0.61, 0.6])]
    table = claim_tables.learning_table(recs).set_index("arm")
    assert table.loc["MAE init", "every seed learned"] == "no" and table.loc["MAE init", "worst seed"] == "0.0500"
    assert table.loc["scratch", "every seed learned"] == "yes"
    series = [record("series", s, 0.002 + 0.0001 * s, 0.0021, code=provenance.version("series"), floor=[0.001])
              for s in range(5)]
    table = claim_tables.learning_table(series).set_index(["table", "arm"])
    assert table.loc[("Table 2", "forecaster without masking"), "as good as persistence"] == "no"


def test_each_arms_rate_is_placed_in_the_grid_its_seed_0_run_tried():
    """A rate chosen at the top of a grown grid is flagged (volumes chose 0.008 from [0.0005, 0.008]); the
    grid read is the seed-0 run's of the judged group, not an older setting's."""
    version = provenance.version("volumes")
    grid = {"MAE init": {"0.002": 0.7, "0.004": 0.8, "0.008": 0.83}, "scratch": {"0.002": 0.9, "0.004": 0.8},
            "scratch, budget-matched": {"0.002": 0.8, "0.004": 0.86, "0.008": 0.85}}
    recs = [record("volumes", s, 0.83, 0.8, code=version) for s in range(5)]
    recs[0]["metrics"].update(lr={"MAE init": 0.008, "scratch": 0.002, "scratch, budget-matched": 0.004}, lr_grid=grid)
    older = record("volumes", 0, 0.5, 0.5, code=version, parameters={"lr_grid": [1.0]}, finished="2026-11-01T00:00:00")
    older["metrics"].update(lr={"MAE init": 1.0}, lr_grid={"MAE init": {"1.0": 0.5}})
    table = claim_tables.rate_table([older, *recs]).set_index("arm")
    assert list(table["where"]) == ["at the top", "at the bottom", "inside"]
    assert table.loc["MAE init", "rates tried"] == "0.00200, 0.00400, 0.00800" and table.loc["MAE init", "chosen"] == "0.00800"
    assert claim_tables.rate_table(recs[1:]).empty  # no seed-0 run: nothing to place


def test_the_judged_groups_of_this_code_learned_in_every_arm():
    """On the committed records: every arm of every group made by this book's code learned in every seed
    (groups of older code are judged by the code they were made with)."""
    records = summary.load()
    for c in summary.CLAIMS:
        for prof in ("quick", "full"):
            g = summary.judged_group(records, c.chapter, prof, c.key)
            if g is None or g["code"] != provenance.version(c.chapter) or len(g["seeds"]) < summary.MIN_SEEDS:
                continue
            table = claim_tables.learning_table([r for r in records if r["chapter"] == c.chapter], (prof,))
            assert (table[table["table"] == c.table]["every seed learned"] == "yes").all(), (c.table, prof)


def test_a_gap_and_its_interval_are_written_in_one_format():
    """Item 7: "-6.59e-05 [-0.000110, -2.22e-05]" put two formats in one cell; "(n = 5)" broke at its spaces."""
    row = {"gap": -6.59e-5, "lo": -1.10e-4, "hi": -2.22e-5, "n": 5}
    assert claim_tables._gap_text(row) == "-6.59e\u201105 [-1.10e\u201104, -2.22e\u201105] (n\u00a0=\u00a05)"
    row = {"gap": 0.00598, "lo": -0.00967, "hi": 0.0216, "n": 5}
    assert claim_tables._gap_text(row).startswith("0.00598 [-0.00967, 0.0216]")
    assert claim_tables._gap_text({"gap": 2.4, "lo": float("nan"), "hi": float("nan"), "n": 1}) == "2.40 (n\u00a0=\u00a01)"


def test_the_scale_table_names_datasets_as_readers_know_them():
    """Table 23 wrote the registry's keys ("tinyimagenet", "camvid ... ade20k")."""
    version = provenance.version("segmentation")
    recs = [record("segmentation", s, 0.33, 0.32, code=version) for s in range(5)]
    for r in recs:
        r["metrics"]["dataset"] = "camvid"
    data = claim_tables.scale_table(recs).loc["Table 3", "data"]
    assert data == "CamVid (a stand-in for the paper's ADE20K)"


def test_a_seeds_values_come_from_the_last_epoch_of_each_arms_curve():
    from maelib.report import SeedValues

    v = SeedValues.of_curves(3, {"MAE": [0.1, 0.4], "scratch": [0.2, 0.3], "matched": (0.1, 0.2, 0.35)},
                             "MAE", "scratch", "matched")
    assert (v.seeds, v.mae, v.baseline, v.baseline_matched) == ([3], [0.4], [0.3], [0.35])
    assert v.mae_curve == [[0.1, 0.4]] and v.baseline_curve == [[0.2, 0.3]]


def test_a_verdict_takes_the_test_items_noise_where_runs_recorded_items():
    """Runs that record each arm's score per test item are judged on the bootstrap over seeds and items
    (wider than over seeds alone when the test set is small and noisy); runs without items over seeds."""
    rng = np.random.default_rng(0)
    item_gap = rng.normal(0, 30, 60)
    recs = []
    for s in range(6):
        base = list(rng.uniform(0, 100, 60))
        mae = [b + g + rng.normal(0, 1) for b, g in zip(base, item_gap)]
        recs.append(record("images", s, float(np.mean(mae)), float(np.mean(base)), mae_items=[mae],
                           baseline_items=[base]))
    row = summary.claim_rows(recs, profiles=("quick",)).iloc[0]
    plain = stats.paired([r["metrics"]["claim"]["mae"][0] for r in recs],
                         [r["metrics"]["claim"]["baseline"][0] for r in recs])
    assert row["over"] == "seeds and test items" and row["gap"] == pytest.approx(plain["gap"])
    assert row["hi"] - row["lo"] > 3 * (plain["hi"] - plain["lo"])
    for r in recs:
        del r["metrics"]["claim"]["mae_items"]
    assert summary.claim_rows(recs, profiles=("quick",)).iloc[0]["over"] == "seeds"


def test_a_gap_from_0_1_hits_is_in_the_metrics_percent_points():
    """Images record each validation image as a 0/1 hit and top-1 in percent: the verdict's gap, interval and
    the comparison with the paper's gap (7.9 points) must be in points, not in fractions (the bug of
    2026-12-06: +0.078 read as "below the paper's 7.9")."""
    rng = np.random.default_rng(1)
    recs = []
    for s in range(5):
        base = (rng.random(400) < 0.50).astype(float)
        mae = np.where(rng.random(400) < 0.16, 1.0, base)  # about 8 points better
        recs.append(record("images", s, 100 * mae.mean(), 100 * base.mean(), mae_items=[list(mae)],
                           baseline_items=[list(base)]))
    row = summary.claim_rows(recs, profiles=("quick",)).iloc[0]
    points = stats.paired([r["metrics"]["claim"]["mae"][0] for r in recs],
                          [r["metrics"]["claim"]["baseline"][0] for r in recs])
    assert row["over"] == "seeds and test items" and row["gap"] == pytest.approx(points["gap"])
    assert 1 < row["lo"] < row["gap"] < row["hi"] < 20
    assert summary.item_scale([55.0, 57.0], [0.55, 0.57]) == 100 and summary.item_scale([0.84], [0.80]) == 1


def test_patchtst_power_is_on_the_log_ratio_scale():
    """PatchTST's gap is of multivariate data, ours univariate: its power reads the paper's ratio against
    the spread of our seeds' ratios, so doubling every error (a change of scale) leaves it unchanged."""
    c = next(c for c in summary.CLAIMS if c.key == "claim_long")
    assert c.as_ratio and not c.paper_scale_unknown
    mae, base = [0.060, 0.058, 0.061, 0.059, 0.062], [0.061, 0.060, 0.060, 0.062, 0.061]
    st = stats.paired(mae, base, higher_is_better=False)
    one = summary.power_at_paper(c, c.paper_mae, mae, base, st)
    twice = summary.power_at_paper(c, c.paper_mae, [2 * v for v in mae], [2 * v for v in base],
                                   stats.paired([2 * v for v in mae], [2 * v for v in base], higher_is_better=False))
    assert one[0] == pytest.approx(twice[0]) and 0 < one[0] < 1
    logs = stats.log_gaps(mae, base, higher_is_better=False)
    effect = float(np.log(c.paper_base / c.paper_mae))
    assert one[0] == pytest.approx(stats.power(effect, float(np.std(logs, ddof=1)), 5))


def test_an_mae_that_did_not_learn_or_an_unfinished_arm_marks_the_verdict():
    recs = [record("images", s, 40.0 + s % 2, 30.0 + 0.1 * s, mae_vs_flat=[0.5 if s else 0.9],
                   mae_curve=[[10, 20, 30, 39, 40]], baseline_curve=[[10, 20, 25, 29.9, 30]]) for s in range(5)]
    row = summary.claim_rows(recs, profiles=("quick",)).iloc[0]
    assert row["mae_check"] == {"n": 5, "worst": 0.9, "failed": 1}
    assert "did not learn on 1 of 5 seeds" in row["reason"]
    assert row["convergence"]["mae"] == pytest.approx(1) and row["convergence"]["baseline"] == pytest.approx(0.1)
    assert "still improving at the last epoch (MAE + fine-tune: a mean gain of at least 0.5" in row["reason"]
    for r in recs:
        r["metrics"]["claim"].update(mae_vs_flat=[0.5], mae_curve=[[10, 20, 30, 39.8, 40]])
    row = summary.claim_rows(recs, profiles=("quick",)).iloc[0]
    assert "did not learn" not in row["reason"] and "still improving" not in row["reason"]


def test_the_table_read_first_gives_each_claim_its_two_verdicts_and_its_scale():
    from maelib import claim_tables

    recs = [record("images", s, 40.0 + 0.1 * s, 30.0, code=provenance.version("images"), baseline_matched=[45.0 + s],
                   mae_vs_flat=[0.5], mae_curve=[[10, 39.95 + 0.1 * s, 40 + 0.1 * s]], baseline_curve=[[10, 29.9, 30]],
                   matched_curve=[[10, 44.9 + s, 45 + s]]) for s in range(5)]
    glance = claim_tables.glance_table(recs)
    row = glance.loc["Table 1: " + claim_tables.SHORT_CLAIMS["Table 1"]]
    assert row["the paper's comparison"] == "holds (larger than the paper's)"  # ours +10.2 [10.0, 10.4], the paper's +7.9
    assert row["at the MAE arm's compute"] == "MAE worse"
    assert row["scale"].startswith("quick, 5 seeds; TinyImageNet; 64 tokens (16 seen)") and "FLOPs" not in row["scale"]
    assert (glance["the paper's comparison"] == "not run").sum() == len(summary.CLAIMS) - 1
    small = [record("images", s, 35.0 + 0.1 * s, 30.0, code=provenance.version("images")) for s in range(5)]
    assert claim_tables.glance_table(small).loc["Table 1: " + claim_tables.SHORT_CLAIMS["Table 1"],
                                                "the paper's comparison"] == "holds (smaller than the paper's)"
    checks = claim_tables.checks_table(recs).loc["Table 1"]
    assert checks.iloc[0] == "64 tokens (16 seen); enough (at least 64)"
    assert checks.iloc[1].startswith("yes (worst 0.5") and checks.iloc[2].startswith("yes: ")
    text = claim_tables.findings(recs)
    assert text.startswith("By the paper's own comparisons: Table 1 holds;") and "MAE worse in Table 1" in text
    for r in recs:  # an arm still improving at the end marks the verdict
        r["metrics"]["claim"]["baseline_curve"] = [[10, 20, 30]]
    assert "not meaningful at this scale" in claim_tables.glance_table(recs).iloc[0]["the paper's comparison"]


def test_the_items_shape_says_how_they_give_a_score():
    """A record's claim holds per-seed lists only, so no aggregate is named: one number per item is averaged,
    [sum, count] pairs are a ratio of sums, per-class [intersections, unions] an mIoU."""
    assert summary.item_aggregate([[1.0, 0.0]]) == "mean"
    assert summary.item_aggregate([[[1.0, 2], [0.5, 1]]]) == "ratio"
    assert summary.item_aggregate([[[[1, 0], [2, 0]]]]) == "iou"
    rec = record("tabular", 0, 0.1, 0.2, mae_items=[[[1.0, 2], [0.5, 1]]], baseline_items=[[[2.0, 2], [1.0, 1]]])
    assert provenance.claim_problem("claim", rec["metrics"]["claim"]) is None


def ratio_records(chapter, curve, code="c1", key="claim", parameter="mask_ratio", base=0.5, seeds=3):
    """Records of a mask-ratio sweep: ``curve`` maps a ratio to its mean, seeds spread by ±0.001."""
    recs = []
    for ratio, mean in curve.items():
        for s in range(seeds):
            r = record(chapter, s, mean + 0.001 * (s - 1), base, parameters={parameter: ratio}, code=code)
            r["metrics"][key] = r["metrics"].pop("claim")
            recs.append(r)
    return recs


def test_a_ratio_sweep_pools_one_code_version_and_one_setting():
    old = ratio_records("tabular", {0.5: 0.01}, code="old")
    new = ratio_records("tabular", {0.1: 0.03, 0.3: 0.02}, code="new")
    other = record("tabular", 7, 0.9, 0.5, parameters={"mask_ratio": 0.9, "epochs": 3}, code="new")
    frame = summary.ratio_frame(old + new + [other])
    part = frame[frame["table"] == "Table 5"]
    assert sorted(part["ratio"].unique()) == [0.1, 0.3]  # the old version's 0.5 and the other setting left out
    assert set(part["code"]) == {"new"} and len(part) == 6


def test_the_best_ratio_needs_three_seeds_a_ratio():
    frame = summary.ratio_frame(ratio_records("tabular", {0.1: 0.03, 0.3: 0.02, 0.9: 0.001}, seeds=3)[:-1])
    best = summary.best_ratios(frame)["Table 5", "quick"]  # 0.9 has two seeds: not read, though lowest
    assert best["ratios"] == [0.1, 0.3] and best["best"] == 0.3 and best["low"] == best["high"] == 0.3


def test_the_declared_ratio_test_reads_each_modality_against_images():
    tables = ratio_records("tabular", {0.1: 0.02, 0.5: 0.03, 0.9: 0.05})
    series = ratio_records("series", {0.1: 0.05, 0.4: 0.06, 0.9: 0.07}, key="claim_long", parameter="long_mask_ratio")
    low_images = ratio_records("images", {0.1: 40.0, 0.5: 30.0, 0.9: 20.0}, base=30.0)
    high_images = ratio_records("images", {0.1: 20.0, 0.5: 30.0, 0.9: 40.0}, base=30.0)
    word, lines = summary.ratio_test(summary.best_ratios(summary.ratio_frame(tables + series)), "quick")
    assert word == "undecided" and all("no curve of images" in line for line in lines)
    word, _ = summary.ratio_test(summary.best_ratios(summary.ratio_frame(tables + series + high_images)), "quick")
    assert word == "holds"
    word, lines = summary.ratio_test(summary.best_ratios(summary.ratio_frame(tables + series + low_images)), "quick")
    assert word == "undecided" and "50% of the bootstrap draws" in lines[0]  # both best at 0.1: a tie
    high_series = ratio_records("series", {0.1: 0.07, 0.4: 0.06, 0.9: 0.05}, key="claim_long",
                                parameter="long_mask_ratio")
    word, lines = summary.ratio_test(summary.best_ratios(summary.ratio_frame(tables + high_series + low_images)),
                                     "quick")
    assert word == "ruled out" and lines[0].startswith("Time series' best ratio below that of images: ruled out")


def test_an_mae_task_of_too_few_tokens_marks_its_verdict():
    c = CLAIM["volumes"]
    up, down = [0.80, 0.81, 0.82, 0.83, 0.81], [0.70, 0.71, 0.70, 0.72, 0.71]

    def rows(roi):
        recs = [record("volumes", s, m, b, code=provenance.version("volumes"), parameters={"roi": roi})
                for s, (m, b) in enumerate(zip(up, down))]
        for r in recs:  # the chapter's default, so that the group is judged
            r["parameters"].pop("roi")
        return summary.claim_rows(recs).set_index(["table", "profile"]).loc[(c.table, "quick")]

    few = rows([32, 48, 32])  # 2 x 3 x 2 patches of 16 voxels
    assert "degenerate" in few["reason"] and "12 tokens a sample, 3 seen" in few["reason"]
    assert claim_tables.NOT_MEANINGFUL in claim_tables.short_verdict(few)
    assert "degenerate" not in rows([64, 64, 48])["reason"]  # 4 x 4 x 3 = 48, the floor


def test_the_claims_table_keeps_its_verdict_cells_short_and_lists_why_below():
    recs = [record("segmentation", s, m, b, code=provenance.version("segmentation"))
            for s, (m, b) in enumerate(zip([0.30, 0.31, 0.32, 0.33, 0.31], [0.20, 0.21, 0.20, 0.22, 0.21]))]
    cell = claim_tables.claims_table(recs).loc["Table 3", "verdict"]
    why = claim_tables.verdict_reasons(recs)["Table 3"]
    assert cell.startswith("holds") and "interval" not in cell and len(cell) < 60
    assert why.startswith("holds: MAE better") and "95% interval excludes 0" in why


def test_the_ratio_sweeps_rerun_from_one_command_each_with_their_hours():
    recs = ratio_records("tabular", {0.3: 0.02, 0.1: 0.03, 0.9: 0.05})  # 0.3: the chapter's default
    recs += ratio_records("series", {0.4: 0.06, 0.1: 0.05}, key="claim_long", parameter="long_mask_ratio")
    lines = dict(summary.ratio_commands(summary.ratio_frame(recs)))
    tabular = "python -m maelib sweep tabular --profile quick --ratios 0.1 0.9 --seeds 0 1 2 --publish"
    assert lines[tabular] == pytest.approx(6 / 3600)  # six runs of a second: the default's three not counted
    assert ("for R in 0.1; do\n  python -m maelib sweep series --profile quick -p long_mask_ratio $R --seeds 0 1 2 "
            "--publish\ndone") in lines


def test_a_ratio_sweep_leaves_out_runs_of_another_setting_and_of_a_given_checkpoint():
    """The same code and only the ratio changed by hand, but a default that moved (its resolved setting differs)
    is another setting; a run that read a pretrained checkpoint did not pretrain at the ratio it names, unless
    it is the reference encoder at the reference's ratio (quick segmentation's default, whose runs count)."""
    recs = ratio_records("tabular", {0.1: 0.03, 0.5: 0.04})
    moved = record("tabular", 5, 0.01, 0.5, parameters={"mask_ratio": 0.9})
    moved["resolved"]["epochs"] = 99  # a profile default changed since: not a parameter the run was given
    given = record("images", 0, 40.0, 30.0, parameters={"mask_ratio": 0.5})
    given["resolved"]["mae_checkpoint"] = "reference"
    by_path = record("images", 1, 40.0, 30.0, parameters={"mask_ratio": 0.75})
    by_path["resolved"]["mae_checkpoint"] = "some/mae.pt"
    frame = summary.ratio_frame(recs + [moved] + ratio_records("tabular", {0.3: 0.02}) + [given, by_path])
    assert sorted(frame["ratio"].unique()) == [0.1, 0.3, 0.5] and set(frame["table"]) == {"Table 5"}
    transferred = [record("segmentation", s, 0.3, 0.29) for s in range(3)]
    for r in transferred:
        r["resolved"].update(mask_ratio=0.75, mae_checkpoint="reference")
    frame = summary.ratio_frame(transferred)
    assert frame["table"].tolist() == ["Table 3"] * 3 and set(frame["ratio"]) == {0.75}


def test_a_transferred_reference_encoder_refuses_another_mask_ratio():
    """Quick segmentation transfers the reference MAE, pretrained at one ratio: a run naming another ratio is
    refused before it runs (it would be recorded, and pooled in a sweep, at a ratio its encoder never saw)."""
    from maelib import reference

    assert profiles.REFERENCE_MASK_RATIO == reference.SCHEDULE["mask_ratio"]
    with pytest.raises(ValueError, match=r"mask_ratio must be 0.75 with mae_checkpoint 'reference', got 0.5"):
        profiles.resolve("segmentation", "quick", mask_ratio=0.5)
    assert profiles.resolve("segmentation", "quick", mask_ratio=0.75).mae_checkpoint == "reference"
    assert profiles.resolve("segmentation", "smoke", mask_ratio=0.5).mask_ratio == 0.5  # it pretrains here


def test_the_summary_counts_a_volume_in_unetrs_own_patches():
    from maelib import volumes

    assert summary.VOLUME_PATCH == volumes.PATCH
    depth = summary.CLAIMS[[c.chapter for c in summary.CLAIMS].index("volumes")].model[1]
    net = volumes.UNETR(1, 2, (32, 32, 32), feature_size=8, hidden_size=48, mlp_dim=96, num_heads=4)
    assert len(net.vit.blocks) == depth  # the depth the scale table states


def test_an_arm_is_finished_by_its_mean_gain_over_the_seeds_not_its_noisiest_seed():
    """One seed's last-fifth gain is the difference of two noisy evaluations: a single seed that happens to end
    high does not make an arm whose other seeds ended flat unfinished, and seeds that all still rise do."""
    def rows(ends):
        recs = [record("images", s, 40.0 + s % 2, 30.0 + 0.1 * s, mae_vs_flat=[0.5],
                       mae_curve=[[10, 20, 30, 39, e]], baseline_curve=[[10, 20, 25, 29.9, 30]])
                for s, e in enumerate(ends)]
        return summary.claim_rows(recs, profiles=("quick",)).iloc[0]
    row = rows([41, 39, 39, 39, 39])  # one seed gains 2 points, the others none: 0.4 on average, below 0.5
    assert row["convergence"]["mae"] == pytest.approx(0.4) and "still improving" not in row["reason"]
    row = rows([40, 40, 40, 40, 40])
    assert row["convergence"]["mae"] == pytest.approx(1) and "still improving" in row["reason"]


def test_an_unfinished_budget_matched_arm_marks_only_the_compute_comparison():
    """2026-12-06, segmentation at 80 epochs: the MAE and scratch arms ended flat, the budget-matched arm
    (159 epochs) still gained. That leaves the paper's comparison meaningful and marks the comparison at the
    MAE arm's compute, in its word, its table and the summary's sentence; an unfinished MAE arm marks both."""
    version = provenance.version("images")
    flat, rising = [[10, 20, 30, 40, 40]], [[10, 20, 30, 40, 45]]

    def recs(mae_curve, matched_curve):
        return [record("images", s, 45.0 + 0.3 * s, 40.0, code=version, baseline_matched=[48.0 + 0.2 * s],
                       mae_vs_flat=[0.5], mae_curve=mae_curve, baseline_curve=flat, matched_curve=matched_curve)
                for s in range(5)]

    row = summary.claim_rows(recs(flat, rising), profiles=("quick",)).iloc[0]
    assert "still improving" not in row["reason"]
    assert "still improving at the last epoch (budget-matched scratch" in row["matched_notes"]
    assert claim_tables.compute_word(row) == f"{row['matched_verdict'][0]}; not meaningful at this scale"
    glance = claim_tables.glance_table(recs(flat, rising)).iloc[0]
    assert glance["at the MAE arm's compute"].endswith("not meaningful at this scale")
    assert "not meaningful" not in glance["the paper's comparison"]
    assert "(not meaningful at this scale) in Table 1" in claim_tables.findings(recs(flat, rising))
    assert claim_tables.compute_word(summary.claim_rows(recs(flat, flat), profiles=("quick",)).iloc[0]) == "MAE worse"
    both = summary.claim_rows(recs(rising, flat), profiles=("quick",)).iloc[0]
    assert "still improving" in both["reason"] and "still improving" in both["matched_notes"]


def test_the_claims_table_marks_a_verdict_not_meaningful_at_this_scale_instead_of_saying_it():
    """Table 7.4 took 1040 px of the page's 936 with "; not meaningful at this scale" in two columns: the
    claims table marks such a verdict (its words are under the table); the glance table keeps them."""
    recs = [record("volumes", s, m, b, code=provenance.version("volumes"))
            for s, (m, b) in enumerate(zip([0.30, 0.31, 0.32, 0.33, 0.31], [0.20, 0.21, 0.20, 0.22, 0.21]))]
    for r in recs:
        r["resolved"]["roi"] = [32, 48, 32]  # 12 tokens: the crop of the quick profile before 2026-12-07
    cell = claim_tables.claims_table(recs).loc["Table 4", "verdict"]
    assert cell.endswith(claim_tables.SCALE_MARK) and claim_tables.NOT_MEANINGFUL not in cell
    row = claim_tables.judged_rows(recs)["Table 4"]
    assert claim_tables.short_verdict(row).endswith(claim_tables.NOT_MEANINGFUL)  # the glance table's words
