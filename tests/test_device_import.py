"""The committed-execution path: which execution the book shows, its provenance line and stale box, and
importing a GPU session's outputs (refused whole when anything is incomplete)."""

import json
import tarfile

import nbformat
import pytest

from maelib import book, device, provenance, runs


def record(chapter="series", profile="full", finished="2026-11-28T10:00:00+00:00", parameters=None, stamp="old",
           **extra):
    return {"chapter": chapter, "notebook": "02_series.py", "parameters": {"profile": profile, **(parameters or {})},
            "resolved": {"seed": 0, "seeds": 3}, "profile": profile, "seed": 0, "device": "cuda (NVIDIA H200)",
            "metrics": {}, "wall_s": 125.0, "finished": finished, "git_commit": "0123456789abcdef", "stamp": stamp,
            **extra}


def put(folder, stem="02_series", **kw):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")]), folder / f"{stem}.ipynb")
    (folder / f"{stem}.run.json").write_text(json.dumps(record(**kw)))


def test_the_book_prefers_the_committed_full_execution(tmp_path):
    local, committed = tmp_path / "executed", tmp_path / "committed"
    put(local, profile="quick", finished="2026-11-29T10:00:00+00:00")
    assert book.choose("series", local, committed).origin == "local"  # nothing committed yet
    put(committed / "full")
    assert book.choose("series", local, committed).origin == "committed"
    put(local, profile="quick", parameters={"mask_ratio": 0.5})  # a rerun of the user's own
    assert book.choose("series", local, committed).origin == "local"
    put(local, profile="full", finished="2026-11-30T10:00:00+00:00")  # a newer full-profile execution
    assert book.choose("series", local, committed).origin == "local"
    put(local, profile="full", finished="2026-11-27T10:00:00+00:00")  # an older one
    assert book.choose("series", local, committed).origin == "committed"


def test_the_provenance_line_says_profile_device_date_commit_time_and_seeds(tmp_path):
    put(tmp_path / "full")
    ex = book.choose("series", tmp_path / "none", tmp_path)
    line = book.provenance_line(ex)
    for part in ("**full** profile", "cuda (NVIDIA H200)", "2026-11-28 10:00 UTC", "`01234567`", "2.1 min",
                 "seeds 0-2", "committed from a GPU run"):
        assert part in line, part
    assert " in **" not in line  # a record made before precision existed names none
    ex.record["resolved"] = {**ex.record["resolved"], "precision": "bf16"}
    assert "cuda (NVIDIA H200)** in **bf16**" in book.provenance_line(ex)
    ex.record.update(device=None, seed=None)  # a chapter that trains nothing (summary): no device, no seed
    line = book.provenance_line(ex)
    assert "**full** profile, 2026-11-28 10:00 UTC, commit `01234567`, 2.1 min (committed" in line


def test_a_changed_chapter_gets_the_stale_box(tmp_path):
    put(tmp_path / "full", stamp="not the current one")
    ex = book.choose("series", tmp_path / "none", tmp_path)
    assert "Made by an earlier version" in book.stale_note("series", ex) and "`01234567`" in book.stale_note("series", ex)
    ex.record["stamp"] = runs.stamp("series", ex.record["parameters"])
    assert book.stale_note("series", ex) == ""
    # today's records
    ex.record.update(notebook_sha=provenance.notebook_hash("series"), code=provenance.code_hash("series"))
    assert book.stale_note("series", ex) == ""
    ex.record["code"] = "an earlier version of the computing code"
    assert "Made by an earlier version" in book.stale_note("series", ex)


def tiny_mae(path):
    from types import SimpleNamespace

    import torch

    from maelib import images
    from maelib.mae import MaskedAutoencoder
    from maelib.tokens import Patches2d

    torch.manual_seed(0)
    mae = MaskedAutoencoder(Patches2d(16, 8), 8, 1, 2, decoder_dim=8, decoder_depth=1)
    return images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="full"), path, torch.float16)


