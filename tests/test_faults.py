"""Faults a user meets: parameters that must reach the computation, damaged files, concurrent runs,
bad data, no network, an interrupted run. Each fault gets a clear message and leaves nothing behind
that blocks the next run."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import torch

from conftest import ROOT, data_folder
from maelib import files, profiles, provenance, runs
from maelib.data import DataCorruptError, DataMissingError, ett, housing, registry, seg2d, tinyimagenet

PARAMETERS = re.compile(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%)', re.M | re.S)


def declared(chapter: str) -> list[str]:
    cell = PARAMETERS.search(provenance.notebook_of(chapter).read_text()).group(1)
    return re.findall(r"^(\w+) = ", cell, re.M)


def run_until_resolve(chapter: str, injected: dict) -> None:
    """Run the chapter's code cells in order, with ``injected`` assigned right after its parameters cell
    (as papermill injects them), until something stops it."""
    import jupytext

    namespace = {"__name__": "__main__"}
    for cell in jupytext.read(provenance.notebook_of(chapter)).cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, str(provenance.notebook_of(chapter)), "exec"), namespace)
        if "parameters" in cell.metadata.get("tags", []):
            namespace.update(injected)


@pytest.mark.parametrize("chapter", sorted(profiles.SPECS))
def test_every_declared_parameter_reaches_resolve(chapter, monkeypatch):
    """The parameters cell declares exactly the chapter's parameters, and each value injected for them
    (as papermill does) is what ``profiles.resolve`` receives."""
    names = declared(chapter)
    assert sorted(names) == sorted(profiles.SPECS[chapter]), "parameters cell and profiles.SPECS differ"
    seen = {}

    class Reached(Exception):
        pass

    def spy(ch, profile="auto", **kw):
        seen.update(kw, profile=profile)
        raise Reached

    monkeypatch.setattr(profiles, "resolve", spy)
    injected = {name: f"<{name}>" for name in names}
    with pytest.raises(Reached):
        run_until_resolve(chapter, injected)
    assert seen == injected


def tabular_run(tmp_path, **params):
    data_folder("california_housing")
    out = runs.run_chapter("tabular", {"profile": "smoke", **params}, out_dir=tmp_path, records_dir=None,
                           progress=False)
    return json.loads(out.with_suffix(".run.json").read_text())


@pytest.mark.slow
def test_a_changed_parameter_changes_what_the_chapter_computes(tmp_path, isolated_cache):
    base = tabular_run(tmp_path / "a")
    other = tabular_run(tmp_path / "b", lr=1e-4)
    assert base["resolved"]["lr"] == profiles.PROFILES["tabular"]["smoke"]["lr"] and other["resolved"]["lr"] == 1e-4
    key = "MAE (re-masked observed cells)"
    assert base["metrics"]["mse"][key] != other["metrics"]["mse"][key]


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "maelib", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, **kw)


@pytest.mark.slow
def test_a_diverging_run_stops_with_one_line_and_records_nothing(tmp_path):
    data_folder("california_housing")
    env = {"MAELIB_RECORDS": str(tmp_path / "records"), "MAELIB_CACHE": str(tmp_path / "cache")}
    done = cli("run", "tabular", "--profile", "smoke", "--no-book", "--out-dir", str(tmp_path / "out"), "-p", "lr",
               "1e12", env=env, timeout=300)  # 1e3 no longer diverges on this machine's CPU (the loss stays finite)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "loss became nan" in errors[0] and "lr=1000000000000.0" in errors[0]
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "records").glob("*.json")) and not list((tmp_path / "out").glob("*"))


def test_a_truncated_checkpoint_is_set_aside_and_training_starts_over(tmp_path):
    from maelib.data import TensorLoader
    from maelib.train import TrainConfig, fit

    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"PK\x03\x04 cut short")
    x = torch.randn(32, 4)
    model = torch.nn.Linear(4, 1)
    with pytest.warns(UserWarning, match=re.escape(str(ck)) + r" is unreadable .* set aside"):
        h = fit(model, lambda m, b: m(b[0]).pow(2).mean(), TensorLoader((x,), 8),
                TrainConfig(epochs=2, checkpoint=str(ck)), progress=False)
    assert list(h["epoch"]) == [1, 2]
    assert (tmp_path / "ck.pt.unreadable").read_bytes() == b"PK\x03\x04 cut short"
    assert torch.load(ck, weights_only=True)["epoch"] == 1  # a good checkpoint replaced it


def test_a_write_that_dies_leaves_the_old_file(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from maelib import images
    from maelib.mae import MaskedAutoencoder
    from maelib.tokens import Patches2d

    mae = MaskedAutoencoder(Patches2d(16, 8), 8, 1, 2, decoder_dim=8, decoder_depth=1)
    path = images.save_mae(mae, SimpleNamespace(mask_ratio=0.75, profile="smoke"), tmp_path / "mae_final.pt")
    before = path.read_bytes()

    def dies(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        images.save_mae(mae, SimpleNamespace(mask_ratio=0.5, profile="smoke"), path)
    assert path.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["mae_final.pt"]


def test_two_writers_of_one_file_do_not_collide(tmp_path):
    errors = []

    def write(i):
        try:
            for _ in range(50):
                files.write_text_atomic(tmp_path / "same.json", str(i) * 1000)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set((tmp_path / "same.json").read_text())) == 1
    assert [f.name for f in tmp_path.iterdir()] == ["same.json"]


def test_records_of_the_same_second_keep_both(tmp_path):
    a = files.create_exclusive(tmp_path / "tabular-1-abc.json", "one")
    b = files.create_exclusive(tmp_path / "tabular-1-abc.json", "two")
    assert a != b and a.read_text() == "one" and b.read_text() == "two"


HOLDER = """
import sys, time
from maelib import files
files.claim_folder(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_second_identical_run_waits_for_the_first(tmp_path):
    folder = tmp_path / "images-quick-abc"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "3"], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    (folder / ".pretrain.pt.999999-dead.tmp").write_text("left by a killed run")
    said = []
    began = time.time()
    files.claim_folder(folder, say=said.append)
    waited = time.time() - began
    holder.wait()
    files.release_folder(folder)
    assert said and "waiting" in said[0] and waited > 1.0
    assert not list(folder.glob("*.tmp"))  # stale temporary files are gone once the folder is ours


