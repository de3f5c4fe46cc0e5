"""The two registries: a run made here is recorded in the local one, which git ignores, and readers pool
it with the committed one; publishing is an explicit step that moves a checked record across."""

import json
import subprocess

import pytest

from conftest import ROOT
from maelib import provenance


def _record(chapter="tabular", finished="2026-12-04T10:00:00+00:00") -> dict:
    return {"chapter": chapter, "notebook": "05_tabular.ipynb", "parameters": {}, "resolved": {"profile": "quick"},
            "profile": "quick", "seed": 0, "device": "cpu", "metrics": {}, "wall_s": 1.0, "finished": finished,
            "git_commit": None, "stamp": "x"}


@pytest.fixture
def two_registries(tmp_path, monkeypatch):
    published, local = tmp_path / "runs", tmp_path / "local"
    published.mkdir()
    local.mkdir()
    monkeypatch.delenv("MAELIB_RECORDS", raising=False)
    monkeypatch.setattr(provenance, "PUBLISHED", published)
    monkeypatch.setattr(provenance, "LOCAL", local)
    monkeypatch.setattr(provenance, "RECORDS", local)
    return published, local


def test_a_run_here_writes_to_a_registry_git_ignores():
    """Without $MAELIB_RECORDS a run's record goes to results/local, which git ignores: building the book
    leaves the checkout clean."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    default = provenance.LOCAL / "images-20261204T000000-abcdef12.json"
    assert subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=ROOT).returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", str(provenance.PUBLISHED / default.name)],
                          cwd=ROOT).returncode == 1


def test_readers_pool_the_committed_registry_and_the_local_one(two_registries):
    published, local = two_registries
    (published / "tabular-a.json").write_text(json.dumps(_record(finished="2026-12-04T10:00:00+00:00")))
    (local / "tabular-b.json").write_text(json.dumps(_record(finished="2026-12-04T11:00:00+00:00")))
    assert [r["finished"][11:13] for r in provenance.load_records("tabular")] == ["10", "11"]
    assert [r["finished"][11:13] for r in provenance.load_records("tabular", root=published)] == ["10"]


def test_publish_moves_a_checked_local_record_and_refuses_a_bad_one(two_registries):
    published, local = two_registries
    (local / "tabular-b.json").write_text(json.dumps(_record()))
    bad = _record()
    del bad["stamp"]
    (local / "tabular-c.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="cannot publish .*tabular-c.json.*stamp"):
        provenance.publish()
    assert not list(published.iterdir())  # nothing moved while one of them was bad
    assert provenance.publish(["tabular-b.json"]) == [published / "tabular-b.json"]
    assert not (local / "tabular-b.json").exists()
    with pytest.raises(ValueError, match="not a record in"):
        provenance.publish(["tabular-b.json"])


def test_the_arm_protocol_fixes_reuses_or_chooses_each_rate(two_registries):
    """tuning.arm_rates: a rate a parameter fixes is kept; else the seed-0 run's recorded choice of the same
    setting and code is reused; else the chapter chooses it, and only then."""
    from maelib import profiles, tuning

    p = profiles.resolve("tabular", "smoke")
    asked = []

    def choose(name):
        asked.append(name)
        return 0.01, {0.01: 0.5, 0.02: 0.7}

    first = tuning.arm_rates("tabular", p, None, {"a": 0.003, "b": None}, choose)
    assert (first.lr, asked, first.source) == ({"a": 0.003, "b": 0.01}, ["b"], "this run")
    table = first.table(score="held-out MSE")
    assert list(table.loc["b", "chosen"]) == ["yes", ""] and table.loc["a", "learning rate"] == 0.003

    published, _ = two_registries
    record = {**_record(), "resolved": vars(p), "seed": tuning.TUNING_SEED, "code": provenance.version("tabular"),
              "metrics": {"lr": {"b": 0.02}, "lr_grid": {"b": {"0.01": 0.5, "0.02": 0.4}}}}
    (published / "tabular-x.json").write_text(json.dumps(record))
    asked.clear()
    again = tuning.arm_rates("tabular", p, None, {"a": None, "b": None}, choose)
    assert again.lr == {"a": 0.01, "b": 0.02} and asked == ["a"]  # b reused, a (not recorded) chosen
    assert again.grid["b"] == {0.01: 0.5, 0.02: 0.4} and "seed-0 run" in again.source
