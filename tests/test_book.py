"""End to end: papermill runs each chapter at the smoke profile, and the book builds from the results.

The chapters run into a temporary copy of the book's sources, so the developer's own executed chapters
in book/executed are left alone.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT, data_folder
from test_book_assets import repeated_scripts
from maelib import book, device, profiles, provenance, runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def book_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("executed", "figures"))
    return root


@pytest.fixture(scope="session")
def executed(book_copy, tmp_path_factory):
    """Every chapter of _toc.yml executed at the smoke profile into the copy."""
    data_folder("tinyimagenet")
    out = book_copy / "book" / "executed"
    records = book_copy / "records"
    return {ch: runs.run_chapter(ch, {"profile": "smoke"}, force=True, out_dir=out, progress=False,
                                 records_dir=records)
            for ch in runs.toc_chapters()}


def test_every_chapter_of_the_toc_ran(executed, book_copy):
    assert set(executed) == set(provenance.chapters())  # no chapter is left out of the book
    recorded = {json.loads(f.read_text())["chapter"] for f in (book_copy / "records").glob("*.json")}
    assert recorded == set(executed)


@pytest.mark.parametrize("chapter, keys", [
    ("series", ("pers_mse", "best_model", "nomask_mse", "pre_mse", "scr_mse", "long_pre_mse", "long_scr_mse",
                "long_dl_mse", "long_pers_mse", "long_drop_dl")),
    ("segmentation", ("mae_acc", "scr_acc", "mae_miou", "scr_miou")),
    ("volumes", ("mae_dice", "scr_dice", "n_copied")),
    ("tabular", ("ffp_mse", "fff_mse", "mae_mse", "mean_mse", "knn_mse", "iter_mse")),
    ("masking", ("loss_lo", "loss_hi", "n_runs")),
])
def test_chapter_glues_its_numbers(executed, chapter, keys):
    values = runs.glued(nbformat.read(executed[chapter], as_version=4))
    for key in keys:
        assert key in values, key
        value = values[key]
        if key != "best_model":  # a glued NaN comes back as None (or text): neither is a finite number
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (key, value)


def test_a_glued_nan_is_not_taken_for_a_number():
    """The check above can fail: a NaN glued by a chapter does not come back as a finite number."""
    assert runs._parse(repr(float("nan"))) is None and runs._parse("{'x': nan}") == {"x": None}


def test_images_chapter_runs_and_glues_its_metrics(executed):
    nb = nbformat.read(executed["images"], as_version=4)
    values = runs.glued(nb)
    for key in ("acc_ft", "acc_scratch", "acc_probe"):
        assert 0 <= values[key] <= 100
    assert values["profile"] == "smoke"
    record = json.loads(executed["images"].with_suffix(".run.json").read_text())
    assert record["chapter"] == "images" and record["profile"] == "smoke"
    assert set(record["metrics"]) >= {"acc_scratch", "acc_finetune", "acc_probe"}
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


RECORD = "application/papermill.record/text/plain"


@pytest.mark.parametrize("chapter", ["series", "tabular"])
def test_rerunning_an_executed_chapter_reproduces_its_glued_numbers(executed, chapter, tmp_path):
    """nbval re-executes the executed chapter in a fresh kernel with an empty cache (everything trains
    again) and compares the outputs of the cells tagged nbval-check-output: the tables and numbers the
    book glues. A copy with one glued number changed must fail, so the comparison is real."""
    nb = nbformat.read(executed[chapter], as_version=4)
    checked = [c for c in nb.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked)
    nbformat.write(nb, tmp_path / "same.ipynb")
    number = next(o for c in checked for o in c.outputs
                  if re.fullmatch(r"-?\d+\.\d+(e-?\d+)?", o.get("data", {}).get(RECORD, "")))
    number["data"][RECORD] = repr(float(number["data"][RECORD]) + 1.0)
    nbformat.write(nb, tmp_path / "changed.ipynb")
    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache")}
    nbval = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(nbval + ["same.ipynb", "changed.ipynb"], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    failed = re.findall(r"^FAILED (\S+)", result.stdout, re.M)
    assert [f.split("::")[0] for f in failed] == ["changed.ipynb"], result.stdout[-3000:]
    assert re.search(r"1 failed, \d+ passed", result.stdout), result.stdout[-3000:]


def test_unchanged_chapter_is_skipped(executed, capsys):
    out = executed["images"]
    before = out.stat().st_mtime_ns
    runs.run_chapter("images", {"profile": "smoke"}, out_dir=out.parent, progress=False, records_dir=None)
    assert out.stat().st_mtime_ns == before
    assert "skipped" in capsys.readouterr().out


def test_failed_run_records_nothing(tmp_path):
    with pytest.raises(runs.ChapterFailed, match="DataMissingError"):
        runs.run_chapter("images", {"profile": "smoke", "data_dir": str(tmp_path / "empty")}, force=True,
                         out_dir=tmp_path / "out", progress=False, records_dir=tmp_path / "records")
    assert not list((tmp_path / "out").glob("*"))
    assert not (tmp_path / "records").exists() or not list((tmp_path / "records").glob("*"))


def test_book_builds_with_warnings_as_errors_and_loads_nothing_from_the_network(built):
    assert (built / "index.html").exists()
    pages = list(built.rglob("*.html"))
    chapter = next(p for p in pages if p.name == "01_images.html").read_text()
    assert "Table 1" in chapter and ("data:image/png" in chapter or "<img" in chapter)
    for page in pages:
        html = page.read_text()
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html)
        assert not remote, f"{page.name} loads {remote[:2]}"
        assert not repeated_scripts(html), f"{page.name} has a script twice"  # THEBE_JS_URL declared twice


TEXT_WIDTH_PX = 760  # the book's text column is about 720 px wide: a wider figure is shrunk, and its text with it


def test_every_figure_is_drawn_at_the_text_width(built):
    """Item 7: the forest plot (1230 px), the series forecasts (1090 px) and the volume slices (904 px) were
    shrunk to the text column, their labels to about 7 px. A figure is at most the column's width on the
    page; a PNG drawn at twice its pixels (issue #36: sharp on a high-density screen) says its page width
    in its style, and has at least that many pixels."""
    from PIL import Image

    for page in (built / "book").rglob("*.html"):
        for tag, src in re.findall(r'(<img[^>]+src="([^"]+\.png)"[^>]*>)', page.read_text()):
            pixels = Image.open((page.parent / src).resolve()).size[0]
            styled = re.search(r"width:\s*(\d+)px", tag)
            width = int(styled.group(1)) if styled else pixels
            assert width <= TEXT_WIDTH_PX, f"{page.name}: {src} is {width} px wide on the page"
            assert pixels >= width, f"{page.name}: {src} is stretched ({pixels} px drawn {width} px wide)"


@pytest.fixture(scope="session")
def rehearsed(book_copy, executed, tmp_path_factory):
    """The GPU path on this CPU at the smoke profile: the session script stages a call's data (without
    wheels: everything is installed here), executes the series chapter as a notebook with papermill as
    the device would, and its outputs are imported into the book's copy."""
    data_folder("ETT")
    tmp = tmp_path_factory.mktemp("device")
    env = {**os.environ, "MAELIB_RECORDS": str(tmp / "records"), "MAELIB_CACHE": str(tmp / "cache"),
           "PYTHONPATH": str(ROOT)}
    session = [sys.executable, "benchmarks/gpu_session.py"]
    subprocess.run(session + ["prepare", "--call", "b", "--no-wheels", "--stage", str(tmp / "stage")], env=env,
                   cwd=ROOT, check=True, capture_output=True)
    env["MAELIB_DATA"] = str(tmp / "stage")
    done = subprocess.run(session + ["run", "--chapters", "series", "--profile", "smoke", "--jobs", "1",
                                     "--budget-s", "300", "--out", str(tmp / "out")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0 and "series: ok" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    return device.import_run(tmp / "out", root=book_copy)


@pytest.fixture(scope="session")
def built(book_copy, executed, rehearsed):
    book.build(book_copy, profile="smoke")  # the committed executions the book prefers: the rehearsal's
    return book_copy / "_build" / "html"


def test_the_imported_execution_is_the_one_the_book_shows(built, book_copy, rehearsed):
    assert set(rehearsed["chapters"]) == {"series"} and rehearsed["records"]
    assert (book_copy / "results" / "executed" / "smoke" / "02_series.ipynb").exists()
    assert all((book_copy / "results" / "runs" / name).exists() for name in rehearsed["records"])
    page = re.sub(r"<[^>]+>", "", (built / "book" / "chapters" / "02_series.html").read_text())
    # the rehearsal's "device run" is a CPU one, and the line says so rather than claiming a GPU
    assert "Executed at the smoke profile on cpu" in page and "committed from a CPU run" in page
    other = re.sub(r"<[^>]+>", "", (built / "book" / "chapters" / "05_tabular.html").read_text())
    assert "Executed at the smoke profile" in other and "run for this build" in other
    imported = json.loads((book_copy / "results" / "executed" / "smoke" / "02_series.run.json").read_text())
    assert imported["finished"][:10] in page


def test_the_masking_slider_works_in_a_real_browser(built):
    from maelib import browser

    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium); the static control is untested here")
    report = browser.check_static_control(built / "book" / "chapters" / "06_masking.html")
    assert report["found"] and report["changed"]
    assert report["frames"] == len(profiles.PROFILES["masking"]["smoke"]["ratios"])
    assert report["ratio_before"] != report["ratio_after"]


def test_the_masking_page_runs_its_model_in_a_real_browser(built):
    from maelib import browser, webmodel

    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    try:
        webmodel.runtime_files()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with browser.serve(built) as url, browser.open_page() as page:
        page.goto(url + "book/chapters/06_masking.html")
        page.click(".mae-live-start")  # the runtime and the model load when the reader asks
        page.wait_for_selector(".mae-live[data-state=ready], .mae-live[data-state=unavailable]", state="attached")
        assert page.get_attribute(".mae-live", "data-state") == "ready", page.inner_text(".mae-live-note")
        # dark mode: the controls follow the page, not the light panel the theme gives HTML outputs
        page.evaluate("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark')")
        page.reload()
        page.wait_for_selector("html[data-theme=dark] .mae-live", state="attached")
        panels = page.eval_on_selector_all(".cell_output .text_html:has(.mae-live, .mae-static-control)",
                                           "els => els.map(e => getComputedStyle(e).backgroundColor)")
        assert panels and all(c in ("transparent", "rgba(0, 0, 0, 0)") for c in panels), panels


def test_pages_read_on_a_phone_and_in_dark_mode(built):
    """Issue #36's tour: at 390 px a wide table's caption ran off its scrolling box, figures' alt text was their
    file path, and in dark mode a glued figure sat on white while a cell's figure sat on grey, and the masking
    page's precomputed frames were dimmed while its live panels were not."""
    from maelib import browser

    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    with browser.serve(built) as url, browser.open_page() as page:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(url + "book/chapters/07_summary.html")
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")  # nothing scrolls the page
        overflow = page.evaluate("""() => [...document.querySelectorAll('article table.table caption')].map(c => {
            const box = c.closest('.pst-scrollable-table-container') || c.closest('table');
            box.scrollLeft = box.scrollWidth;  // scrolled to its far end, the caption stays in the box
            return c.getBoundingClientRect().right - box.getBoundingClientRect().right; })""")
        assert overflow and max(overflow) <= 1, overflow
        alts = page.eval_on_selector_all("article figure img", "els => els.map(e => e.alt)")
        assert alts and not [a for a in alts if a.endswith((".svg", ".png")) or not a], alts
        for chapter in ("02_series", "03_segmentation"):  # a long word in the next chapter's title cut the chevron
            page.goto(url + f"book/chapters/{chapter}.html")
            right = page.eval_on_selector_all(".prev-next-area a > :is(i, svg)", "els => els.map(e => e.getBoundingClientRect().right)")
            assert right and max(right) <= 390, (chapter, right)
        page.evaluate("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark')")
        for chapter in ("07_summary", "06_masking"):
            page.goto(url + f"book/chapters/{chapter}.html")
            page.wait_for_selector("html[data-theme=dark]", state="attached")
            backgrounds = page.eval_on_selector_all(
                "article figure img, article .cell_output img:not(.frame)",
                "els => [...new Set(els.map(e => getComputedStyle(e).backgroundColor))]")
            assert backgrounds == ["rgb(255, 255, 255)"], (chapter, backgrounds)
        filters = page.eval_on_selector_all(".mae-static-control img.frame", "els => els.map(e => getComputedStyle(e).filter)")
        assert filters and set(filters) == {"none"}, filters


def test_no_table_cell_wraps_past_three_lines_at_the_books_width(built):
    """#34 item 6: at 1280 px the summary's intervals wrapped over five lines and a header was cut off. Every
    table cell of every chapter and of the introduction (its data table) takes at most three lines (a cell too long for three lines of the widest
    column, viz.WIDEST_CELL_CH, excepted), and a table wider than its box scrolls inside it."""
    from maelib import browser, viz

    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    with browser.serve(built) as url, browser.open_page() as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        for stem in ["../intro"] + [c.stem for c in sorted(provenance.chapters().values())]:  # the data table too
            page.goto(url + f"book/chapters/{stem}.html")
            cells = page.evaluate("""(most) => [...document.querySelectorAll('article table.table :is(td, th)')]
                .filter(c => c.innerText.trim().length <= most).map(c => {
                  const r = document.createRange(); r.selectNodeContents(c);
                  return [c.innerText.trim(), r.getBoundingClientRect().height / parseFloat(getComputedStyle(c).lineHeight)];
                }).filter(([t, lines]) => lines > 3.5)""", viz.MOST_LINES * viz.WIDEST_CELL_CH)
            assert not cells, (stem, cells)
            assert page.locator("article table.table").count() > 0 or stem != "../intro"  # the data table was read
            cut = page.evaluate("""() => [...document.querySelectorAll('article table.table')].filter(t => {
                const box = t.closest('.pst-scrollable-table-container');
                return box && t.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX === 'visible'; }).length""")
            assert cut == 0, stem
            weights = page.eval_on_selector_all("article figure figcaption", "els => els.map(e => getComputedStyle(e).fontWeight)")
            assert all(w == "400" for w in weights), (stem, weights)  # the tour: captions at 300 read faint


def test_pages_show_result_code_behind_a_toggle_downloads_and_numbered_tables(built):
    """Result cells' code is one click away (hide-input), boilerplate is not on the page, each chapter
    offers its executed notebook and its jupytext source, tables are numbered tables, and the
    provenance line comes right under the title."""
    page = (built / "book" / "chapters" / "01_images.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert page.count("tag_hide-input") >= 4 and "Show code cell source" in page
    assert "images.choose_lr(" in text and "images.finetune(" in text  # the calls into maelib, toggled
    assert "from maelib import" not in text  # the imports (a removed cell) are not on the page
    assert re.search(r'href="[^"]*_downloads/[^"]*/01_images\.ipynb"', page)
    assert re.search(r'href="[^"]*_downloads/[^"]*/01_images\.py"', page)
    # numbered within the chapter (Table 1.2), so that the book's tables are never read as the paper's Table 1-5
    assert re.search(r'<span class="caption-number">Table 1\.\d+ </span>', page)
    assert not re.search(r'<span class="caption-number">Table \d+ </span>', page)
    body = " ".join(re.sub(r"<[^>]+>", "", page[page.index("<article"):]).split())
    assert re.search(r"^1\. Images: MAE pretraining vs training from scratch on TinyImageNet# Executed at the smoke "
                     r"profile", body)  # the provenance line right under the title
    summary = (built / "book" / "chapters" / "07_summary.html").read_text()
    assert summary.count('<span class="caption-number">Table') >= 1 and "Fig." in summary


def test_a_book_with_unexecuted_chapters_names_them_all(tmp_path):
    """Staging before every chapter has run fails early with one error that names each missing chapter
    and the command that runs them (the `run` command then says the book was not rebuilt)."""
    shutil.copy(ROOT / "_toc.yml", tmp_path / "_toc.yml")
    with pytest.raises(book.MissingExecutions) as e:
        book.stage(tmp_path, executed=tmp_path / "none", committed=tmp_path / "none")
    assert all(repr(c) in str(e.value) for c in runs.toc_chapters(ROOT)) and "maelib book" in str(e.value)
    assert not (tmp_path / book.CHAPTERS).exists() or not any((tmp_path / book.CHAPTERS).iterdir())
