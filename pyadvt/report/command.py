"""Render a self-contained HTML + Markdown report from pyadvt result files.

``pyadvt report RESULTS... [-o OUT]`` where each RESULTS is a result JSON file or a directory
searched recursively for ``pyadvt.result/1`` files. Prints the HTML path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyadvt.report.render import render_report
from pyadvt.utils.validation import check_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="result JSON files or directories holding them")
    parser.add_argument("-o", "--out", default=None,
                        help="output directory (default: the first RESULTS directory, or its parent)")
    parser.add_argument("--title", default=None, help="report title")


def main(args: argparse.Namespace) -> int:
    first = Path(args.results[0])
    out = check_output_dir(args.out, "-o/--out") if args.out else (first if first.is_dir() else first.parent)
    report = render_report(list(args.results), out, title=args.title)
    print(report.html)
    return 0
