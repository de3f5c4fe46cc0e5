"""Check the book's kernel-free masking control in a real browser (headless Chromium).

A copy of the built page gets a probe script that moves the slider and reports whether the shown
image changed; Chromium runs the page and prints the DOM, from which the report is read. Usage:
``python -m maelib check-control [_build/html/book/executed/06_masking.html]``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
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

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--dump-dom"]


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
