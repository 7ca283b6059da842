"""The ``pyadvt`` command line.

``pyadvt info`` prints the build; ``pyadvt experiment NAME`` runs an experiment registered in
:data:`pyadvt.experiments.EXPERIMENTS`; other sub-commands are registered in ``COMMANDS``.
User errors exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
from pathlib import Path

from pyadvt.experiments import EXPERIMENTS
from pyadvt.utils.validation import UserError

# name -> module exposing add_arguments(parser) and main(args) -> int
COMMANDS: dict[str, str] = {
    "attack": "pyadvt.commands.attack",
    "benchmark-attacks": "pyadvt.commands.benchmark_attacks",
    "report": "pyadvt.report.command",
    "quickstart": "pyadvt.commands.quickstart",
    "rank": "pyadvt.commands.rank",
}

# spelled-out forms of nested sub-commands: `pyadvt rank-sources ...` == `pyadvt rank sources ...`
ALIASES: dict[str, tuple[str, ...]] = {
    "rank-sources": ("rank", "sources"),
    "rank-surrogates": ("rank", "surrogates"),
}


def _info(args: argparse.Namespace) -> int:
    import pyadvt

    info = pyadvt.build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>20}: {value}")
    return 0


def _summary(module_name: str) -> str:
    """First docstring line of a pyadvt module, read from its source without importing it or its
    parent packages (they pull in matplotlib and friends; only the chosen command is imported)."""
    path = Path(__file__).resolve().parent.joinpath(*module_name.split(".")[1:])
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _add_module_commands(sub, registry: dict[str, str], chosen: str | None) -> None:
    for name, module_name in registry.items():
        if name != chosen:
            sub.add_parser(name, help=_summary(module_name))
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=_summary(module_name))
        module.add_arguments(p)
        p.set_defaults(func=module.main)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the module of the sub-command named in ``argv`` (default
    ``sys.argv[1:]``) is imported."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    command = words[0] if words else None
    parser = argparse.ArgumentParser(prog="pyadvt", description="Adversarial transferability toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="show build information (compiled kernels, versions)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    for name in COMMANDS:
        _add_module_commands(sub, {name: COMMANDS[name]}, name if name == command else None)
    for alias, target in ALIASES.items():
        sub.add_parser(alias, help=f"same as `pyadvt {' '.join(target)}`")
    exp = sub.add_parser("experiment", help="run a paper-reproduction experiment")
    exp_sub = exp.add_subparsers(dest="experiment", required=True)
    experiment = words[1] if command == "experiment" and len(words) > 1 else None
    for name in EXPERIMENTS:
        _add_module_commands(exp_sub, {name: EXPERIMENTS[name]}, name if name == experiment else None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ALIASES:
        argv = [*ALIASES[argv[0]], *argv[1:]]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"pyadvt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
