"""Headless Chromium (Debian's package, never a downloaded browser) for the book's interactive pages.

- :func:`check_static_control`: a copy of the built page gets a probe script that moves the kernel-free
  slider and reports whether the shown image changed; Chromium runs the page and prints the DOM, from
  which the report is read. Usage: ``python -m maelib check-control [_build/html/book/chapters/06_masking.html]``.
- :func:`serve` and :func:`open_page`: a folder served on 127.0.0.1 and a Playwright page in the system
  Chromium, for the tests and benchmarks of the in-browser model and of JupyterLab.
- :func:`write_lab_settings`: JupyterLab's settings under which the chapters' ``.py`` files open as
  notebooks (``make lab``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path


PROBE = """<script>
document.addEventListener("DOMContentLoaded", function () {
  var out = {found: false};
  var root = document.querySelector(".mae-static-control");
  if (root) {
    var slider = root.querySelector("input.ratio"), img = root.querySelector("img.frame");
    out.found = true;
    out.frames = parseInt(slider.max, 10) + 1;
    out.before = img.src.length + ":" + img.src.slice(-40);
    out.ratio_before = root.querySelector(".ratio-value").textContent;
    slider.value = "0";
    slider.dispatchEvent(new Event("input"));
    out.after = img.src.length + ":" + img.src.slice(-40);
    out.ratio_after = root.querySelector(".ratio-value").textContent;
    out.changed = out.before !== out.after;
  }
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

# what keeps Chromium quiet, offline and working as root in a container
QUIET = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
FLAGS = ["--headless", *QUIET, "--virtual-time-budget=5000", "--dump-dom"]
# JupyterLab: text notebooks (jupytext's .py percent files) open as notebooks, not in the editor
LAB_SETTINGS = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check_static_control(page: str | Path) -> dict:
    """Open a copy of ``page`` (with the probe) from file:// in headless Chromium; return the probe's report."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("Chromium is not installed (Debian: apt-get install chromium)")
    page = Path(page)
    with tempfile.TemporaryDirectory() as tmp:
        probe = page.with_name(f".probe-{page.name}")
        probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
        try:
            dom = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp}", probe.resolve().as_uri()],
                                 capture_output=True, text=True, timeout=120).stdout
        finally:
            probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="probe-result"[^>]*>(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("the probe did not report: the page did not load or its script failed")
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@contextlib.contextmanager
def serve(folder: str | Path):
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL ("http://...:port/")."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def open_page(timeout_s: float = 60):
    """A Playwright page in headless system Chromium (FileNotFoundError where there is none); the
    browser closes on exit. Playwright drives it; it never downloads a browser of its own."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=QUIET)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            yield page
        finally:
            browser.close()


def write_lab_settings(folder: str | Path) -> Path:
    """Merge :data:`LAB_SETTINGS` into ``folder/overrides.json`` (JupyterLab's app settings); returns it."""
    path = Path(folder) / "overrides.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    for plugin, values in LAB_SETTINGS.items():
        current.setdefault(plugin, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2))
    return path
