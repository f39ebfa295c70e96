"""Execute a notebook headless with nbclient and save it with its outputs.

Usage: run_notebook.py IN.ipynb OUT.ipynb [--kernel NAME] [--timeout SECONDS]
Cells tagged `raises-exception` may fail; any other error fails the run.
"""
import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(path_in, path_out, kernel="sculpt", timeout=1800):
    notebook = nbformat.read(path_in, as_version=4)
    client = NotebookClient(notebook, kernel_name=kernel, timeout=timeout, allow_errors=False,
                            record_timing=True)
    started = time.monotonic()
    try:
        client.execute()
    finally:
        nbformat.write(notebook, path_out)
    return notebook, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--kernel", default="sculpt")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    args = parser.parse_args()
    try:
        _, seconds = execute(args.notebook, args.output, args.kernel, args.timeout)
    except CellExecutionError as error:
        print(f"{args.notebook}: a cell failed; partial outputs saved in {args.output}\n{error}", file=sys.stderr)
        return 1
    print(f"{args.notebook}: executed in {seconds:.1f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