def test_stale_temporary_files_of_dead_writers_are_cleaned(tmp_path):
    dead = tmp_path / ".x.json.999999-abcd.tmp"
    mine = files.temporary_name(tmp_path / "y.json")
    dead.write_text("")
    mine.write_text("")
    assert files.clean_stale(tmp_path) == [dead] and mine.exists()


@pytest.mark.slow
def test_a_damaged_earlier_record_is_named_and_passed_over(tmp_path):
    (tmp_path / "07_summary.run.json").write_text('{"chapter": "summary", "stamp":')
    reg = tmp_path / "registry"
    reg.mkdir()
    (reg / "broken.json").write_text("{")
    with pytest.warns(UserWarning, match=r"07_summary.run.json is damaged"):
        out = runs.run_chapter("summary", {"profile": "smoke", "records_dir": str(reg)}, out_dir=tmp_path,
                               records_dir=None, progress=False)
    assert json.loads(out.with_suffix(".run.json").read_text())["chapter"] == "summary"
    with pytest.warns(UserWarning, match=r"broken.json is damaged"):
        assert provenance.load_records(root=reg) == []


# ---- data


def ett_copy(tmp_path, edit) -> registry.Path:
    data_folder("ETT")
    src = (registry.Path(os.environ["MAELIB_DATA"]) / "ETT" / "ETTh1.csv").read_text().splitlines(keepends=True)
    folder = tmp_path / "ETT"
    folder.mkdir(parents=True)
    (folder / "ETTh1.csv").write_text("".join(edit(src)))
    return tmp_path


def test_etth1_cut_mid_line_names_file_column_and_line(tmp_path):
    root = ett_copy(tmp_path, lambda lines: lines[:-1] + [lines[-1][:25]])
    with pytest.raises(DataCorruptError, match=r"ETTh1.csv, column \w+, line 17421: nan is not a finite number"):
        ett.load(24, 1, root)


def test_a_non_numeric_value_names_file_column_and_line(tmp_path):
    def edit(lines):
        lines[100] = lines[100].replace(",", ",abc,", 1).replace(",abc,", ",", 1)
        lines[100] = lines[100].rsplit(",", 1)[0] + ",warm\n"
        return lines

    root = ett_copy(tmp_path, edit)
    with pytest.raises(DataCorruptError, match=r"ETTh1.csv, column OT, line 101: 'warm' is not a finite number"):
        ett.load(24, 1, root)


def test_a_shortened_copy_is_marked_unverified(tmp_path):
    root = ett_copy(tmp_path, lambda lines: lines[:-4000])
    data = ett.load(24, 1, root)
    assert data["source"]["verified"] is False and sum(data["sizes"]) == 17_420 - 4000
    from maelib import viz

    assert "Not the canonical data file" in viz.provenance_note(data["source"])
    root = ett_copy(tmp_path / "gap", lambda lines: lines[:5000] + lines[5100:])
    with pytest.raises(DataCorruptError, match=r"line 5001: .* follows .*not 0 days 01:00:00 later"):
        ett.load(24, 1, root)


