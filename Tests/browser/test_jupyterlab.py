"""Sculpt's outputs as a person sees them: JupyterLab 4 in headless Chromium.

The executed notebooks (shared with Tests/notebooks through the `executed_notebook` fixture) must
show every plot as a chart -- JupyterLab picks the renderer by MIME-type rank, and a bundle with
text/html or application/json shows as HTML or as a JSON tree instead of the Vega-Lite chart -- and
every table as a table. A live `train` and `search nsga2`, typed into a new notebook and run from
the browser, must update one display in place rather than append outputs.
"""
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from jupyterlab_browser import (  # noqa: E402
    JupyterLab, describe_cells, open_notebook, start_chromium, stop_chromium, wait_until)

CHART_TYPES = ("application/vnd.vegalite.v5+json", "image/svg+xml")
# Generous limits: the machine is small and shared; every wait polls for its condition.
START_TIMEOUT = 180
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def lab(tmp_path_factory, sculpt_jupyter_path):
    """A private JupyterLab serving an empty temporary directory, with the test kernelspecs."""
    workdir = tmp_path_factory.mktemp("jupyterlab")
    (workdir / "root").mkdir()
    server = JupyterLab(workdir / "root", sculpt_jupyter_path, workdir / "server")
    try:
        server.start(timeout=START_TIMEOUT)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chromium")
    try:
        driver = start_chromium(workdir)
    except RuntimeError as error:  # a missing or broken browser fails the test, loudly
        pytest.fail(str(error))
    try:
        yield driver
    finally:
        stop_chromium(driver, workdir)


@pytest.fixture(scope="module")
def rendered(lab, browser, executed_notebook):
    """`rendered(name)`: the executed notebook and what JupyterLab shows for each of its cells."""
    seen = {}

    def get(name):
        if name not in seen:
            notebook, path = executed_notebook(name)
            shutil.copy(path, lab.root_dir / f"{name}.ipynb")
            open_notebook(browser, lab, f"{name}.ipynb", timeout=START_TIMEOUT)
            seen[name] = notebook, describe_cells(browser)
        return seen[name]

    return get


def shown_outputs(cell):
    """The outputs JupyterLab shows for a cell: consecutive stream outputs of one name merge into one."""
    shown = []
    for output in cell.outputs:
        if (output.output_type == "stream" and shown and shown[-1].output_type == "stream"
                and shown[-1].name == output.name):
            continue
        shown.append(output)
    return shown


def paired_outputs(name, rendered):
    """(cell source, output in the file, output in the page) for every output of every code cell."""
    notebook, cells = rendered(name)
    assert len(cells) == len(notebook.cells)
    pairs = []
    for cell, page in zip(notebook.cells, cells):
        if cell.cell_type != "code":
            continue
        outputs = shown_outputs(cell)
        assert len(page["outputs"]) == len(outputs), (cell.source, page["outputs"])
        pairs += [(cell.source, output, shown) for output, shown in zip(outputs, page["outputs"])]
    return pairs


def is_chart(shown):
    return (shown["vega"] or shown["svg"]) and not shown["json"]


@pytest.mark.parametrize("name", ["quickstart", "lonas", "alora", "shears_sqft", "llama_nas"])
def test_plots_render_as_charts(name, rendered):
    plots = [(source, shown) for source, output, shown in paired_outputs(name, rendered)
             if any(mime in output.get("data", {}) for mime in CHART_TYPES)]
    assert plots, f"{name} has no plot to check"
    for source, shown in plots:
        assert is_chart(shown), (
            f"{source!r}: the plot is shown by {shown['renderer'] or 'nothing'}, not as a chart: {shown['text'][:120]!r}")
    _, cells = rendered(name)
    assert not any(o["json"] for cell in cells for o in cell["outputs"]), "a JSON tree in the notebook"


@pytest.mark.parametrize("name", ["quickstart", "lonas", "alora", "shears_sqft", "llama_nas"])
def test_tables_render_as_tables(name, rendered):
    tables = [(source, shown) for source, output, shown in paired_outputs(name, rendered)
              if "<table" in output.get("data", {}).get("text/html", "")]
    assert tables, f"{name} has no table to check"
    for source, shown in tables:
        assert shown["tables"] >= 1, f"{source!r}: shown by {shown['renderer']}, no <table>: {shown['text'][:120]!r}"


# ---- live displays, run from the browser -----------------------------------------------------

SETUP = ["model tiny layers=4 dim=64 ffn=256 context=256",
         "data text austen",
         "elastic mode=B ranks=16,12,8 widths=100%,75%,50% groups=family"]
