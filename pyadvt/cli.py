"""The ``pyadvt`` command line.

``pyadvt info`` prints the build; ``pyadvt experiment NAME`` runs an experiment registered in
:data:`pyadvt.experiments.EXPERIMENTS`; other sub-commands are registered in ``COMMANDS``.
User errors exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from pyadvt.experiments import EXPERIMENTS

# name -> module exposing add_arguments(parser) and main(args) -> int
COMMANDS: dict[str, str] = {
    "attack": "pyadvt.commands.attack",
    "report": "pyadvt.report.command",
    "quickstart": "pyadvt.commands.quickstart",
    "rank": "pyadvt.commands.rank",
}


class UserError(Exception):
    """An error caused by the user's input: reported as one line, exit status 2."""


def _info(args: argparse.Namespace) -> int:
    import pyadvt

    info = pyadvt.build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>20}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyadvt", description="Adversarial transferability toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="show build information (compiled kernels, versions)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    exp = sub.add_parser("experiment", help="run a paper-reproduction experiment")
    exp_sub = exp.add_subparsers(dest="experiment", required=True)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        p = exp_sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"pyadvt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
