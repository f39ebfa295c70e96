"""JupyterLab 4 in headless Chromium, for the browser test and for screenshots of notebooks.

`JupyterLab` runs a private server: 127.0.0.1, a free port, a token, and every directory it writes
(runtime, settings, workspaces, data) temporary, so it never touches or depends on the user's
Jupyter set-up. `start_chromium` drives Debian's Chromium through Debian's chromedriver, named
explicitly so Selenium Manager never tries to download a driver or a browser (there is no network).
Both have a `stop` that leaves nothing running, even when the processes misbehave.
"""
from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# JupyterLab user settings for a private server:
# - no windowing, so every cell and output is in the DOM (the default lays out only what is on screen);
# - no blank space past the last cell, so a window as tall as the notebook shows all of it;
# - no news or update checks, whose toasts would cover part of the page (and there is no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def wait_until(condition, timeout, what, interval=0.1):
    """Polls `condition` until it returns something truthy, and returns that; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def kill_processes_using(directory: Path):
    """Kills every process whose command line names a path in `directory`, one of our temporary ones.
    Kernels (their connection files are in the server's runtime directory) and Chromium's helpers
    (its profile directory) can outlive their parents; this makes sure they do not."""
    marker = os.path.join(directory, "")  # with the trailing slash: .../lab1 must not match .../lab10
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def kill_group(process: subprocess.Popen, grace=10):
    """SIGTERM to the process group `process` leads, then SIGKILL if it has not exited in `grace` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:  # members of the group that outlived its leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def die_with_parent():
    """Runs in a child before it starts: Linux sends it SIGTERM when the process that started it
    dies, so even a killed test run leaves no server or browser behind (PR_SET_PDEATHSIG is 1)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server serving `root_dir`, with kernelspecs from `jupyter_path`; its own files
    (log, runtime, settings) go under `workdir`."""

    def __init__(self, root_dir: Path, jupyter_path: Path, workdir: Path):
        self.root_dir, self.jupyter_path, self.workdir = Path(root_dir), Path(jupyter_path), Path(workdir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log = self.workdir / "jupyterlab.log"
        self.process = None

    def start(self, timeout=180):
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = self.workdir / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ,
                   JUPYTER_PATH=str(self.jupyter_path),
                   JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                   JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
                   JUPYTER_DATA_DIR=str(self.workdir / "data"))
        command = [sys.executable, "-m", "jupyterlab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
                   f"--LabApp.user_settings_dir={settings}",
                   f"--LabApp.workspaces_dir={self.workdir / 'workspaces'}",
                   # Nothing that would reach for the network (PyPI listings, news).
                   "--LabApp.extension_manager=readonly", "--LabApp.news_url=None"]
        if os.geteuid() == 0:
            command.append("--allow-root")  # as on CI: Jupyter refuses root without it
        with open(self.log, "wb") as log:
            # A session of its own, so stop() can end the server and everything it started in one go.
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=die_with_parent)

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return self.api("GET", "api/status")
            except OSError:
                return None
        try:
            wait_until(ready, timeout, f"JupyterLab on port {self.port}", interval=0.25)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.log_tail()}") from None
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def kernel_state(self, path: str):
        """The execution state of the kernel of the notebook at `path` (None without a session)."""
        for session in self.api("GET", "api/sessions"):
            if session["path"] == path and session.get("kernel"):
                return session["kernel"]["execution_state"]
        return None

    def log_tail(self, lines=40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        """Asks the server to shut down (it shuts its kernels down first), then makes sure."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.api("POST", "api/shutdown")
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill_group(self.process)
        # Kernels run in sessions of their own; their connection files are in our runtime directory.
        kill_processes_using(self.workdir)
        self.process = None


def start_chromium(workdir: Path, width=1300, height=1000) -> webdriver.Chrome:
    """Headless Chromium, driven by Debian's chromedriver; fails with a clear message if it cannot start."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing: install the Debian packages chromium and chromium-driver "
                               "(scripts/setup.sh does)")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox",  # no sandbox: we run as root
                     "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={width},{height}", f"--user-data-dir={Path(workdir) / 'chromium-profile'}"):
        options.add_argument(argument)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(Path(workdir) / "chromedriver.log"),
                      popen_kw={"start_new_session": True, "preexec_fn": die_with_parent})
    try:
        return webdriver.Chrome(service=service, options=options)
    except WebDriverException as error:
        service.stop()
        kill_processes_using(workdir)
        raise RuntimeError(f"headless Chromium did not start ({CHROMIUM} via {CHROMEDRIVER}): {error.msg}") from error