def test_housing_without_a_column_names_file_and_column(tmp_path):
    data_folder("california_housing")
    frame = pd.read_csv(registry.Path(os.environ["MAELIB_DATA"]) / "california_housing" / "housing.csv")
    (tmp_path / "california_housing").mkdir()
    frame.drop(columns=["total_bedrooms", "ocean_proximity"]).to_csv(tmp_path / "california_housing" / "housing.csv")
    with pytest.raises(DataCorruptError, match=r"housing.csv lacks the column\(s\) \['total_bedrooms', 'ocean_proximity'\]"):
        housing.load(data_dir=tmp_path)


def test_a_truncated_tinyimagenet_archive_is_named(tmp_path, isolated_cache):
    src = data_folder("tinyimagenet")
    folder = tmp_path / "tinyimagenet"
    folder.mkdir()
    for name in ("subset20_wnids.txt", "words200.txt"):
        (folder / name).write_bytes((src / name).read_bytes())
    (folder / "tin_subset20.tar.gz").write_bytes((src / "tin_subset20.tar.gz").read_bytes()[:3_000_000])
    with pytest.raises(DataCorruptError, match=r"tin_subset20.tar.gz is damaged .*copy tin_subset20.tar.gz"):
        tinyimagenet.load(20, tmp_path)


@pytest.mark.parametrize("content, why", [(b"", "it is empty"), ("small", r"it is 32 x 32 pixels, not the 64 x 64")])
def test_a_bad_tinyimagenet_image_names_its_member(tmp_path, content, why):
    """A 0-byte JPEG said "cannot identify image file <_io.BytesIO object at 0x...>", a wrongly sized one
    gave numpy's shape error; both now name the image and its archive."""
    import io

    from PIL import Image

    if content == "small":
        buf = io.BytesIO()
        Image.new("RGB", (32, 32)).save(buf, format="JPEG")
        content = buf.getvalue()
    with pytest.raises(DataCorruptError, match=rf"^subset/train/n01/images/n01_7.JPEG in .*tin_subset20.tar.gz: {why}"):
        tinyimagenet._decode(content, "subset/train/n01/images/n01_7.JPEG", tmp_path / "tin_subset20.tar.gz")


def test_the_image_cache_is_keyed_on_its_source(tmp_path, isolated_cache):
    src = data_folder("tinyimagenet")
    folder = tmp_path / "tinyimagenet"
    folder.mkdir()
    for name in ("subset20_wnids.txt", "words200.txt", "tin_subset20.tar.gz"):
        (folder / name).write_bytes((src / name).read_bytes())
    before = tinyimagenet.source_key(folder, canonical=False)
    os.utime(folder / "tin_subset20.tar.gz", (1, 1))  # a restaged archive
    assert tinyimagenet.source_key(folder, canonical=False) != before


