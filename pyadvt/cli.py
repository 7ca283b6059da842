"""The ``pyadvt`` command line.

``pyadvt info`` prints the build; ``pyadvt experiment NAME`` runs an experiment registered in
:data:`pyadvt.experiments.EXPERIMENTS`; other sub-commands are registered in ``COMMANDS``.
Every error exits with status 2 and a one-line reason (``--debug`` adds the traceback); Ctrl-C
exits 130 with "interrupted; rerun to resume".
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

from pyadvt.experiments import EXPERIMENTS
from pyadvt.utils.validation import UserError, check_device

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
    parser = argparse.ArgumentParser(prog="pyadvt", description="Adversarial transferability toolkit.",
                                     epilog="--debug (anywhere on the line) prints tracebacks of errors.")
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


# errors whose message is the whole story (bad argument, file, configuration); anything else is
# reported with its type so a bug is recognisable, still on one line (the traceback needs --debug)
_USER_ERRORS = (UserError, ValueError, TypeError, KeyError, OSError)
INTERRUPTED = 130  # the shell's status for a SIGINT-terminated process


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if not isinstance(exc, KeyError) else str(exc)
    if isinstance(exc, _USER_ERRORS):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text} (rerun with --debug for the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Every error is one line on stderr with status 2 (``--debug`` anywhere on the line, or
    ``PYADVT_DEBUG=1``, prints the traceback too); Ctrl-C exits 130 with "interrupted; rerun to
    resume" (finished cells are on disk, docs/reliability.md).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("PYADVT_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        if argv and argv[0] in ALIASES:
            argv = [*ALIASES[argv[0]], *argv[1:]]
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        args.debug = debug  # commands that report errors and carry on (rank) print tracebacks with --debug
        if getattr(args, "device", None) is not None:
            check_device(args.device, "--device")
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("pyadvt: interrupted; rerun to resume", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the command line's last line of defence
        if debug:
            traceback.print_exc()
        print(f"pyadvt: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