# Long enough (about ten seconds each on the tiny model, on 2 cores) for many in-place updates to
# be seen: the browser redraws at its own pace, and a few seconds showed only one or two drawings.
LIVE = {"train": "train steps=1200 lr=3e-3 batch=4 seq=64 eval_every=300",
        "search": "search nsga2 population=8 generations=60 objectives=loss,macs eval_tokens=2048"}
FINISHED = re.compile(r"^\[\d+\]:$")


def run_cell(driver, index, lines):
    """Types `lines` into cell `index` of the open notebook and runs it with Shift+Enter (which also
    adds the next, empty cell)."""
    def cell():
        cells = driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
        return cells[index] if len(cells) > index else None
    content = wait_until(cell, 60, f"cell {index}").find_element(By.CSS_SELECTOR, ".cm-content")
    content.click()
    content.send_keys("\n".join(lines))
    content.send_keys(Keys.SHIFT, Keys.ENTER)


def prompt(driver, index):
    return describe_cells(driver)[index]["prompt"]


@pytest.fixture(scope="module")
def live(lab, browser):
    """A new notebook with the sculpt kernel, from JupyterLab's launcher; the set-up, then `train` and
    `search nsga2`, each observed while it runs. Returns {command: (polls while running, final outputs)},
    where a poll is the list of output children of the running cell."""
    browser.get(lab.url("lab") + "&reset")  # reset: a fresh workspace, showing the launcher
    card = wait_until(lambda: browser.find_elements(
        By.CSS_SELECTOR, '.jp-LauncherCard[data-category="Notebook"][title="Sculpt (LLM compression)"]'),
        START_TIMEOUT, "the launcher's Sculpt notebook card")[0]
    card.click()
    wait_until(lambda: [s for s in lab.api("GET", "api/sessions")
                        if s["kernel"]["name"] == "sculpt" and s["path"].startswith("Untitled")],
               START_TIMEOUT, "a new notebook with the sculpt kernel")

    run_cell(browser, 0, SETUP)
    wait_until(lambda: FINISHED.match(prompt(browser, 0)), RUN_TIMEOUT, "the set-up cell to finish")
    observed = {}
    for index, (command, source) in enumerate(LIVE.items(), start=1):
        run_cell(browser, index, [source])
        polls = []
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            cell = describe_cells(browser)[index]
            if FINISHED.match(cell["prompt"]):
                break
            if cell["prompt"] == "[*]:":
                polls.append(cell["outputs"])
            assert time.monotonic() < deadline, f"{command} still running after {RUN_TIMEOUT} s"
            time.sleep(0.2)  # a poll's pace, not a wait for anything: leaves the kernel its CPU

        # After the end: the result arrived and the chart is drawn again.
        def final_state():
            outputs = describe_cells(browser)[index]["outputs"]
            return outputs if any(o["result"] for o in outputs) and all(
                o["vega"] or o["svg"] or o["result"] for o in outputs) else None
        try:
            final = wait_until(final_state, 60, f"the final outputs of {command}")
        except TimeoutError:
            final = describe_cells(browser)[index]["outputs"]
        observed[command] = polls, final
    return observed


@pytest.mark.parametrize("command", list(LIVE))
def test_live_display_updates_one_output_in_place(command, live):
    polls, final = live[command]
    # While it runs, before its result: exactly one output, the display.
    running = [p for p in polls if p and not any(o["result"] for o in p)]
    assert len(running) >= 3, f"only {len(running)} observations of {command} while it ran"
    assert all(len(p) == 1 for p in running), [len(p) for p in running]
    # ... whose content changed in place: several distinct drawings of the one display.
    drawn = {p[0]["signature"] for p in running if p[0]["vega"] or p[0]["svg"] or p[0]["json"]}
    assert len(drawn) >= 3, f"{command}: the display changed {len(drawn) - 1} times while observed"
    # Nothing ever appended a second display.
    assert all(sum(not o["result"] for o in p) <= 1 for p in polls)
    # After the end: the same display and the result table, nothing else.
    assert [o["result"] for o in final] == [False, True], final
    assert final[1]["tables"] >= 1, final[1]


@pytest.mark.parametrize("command", list(LIVE))
def test_live_display_renders_as_a_chart(command, live):
    polls, final = live[command]
    displays = [p[0] for p in polls if p and not p[0]["result"]]
    assert displays, f"no display of {command} observed"
    # Vega-Lite draws asynchronously, so a poll may catch a redraw; the renderer must be a chart's.
    renderers = {o["renderer"] for o in displays}
    assert all("jp-RenderedVega" in r or "jp-RenderedSVG" in r for r in renderers), renderers
    assert not any(o["json"] for o in displays), "a JSON tree while running"
    assert any(is_chart(o) for o in displays), "never drawn while running"
    assert is_chart(final[0]), final[0]