def stop_chromium(driver: webdriver.Chrome, workdir: Path):
    """Quits the browser, then kills chromedriver's process group and anything left using `workdir`."""
    try:
        driver.quit()
    except Exception:  # a crashed browser: the kills below still clean up
        pass
    if driver.service.process is not None:
        kill_group(driver.service.process, grace=2)
    kill_processes_using(workdir)


def open_notebook(driver, lab: JupyterLab, path: str, timeout=120):
    """Opens `path` (relative to the server's root) and waits until every cell is in the page and
    no output is still being rendered (Vega-Lite draws asynchronously, after loading its code)."""
    cells = len(json.loads((lab.root_dir / path).read_text())["cells"])
    driver.get(lab.url(f"lab/tree/{path}"))
    wait_until(lambda: driver.execute_script(COUNT_CELLS) == cells, timeout, f"the {cells} cells of {path}")
    wait_until(lambda: driver.execute_script(OUTPUTS_SETTLED), timeout, f"the outputs of {path} to render")
    wait_until(lambda: lab.kernel_state(path) == "idle", timeout, f"the kernel of {path} to start")


COUNT_CELLS = "return document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length"

# Every output has rendered something, and every Vega renderer has drawn its canvas or SVG.
OUTPUTS_SETTLED = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return false;
const outputs = [...panel.querySelectorAll('.jp-OutputArea-output')];
return outputs.every(o => o.childElementCount > 0 || o.textContent.length > 0)
    && [...panel.querySelectorAll('.jp-RenderedVegaCommon5')].every(v => v.querySelector('canvas, svg'));
"""

# What each cell of the visible notebook shows: its prompt, and per output child what renders it.
# `signature` is a hash of the child's text and pixels, to tell whether a live display changed.
DESCRIBE_CELLS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
const sized = el => { const r = el.getBoundingClientRect(); return r.width > 10 && r.height > 10; };
const hash = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h = Math.imul(h ^ s.charCodeAt(i), 16777619); } return h >>> 0; };
return [...panel.querySelectorAll('.jp-Cell')].map(cell => ({
  code: cell.classList.contains('jp-CodeCell'),
  prompt: (cell.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-child')].map(child => ({
    result: child.classList.contains('jp-OutputArea-executeResult'),
    renderer: [...(child.querySelector('.jp-OutputArea-output') || {classList: []}).classList]
              .filter(c => c.startsWith('jp-Rendered')).join(' '),
    vega: [...child.querySelectorAll('.vega-embed canvas, .vega-embed svg')].some(sized),
    svg: [...child.querySelectorAll('.jp-RenderedSVG img, .jp-RenderedSVG svg')].some(sized),
    json: !!child.querySelector('.jp-RenderedJSON'),
    tables: child.querySelectorAll('table').length,
    text: child.innerText.slice(0, 300),
    signature: hash(child.innerText + [...child.querySelectorAll('canvas')].map(c => c.toDataURL()).join('')
                    + [...child.querySelectorAll('img')].map(i => i.src).join('')
                    + [...child.querySelectorAll('svg')].map(s => s.outerHTML).join('')),
  })),
}));
"""


def describe_cells(driver):
    return driver.execute_script(DESCRIBE_CELLS)


# A sanity limit on the window's height (headless Chromium 156 drew a 20000-px window whole).
MAX_SCREENSHOT_HEIGHT = 20000


def screenshot_notebook(driver, lab: JupyterLab, path: str, out: Path, width=1300):
    """Saves a PNG of the whole notebook: the window is made as tall as the notebook's content."""
    open_notebook(driver, lab, path)
    # The file browser takes room from the notebook: a click on the open sidebar tab closes it
    # (a real click: Lumino's tab bar listens to pointer events, not to `click`).
    for tab in driver.find_elements(By.CSS_SELECTOR, ".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"):
        tab.click()
    wait_until(lambda: driver.execute_script("return !document.querySelector('#jp-left-stack:not(.lm-mod-hidden)')"),
               30, "the left sidebar to close")
    # The notebook scrolls inside its own panel; everything above and below it is the frame to keep.
    def heights():
        return driver.execute_script("""
            const scroller = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
            return [scroller.scrollHeight, scroller.clientHeight, window.outerHeight];""")
    content, visible, window_height = heights()
    height = window_height + content - visible + 20
    if height > MAX_SCREENSHOT_HEIGHT:
        raise RuntimeError(f"{path} is {content} px tall: more than one screenshot of at most "
                           f"{MAX_SCREENSHOT_HEIGHT} px can hold")
    driver.set_window_size(width, height)
    # Wait for the layout to follow the new size, then for any redrawn chart.
    def fits():
        content, visible, _ = heights()
        return visible >= content
    wait_until(fits, 60, "the notebook to fit the window")
    wait_until(lambda: driver.execute_script(OUTPUTS_SETTLED), 60, "the outputs to render")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"could not save the screenshot {out}")
