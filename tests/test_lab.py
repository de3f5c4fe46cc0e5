"""The live explorer in JupyterLab, as a reader drives it (``make lab``).

A smoke-profile image MAE is trained into a temporary cache; JupyterLab starts on 127.0.0.1 with a
token and the settings ``make lab`` uses; headless Chromium (the system's, driven by Playwright) opens a
copy of notebooks/06_masking.py set to the smoke profile, which must open as a notebook, runs it, moves
the mask-ratio slider and checks that the picture and the printed loss change. Skips only where
Chromium (or the staged TinyImageNet) is missing.
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, data_folder
from maelib import browser

pytestmark = pytest.mark.slow

STATUS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.widgets) return {notebook: false, ready: false};
  if (!panel.context.isReady) return {notebook: true, ready: false};
  const code = panel.content.widgets.filter((c) => c.model.type === 'code');
  const outputs = code.flatMap((c) => c.model.sharedModel.outputs || []);
  const error = outputs.find((o) => o.output_type === 'error');
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const ran = code.filter((c) => c.model.executionCount !== null).length;
  return {notebook: true, ready: true, cells: code.length, ran: ran,
          idle: !!kernel && kernel.status === 'idle', error: error ? error.ename + ': ' + error.evalue : null};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, timeout_s: float, what: str, step_s: float = 0.5):
    end = time.time() + timeout_s
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a folder with the masking chapter at the smoke profile and a trained smoke MAE;
    yields (base URL, token, notebook name). The server and its kernels are shut down afterwards."""
    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian package chromium): the JupyterLab test needs a browser")
    data_folder("tinyimagenet")
    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "records"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    subprocess.run([sys.executable, "-m", "maelib", "run", "images", "--profile", "smoke",
                    "--no-book"],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    source = (ROOT / "notebooks" / "06_masking.py").read_text()
    smoke, n = re.subn(r'^profile = "auto"', 'profile = "smoke"', source, flags=re.M)
    assert n == 1, "the masking chapter's parameters cell no longer sets profile = \"auto\""
    (folder / "06_masking.py").write_text(smoke)
    settings = browser.write_lab_settings(tmp_path / "app-settings").parent
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={folder}",
         f"--LabApp.app_settings_dir={settings}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"],
        env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait_for(up, 60, "JupyterLab to answer")
        yield base, token, "06_masking.py"
    finally:
        request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def test_the_live_explorer_redraws_in_jupyterlab(lab):
    base, token, name = lab
    with browser.open_page(timeout_s=90) as page:
        page.goto(f"{base}/lab/tree/{name}?token={token}")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget")
        _wait_for(lambda: page.evaluate(STATUS)["notebook"], 60,
                  f"{name} to open as a notebook (jupytext), not in the text editor")
        status = _wait_for(lambda: (s := page.evaluate(STATUS))["ready"] and s, 60, f"{name} to load")
        assert status["cells"] >= 5
        _wait_for(lambda: page.evaluate(STATUS)["idle"], 60, "the kernel to start")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

        def finished():
            s = page.evaluate(STATUS)
            assert not s["error"], f"the notebook failed: {s['error']}"
            return s["idle"] and s["ran"] == s["cells"]

        _wait_for(finished, 120, "the notebook to run")
        page.wait_for_function("(document.querySelector('.mae-caption') || {}).textContent"
                               "?.includes('loss on hidden patches')")  # the widgets have rendered
        picture, caption = page.locator(".mae-picture"), page.locator(".mae-caption")
        picture.scroll_into_view_if_needed()
        before = {"src": picture.get_attribute("src"), "caption": caption.text_content()}
        handle = page.locator(".mae-ratio .noUi-handle")
        handle.focus()
        for _ in range(3):  # 0.75 -> 0.6 in steps of 0.05, as a reader would with the keyboard
            handle.press("ArrowLeft")
        page.wait_for_function("([sel, old]) => document.querySelector(sel).textContent !== old",
                               arg=[".mae-caption", before["caption"]])
        after = {"src": picture.get_attribute("src"), "caption": caption.text_content()}
        assert after["src"] != before["src"]
        assert page.locator(".mae-ratio .widget-readout").text_content().strip() == "0.60"
        loss = lambda text: float(re.search(r"loss on hidden patches: ([0-9.]+)", text).group(1))  # noqa: E731
        assert loss(after["caption"]) != loss(before["caption"])
        assert page.evaluate(STATUS)["error"] is None