def test_ade20k_with_only_the_sample_says_what_is_missing(tmp_path, monkeypatch):
    data_folder("ade20k_sample")
    monkeypatch.setenv("MAELIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataMissingError, match=r"ADE20K's training images are missing .*holds only the 3-pair"):
        seg2d.load_ade20k(64)


def test_fetch_without_network_is_one_clear_line(tmp_path, monkeypatch):
    import pooch
    import requests

    def offline(*a, **k):
        raise requests.exceptions.ConnectionError("Max retries exceeded with url (NameResolutionError)")

    monkeypatch.setattr(pooch, "retrieve", offline)
    monkeypatch.setenv("MAELIB_CACHE", str(tmp_path))
    with pytest.raises(DataMissingError) as e:
        registry.fetch("ett")
    text = str(e.value)
    assert "could not download ett from raw.githubusercontent.com (ConnectionError)" in text
    assert str(tmp_path / "ETT" / "ETTh1.csv") in text and "\n" not in text


@pytest.mark.slow
def test_cli_turns_missing_data_into_one_error_line(tmp_path):
    env = {"MAELIB_DATA": str(tmp_path / "none"), "MAELIB_CACHE": str(tmp_path / "cache"),
           "MAELIB_RECORDS": str(tmp_path / "records")}
    done = cli("run", "series", "--profile", "smoke", "--no-book", "--out-dir", str(tmp_path / "out"), env=env,
               timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: chapter 'series' stopped with DataMissingError: dataset 'ett' not found")


@pytest.mark.slow
def test_ctrl_c_prints_interrupted_and_exits_130(tmp_path):
    data_folder("ETT")
    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "records")}
    proc = subprocess.Popen([sys.executable, "-m", "maelib", "run", "series", "--profile", "quick", "--no-book",
                             "--out-dir", str(tmp_path / "out")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(15)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert not (tmp_path / "records").exists() or not list((tmp_path / "records").glob("*.json"))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*"))


HANGING_CLEANUP = """
import subprocess, sys, time
import maelib.__main__ as cli

def hang(args, ap):
    child = subprocess.Popen(["sleep", "300"])  # stands for the chapter's kernel
    print(child.pid, flush=True)
    try:
        time.sleep(300)
    finally:
        time.sleep(300)  # a clean-up that never ends (a kernel that never answers its shutdown request)

cli.GRACE_S = 2.0
cli.COMMANDS["run"] = hang
sys.exit(cli.program(["run", "series"]))
"""


def test_ctrl_c_ends_the_run_even_when_its_clean_up_hangs():
    """After a Ctrl-C the run ends within the grace time, whatever its clean-up does, with `interrupted`,
    exit 130 and no child process left behind."""
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen([sys.executable, "-c", HANGING_CLEANUP], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


# ---- values accepted and then not used as given (#37)


@pytest.mark.parametrize("name, value", [("lr", float("inf")), ("lr_grid", [1e999]), ("lr_grid", [1e-3, float("inf")])])
def test_an_infinite_number_is_refused_before_anything_runs(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be in \(0, inf\), got inf"):
        profiles.resolve("tabular", "smoke", **{name: value})


def test_more_rows_than_the_data_holds_are_refused():
    with pytest.raises(ValueError, match=r"rows must be in \[100, 20433\], got 100000000"):
        profiles.resolve("tabular", "smoke", rows=100_000_000)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0", "0"], "error: --seeds must not repeat a seed, got 0 0"),
    (["--ratios"], "error: --ratios needs at least one mask ratio"),
])
def test_a_sweep_refuses_repeated_seeds_and_an_empty_ratio_list(argv, message, capsys):
    from maelib.__main__ import main

    assert main(["sweep", "tabular", "--profile", "smoke", *argv]) == 2
    assert capsys.readouterr().err.startswith(message)


# ---- unpacked data follows the archive it came from (#37)


def _hippocampus_archive(folder, cases):
    import tarfile

    from maelib.data import volumes as vdata

    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / "staging"
    for sub in ("images", "labels"):
        (staged / sub).mkdir(parents=True, exist_ok=True)
        for case in cases:
            (staged / sub / f"hippocampus_{case:03d}.nii.gz").write_bytes(f"{sub} {case}".encode())
    with tarfile.open(folder / vdata.ARCHIVE, "w:xz") as tar:
        for sub in ("images", "labels"):
            tar.add(staged / sub, arcname=sub)
    return folder


def test_a_replaced_hippocampus_archive_is_unpacked_anew(tmp_path, isolated_cache):
    """The cache was keyed by nothing: a replaced archive's run trained on the old files while its record
    named the new archive's checksum."""
    from maelib.data import volumes as vdata

    data = _hippocampus_archive(tmp_path / "hippocampus", [1, 2])
    first = vdata.hippocampus_files(tmp_path)
    assert [p["image"].rsplit("_", 1)[1] for p in first] == ["001.nii.gz", "002.nii.gz"]
    _hippocampus_archive(data, [3])  # another archive in the same place (cases 1 and 2 staged again beside it)
    again = vdata.hippocampus_files(tmp_path)
    assert {p["image"].rsplit("_", 1)[1] for p in again} == {"001.nii.gz", "002.nii.gz", "003.nii.gz"}
    assert again[0]["image"] != first[0]["image"]  # another folder, keyed by the new archive's checksum


@pytest.mark.parametrize("label_shape, values, why", [((1, 4, 4, 5), [0], r"its shape \(4, 4, 5\) is not its image's"),
                                                      ((1, 4, 4, 4), [0, 3], r"label value\(s\) \[3\.0\]")])
def test_a_label_volume_that_does_not_fit_its_image_is_named(label_shape, values, why):
    import torch

    from maelib import volumes
    from maelib.data.registry import DataCorruptError

    label = torch.zeros(label_shape)
    label.view(-1)[: len(values)] = torch.tensor(values, dtype=torch.float)
    pair = {"image": "imagesTr/hippocampus_007.nii.gz", "label": "labelsTr/hippocampus_007.nii.gz"}
    with pytest.raises(DataCorruptError, match=rf"labelsTr/hippocampus_007.nii.gz: .*{why}"):
        volumes.check_case("hippocampus", pair, torch.zeros(1, 4, 4, 4), label)
    volumes.check_case("hippocampus", pair, torch.zeros(1, 4, 4, 4), torch.full((1, 4, 4, 4), 2.0))  # fits


# ---- a full disk at record time (#37)


def _full_disk(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device", "/registry/tabular-x.json")


def test_a_full_disk_leaves_no_empty_temporary_record(tmp_path, monkeypatch):
    from maelib import files

    real = files.Path.write_text

    def half_write(self, text, *a, **kw):
        real(self, "", *a, **kw)  # the file is created, then the disk fills
        _full_disk()

    monkeypatch.setattr(files.Path, "write_text", half_write)
    with pytest.raises(OSError, match="No space left"):
        files.create_exclusive(tmp_path / "tabular-x.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_run_whose_record_cannot_be_written_keeps_its_notebook_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "create_exclusive", _full_disk)
    with pytest.raises(runs.ChapterFailed) as e:
        runs.run_chapter("tabular", {"profile": "smoke"}, out_dir=tmp_path / "out", records_dir=tmp_path / "reg",
                         progress=False)
    kept = next((tmp_path / "out").glob("05_tabular.unrecorded-*.ipynb"))
    assert f"the executed notebook was kept at {kept}" in str(e.value) and "No space left on device" in str(e.value)
    assert not list(tmp_path.rglob("*.json")) and not list((tmp_path / "out").glob(".running-*"))


@pytest.mark.parametrize("ratio, said", [(0.9999, "hides 63 of the 64 tokens"), (1e-9, "hides none of the 64")])
def test_a_mask_ratio_the_tokens_cannot_realise_is_refused_before_compute(ratio, said):
    """0.9999 on 64 tokens would hide 63 (0.984) and be recorded as 0.9999; 1e-9 would hide one. Both are refused,
    naming mask_ratio and the ratios this token count realises."""
    from maelib import images

    p = profiles.resolve("images", "quick", mask_ratio=ratio)
    with pytest.raises(ValueError, match="mask_ratio") as err:
        images.preflight(p)
    assert said in str(err.value)


def test_the_refusal_names_the_parameter_the_ratio_was_given_as():
    """The long-horizon pretraining's ratio, given as long_mask_ratio, was refused as 'mask_ratio 0.99'."""
    from maelib import forecast

    with pytest.raises(ValueError, match=r"^long_mask_ratio 0.99 hides 5 of the 6 tokens") as err:
        forecast.preflight(profiles.resolve("series", "smoke", long_mask_ratio=0.99))
    assert "token(s)" not in str(err.value)
    with pytest.raises(ValueError, match=r"^mask_ratios 0.001 hides none of the"):
        forecast.preflight(profiles.resolve("series", "smoke", mask_ratios=[0.001]))


def test_a_mask_ratio_hides_the_nearest_whole_number_of_tokens():
    """PatchTST's 0.4 of 21 pretraining patches hides 8 (0.381), the nearest, not 9 (0.4286), and passes the
    series chapter's check at every profile."""
    from maelib import forecast
    from maelib.masking import visible_count

    assert 21 - visible_count(21, 0.4) == 8
    for profile in ("smoke", "quick", "full"):
        forecast.preflight(profiles.resolve("series", profile))


def test_checkpoints_made_on_other_data_are_set_aside_not_resumed(tmp_path):
    """A checkpoint folder remembers the data it was trained on: the same data resumes it, other data moves
    its checkpoints aside and starts anew."""
    p = profiles.resolve("images", "smoke", checkpoint_dir=str(tmp_path))
    one, other = {"dataset": "tinyimagenet", "sha256": "a" * 64}, {"dataset": "tinyimagenet", "sha256": "b" * 64}
    folder = provenance.checkpoint_dir("images", p, one, say=lambda m: None)
    (folder / "mae.pt").write_text("trained on one")
    assert provenance.checkpoint_dir("images", p, one).joinpath("mae.pt").is_file()  # same data: resumed
    said = []
    assert provenance.checkpoint_dir("images", p, other, say=said.append) == folder
    assert not (folder / "mae.pt").exists()
    assert [f.read_text() for f in folder.glob("other-data-*/mae.pt")] == ["trained on one"]
    assert "tinyimagenet:aaaa" in said[0] and "tinyimagenet:bbbb" in said[0]


def test_a_list_the_command_line_cannot_read_is_named_as_a_list():
    """``-p lr_grid "[nan]"`` reaches the parameters as text: it was refused as "must be a number"; it is a
    list of numbers that is asked for."""
    with pytest.raises(ValueError, match=r"lr_grid must be a list of finite numbers .*got '\[nan\]'"):
        profiles.resolve("tabular", "smoke", lr_grid="[nan]")