def session(tmp_path, broken=False):
    out = tmp_path / "out"
    put(out / "executed")
    with tarfile.open(out / "records.tar", "w") as tar:
        f = tmp_path / "series-20261128T100000-abcd.json"
        f.write_text("{" if broken else json.dumps(record()))
        tar.add(f, arcname=f.name)
    (out / "models").mkdir(exist_ok=True)
    tiny_mae(out / "models" / "image_mae_full.pt")
    (out / "bench.txt").write_text("device: NVIDIA H200\n")
    return out


def test_import_puts_everything_where_the_book_finds_it(tmp_path):
    root = tmp_path / "repo"
    done = device.import_run(session(tmp_path), root)
    assert (root / "results" / "executed" / "full" / "02_series.ipynb").exists()
    assert (root / "results" / "runs" / "series-20261128T100000-abcd.json").exists()
    assert (root / "results" / "models" / "image_mae_full.pt").read_bytes() == \
        (tmp_path / "out" / "models" / "image_mae_full.pt").read_bytes()
    log = json.loads(next((root / "results" / "device").glob("*/IMPORT.json")).read_text())
    assert log["from"] == str((tmp_path / "out").resolve()) and log["chapters"]["series"]["profile"] == "full"
    again = device.import_run(session(tmp_path), root)  # the same session again: nothing twice
    assert again["records"] == [] and not again["chapters"] and len(again["skipped"]) == 2
    assert done["records"] == ["series-20261128T100000-abcd.json"]


def test_an_older_session_never_replaces_a_newer_execution(tmp_path):
    root = tmp_path / "repo"
    put(root / "results" / "executed" / "full", finished="2026-11-29T10:00:00+00:00")
    done = device.import_run(session(tmp_path), root)  # its execution finished on 2026-11-28
    assert not done["chapters"] and "as new or newer" in done["skipped"][0]
    kept = json.loads((root / "results" / "executed" / "full" / "02_series.run.json").read_text())
    assert kept["finished"].startswith("2026-11-29")


def test_an_incomplete_session_is_refused_whole(tmp_path):
    root = tmp_path / "repo"
    with pytest.raises(device.ImportRefused, match="records.tar: series-.*is not JSON"):
        device.import_run(session(tmp_path, broken=True), root)
    assert not root.exists()
    out = tmp_path / "empty"
    (out / "executed").mkdir(parents=True)
    (out / "executed" / "02_series.run.json").write_text(json.dumps({"chapter": "series"}))
    with pytest.raises(device.ImportRefused, match="not a run record of the schema .it lacks notebook"):
        device.import_run(out, root)


def test_a_record_cannot_send_its_files_outside_the_repository(tmp_path):
    """A record whose profile is a path (here up and out of the repository) is refused like any record
    that does not follow the registry's schema, and nothing is written anywhere."""
    root = tmp_path / "repo"
    for profile in ("../../../../escaped", str(tmp_path / "abs")):
        out = tmp_path / "crafted"
        put(out / "executed", profile=profile)
        with pytest.raises(device.ImportRefused, match="profile is .*not one of smoke, quick, full"):
            device.import_run(out, root)
        assert not root.exists() and not (tmp_path / "escaped").exists() and not (tmp_path / "abs").exists()
    with pytest.raises(device.ImportRefused, match="outside"):
        device._inside(root / "results" / ".." / ".." / "x", root / "results")


