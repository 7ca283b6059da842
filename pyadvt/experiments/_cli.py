"""The command line every experiment shares: ``pyadvt experiment NAME [--config F] [--set K=V]
[--out DIR] [--quick] [--quiet]``.

Each experiment module defines ``run(config, out_dir, progress)`` and its preset dicts, then::

    add_arguments, main = experiment_cli("mixture", run, DEFAULTS, QUICK)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from pyadvt.utils.config import add_config_arguments, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.validation import check_device, check_output_dir


def experiment_cli(name: str, run: Callable[..., dict], defaults: Mapping | None = None, quick: Mapping | None = None,
                   *, resolve: Callable[..., dict] | None = None):
    """Build ``(add_arguments, main)`` for experiment ``name``.

    The configuration is ``resolve(config_file, quick, overrides)`` when given, else the
    ``quick`` or ``defaults`` preset <- ``--config`` file <- ``--set`` overrides. Results go to
    ``--out`` (default ``results/NAME``, ``results/NAME-quick`` with ``--quick``); the summary is
    printed one ``key: value`` per line.
    """
    if resolve is None:
        def resolve(config, is_quick, overrides):
            return resolve_config(quick if is_quick else defaults, config, overrides=overrides)

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument("--out", "--out-dir", dest="out", default=None,
                            help=f"output directory, finished cells are cached there (default results/{name})")
        parser.add_argument("--quick", action="store_true", help="small smoke-test preset")
        parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                            help="no progress bars or status lines")

    def main(args: argparse.Namespace) -> int:
        if args.quiet:
            set_quiet(True)
        out = args.out or f"results/{name}{'-quick' if args.quick else ''}"
        cfg = resolve(args.config, args.quick, args.overrides)
        if "device" in cfg:
            check_device(cfg["device"], "config device")
        check_output_dir(out)
        result = run(cfg, out_dir=out, progress=not args.quiet)
        log(f"{name}: wrote {Path(out) / 'result.json'}")
        for key, value in result.get("summary", {}).items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        for line in result.get("notes", []):
            print(line)
        return 0

    return add_arguments, main
