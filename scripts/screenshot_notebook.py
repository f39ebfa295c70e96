"""Save a PNG of an executed notebook as JupyterLab 4 shows it, rendered in headless Chromium.

Usage: screenshot_notebook.py NOTEBOOK.ipynb OUT.png [--width 1300] [--kernel-binary PATH]

The notebook is copied into a temporary directory served by a private JupyterLab; the kernelspec
`sculpt` is installed there by the kernel binary, so opening the notebook starts no other kernel.
For the picture in docs/:

    python scripts/run_notebook.py notebooks/lonas.ipynb build/notebooks/lonas.ipynb
    python scripts/screenshot_notebook.py build/notebooks/lonas.ipynb docs/lonas-jupyterlab.png
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyterlab_browser import JupyterLab, screenshot_notebook, start_chromium, stop_chromium

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--kernel-binary", default=str(REPO / ".build/release/sculpt-kernel"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sculpt-screenshot-") as temp:
        temp = Path(temp)
        (temp / "root").mkdir()
        name = Path(args.notebook).name  # the tab in the picture shows the notebook's own name
        shutil.copy(args.notebook, temp / "root" / name)
        subprocess.run([args.kernel_binary, "install", "--jupyter-path", str(temp / "jupyter")],
                       check=True, capture_output=True)
        lab = JupyterLab(temp / "root", temp / "jupyter", temp / "lab")
        driver = None
        try:
            lab.start()
            driver = start_chromium(temp / "chromium", width=args.width)
            screenshot_notebook(driver, lab, name, Path(args.output).resolve(), width=args.width)
        finally:
            if driver is not None:
                stop_chromium(driver, temp / "chromium")
            lab.stop()
    print(f"{args.notebook} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