def test_refused_tar_members_are_named_with_why(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    good = tmp_path / "ok.json"
    good.write_text(json.dumps(record()))
    with tarfile.open(out / "records.tar", "w") as tar:
        tar.add(good, arcname="../escape.json")
        link = tarfile.TarInfo("link.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(device.ImportRefused) as e:
        device.import_run(out, tmp_path / "repo")
    message = str(e.value)
    assert "no records.tar" not in message
    assert "'../escape.json': a path" in message and "'link.json': not a plain file" in message
    with tarfile.open(out / "records.tar", "a") as tar:
        tar.add(good, arcname="series-20261128T100000-abcd.json")
    done = device.import_run(out, tmp_path / "repo")
    assert done["records"] == ["series-20261128T100000-abcd.json"] and len(done["skipped"]) == 2


@pytest.mark.parametrize("content", [b"not weights", None])  # None: a file of another name
def test_a_model_is_loaded_and_checked_before_it_replaces_anything(tmp_path, content):
    root = tmp_path / "repo"
    committed = root / "results" / "models" / "image_mae_full.pt"
    committed.parent.mkdir(parents=True)
    committed.write_bytes(b"the committed model")
    out = session(tmp_path)
    bad = out / "models" / "image_mae_full.pt"
    if content is not None:
        bad.write_bytes(content)
    else:
        bad.rename(out / "models" / "other.pt")
    with pytest.raises(device.ImportRefused, match="nothing was imported"):
        device.import_run(out, root)
    assert committed.read_bytes() == b"the committed model"
    assert not (root / "results" / "runs").exists()


def test_the_masking_chapter_takes_the_committed_model_at_the_full_profile_only(tmp_path, monkeypatch, isolated_cache):
    monkeypatch.setattr(provenance, "MODELS", tmp_path)
    (tmp_path / "image_mae_full.pt").write_bytes(b"x")
    path, how = provenance.image_mae_checkpoint("full")
    assert path == tmp_path / "image_mae_full.pt" and "committed" in how
    for profile in ("quick", "smoke"):  # the checkpoint of the profile it runs at
        with pytest.raises(provenance.NoCheckpointError):
            provenance.image_mae_checkpoint(profile)


def test_a_current_committed_sweep_execution_is_shown_and_not_run_again(tmp_path):
    """A quick sweep's committed tuning-seed run: shown at the quick profile (never at smoke), current only
    while the chapter's notebook and code are this checkout's, and only for the default parameters; a
    committed full-profile run comes first."""
    local, committed = tmp_path / "executed", tmp_path / "committed"
    now = {"notebook_sha": provenance.notebook_hash("series"), "code": provenance.code_hash("series")}
    put(committed / "quick", profile="quick", device="cpu (x86_64)", **now)
    assert book.choose("series", local, committed, profile="quick").origin == "committed"
    assert book.choose("series", local, committed, profile="smoke") is None
    kept = book.current_committed("series", "quick", committed)
    assert kept and "committed from a CPU run" in book.provenance_line(kept)
    put(committed / "quick", profile="quick", notebook_sha="an older notebook", code=now["code"])
    assert book.current_committed("series", "quick", committed) is None  # stale: the build runs it again
    put(committed / "quick", profile="quick", parameters={"mask_ratio": 0.5}, **now)
    assert book.current_committed("series", "quick", committed) is None  # not the chapter's default setting
    put(committed / "full")
    assert book.choose("series", local, committed, profile="quick").record["profile"] == "full"
    put(local, profile="quick", finished="2026-12-01T10:00:00+00:00")  # a newer quick run does not hide a GPU one
    assert book.choose("series", local, committed, profile="quick").origin == "committed"


def test_committing_an_execution_never_replaces_a_newer_one(tmp_path):
    src, committed = tmp_path / "sweep", tmp_path / "committed"
    put(src, profile="quick", finished="2026-11-28T10:00:00+00:00")
    nb, rec = src / "02_series.ipynb", src / "02_series.run.json"
    assert runs.commit_execution(nb, rec, committed) == committed / "quick" / "02_series.ipynb"
    assert (committed / "quick" / "02_series.run.json").read_text() == rec.read_text()
    put(src, profile="quick", finished="2026-11-27T10:00:00+00:00")
    assert runs.commit_execution(nb, rec, committed) is None
    assert json.loads((committed / "quick" / "02_series.run.json").read_text())["finished"].startswith("2026-11-28")


def test_a_published_sweep_commits_its_tuning_seed_run_of_the_default_setting(tmp_path):
    from maelib import jobs
    from maelib.__main__ import _commit_shown

    committed = tmp_path / "committed"
    done = []
    for seed in (0, 1):
        put(tmp_path / f"series-{seed}", profile="quick", finished=f"2026-11-2{8 + seed}T10:00:00+00:00")
        done.append(jobs.Job("series", {"profile": "quick", "seed": seed}, out_dir=str(tmp_path / f"series-{seed}")))
    _commit_shown("series", done, committed)
    kept = json.loads((committed / "quick" / "02_series.run.json").read_text())
    assert kept["finished"].startswith("2026-11-28")  # seed 0's, not the newer seed 1's


def test_a_prose_only_edit_keeps_the_execution_current_and_shows_the_new_prose(tmp_path):
    """An execution whose notebook differed in its markdown only (the same version): current, shown under
    today's prose with its own outputs and injected parameters; an edited code cell or computing module
    makes it stale, and an execution whose code cells are not the notebook's is refused, not mixed."""
    import jupytext

    ran = jupytext.read(provenance.notebook_of("series"))
    prose = [c for c in ran.cells if c.cell_type == "markdown"]
    prose[-1].source = "An older sentence."
    at = next(i for i, c in enumerate(ran.cells) if "parameters" in c.metadata.get("tags", []))
    ran.cells.insert(at + 1, nbformat.v4.new_code_cell("seed = 3", metadata={"tags": ["injected-parameters"]}))
    for c in ran.cells:
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {len(c.source)}")]
    folder = tmp_path / "quick"
    folder.mkdir()
    nbformat.write(ran, folder / "02_series.ipynb")
    rec = record(profile="quick", notebook_sha="the notebook before a sentence was mended",
                 code=provenance.code_hash("series"), version=provenance.version("series"))
    (folder / "02_series.run.json").write_text(json.dumps(rec))
    assert book.prose_changed("series", rec) and not book.is_stale("series", rec)
    assert book.current_committed("series", "quick", tmp_path) is not None

    shown = book._with_header(folder / "02_series.ipynb", ["provenance"], prose_of="series")
    now = jupytext.read(provenance.notebook_of("series"))
    assert ([c.source for c in shown.cells if c.cell_type == "markdown"][-1]
            == [c.source for c in now.cells if c.cell_type == "markdown"][-1])
    assert "An older sentence." not in json.dumps(shown)
    code = [c for c in shown.cells if c.cell_type == "code"]
    assert all(c.outputs[0]["text"] == f"ran {len(c.source)}" for c in code)  # each cell with its own output
    assert sum("injected-parameters" in c.metadata.get("tags", []) for c in code) == 1
    i = next(i for i, c in enumerate(shown.cells) if "injected-parameters" in c.metadata.get("tags", []))
    assert "parameters" in shown.cells[i - 1].metadata.get("tags", [])

    first = next(c for c in ran.cells if c.cell_type == "code" and "\n" in c.source.strip())
    kept = first.source
    first.source = kept.replace("\n", "\n\n", 1)  # a blank line inside a cell (in a string, it prints)
    nbformat.write(ran, folder / "02_series.ipynb")
    with pytest.raises(ValueError, match="not its notebook's"):
        book._with_header(folder / "02_series.ipynb", [], prose_of="series")
    first.source = "\n" + kept + "\n\n"  # blank lines at a cell's ends: what jupytext may add or drop
    nbformat.write(ran, folder / "02_series.ipynb")
    book._with_header(folder / "02_series.ipynb", [], prose_of="series")
    ran.cells[-2 if ran.cells[-2].cell_type == "code" else -1].source += "\nprint('edited')"
    nbformat.write(ran, folder / "02_series.ipynb")
    with pytest.raises(ValueError, match="not its notebook's"):
        book._with_header(folder / "02_series.ipynb", [], prose_of="series")
    rec["version"] = "an earlier version"
    assert book.is_stale("series", rec) and not book.prose_changed("series", rec)
