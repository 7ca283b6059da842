"""The command line every experiment shares: ``pyadvt experiment NAME [--config F] [--set K=V]
[--out DIR] [--quick] [--quiet] [--dataset NAME] [--data-root DIR]``.

Each experiment module defines ``run(config, out_dir, progress)`` and its preset dicts, then::

    add_arguments, main = experiment_cli("mixture", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)

With ``presets`` (a dict, possibly empty) the command also takes ``--dataset`` (default ``digits``):
it selects the data (``cfg["dataset"]``, see :mod:`pyadvt.experiments._data`); a data set with an entry in the experiment's ``presets`` also gets
that entry's ``"scale"`` settings (architecture for its image size, eps in its [0, 1] pixel units,
subset sizes) and, without ``--quick``, its ``"budget"`` settings (epochs, seeds sized to finish on
2 CPU cores). ``--config`` and ``--set`` still override everything.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from pyadvt.utils.config import add_config_arguments, load_config, merge_config, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.validation import check_device, check_output_dir


def dataset_layer(presets: Mapping | None, dataset: str | None, root: str | None = None, quick: bool = False) -> dict:
    """The partial config that ``--dataset dataset --data-root root`` stands for.

    ``presets[name]["scale"]`` (always) and ``presets[name]["budget"]`` (unless ``quick``) merged, then
    ``{"dataset": {"name": dataset, "root": root}}``. A data set without a preset only sets ``dataset``
    (the models take its image shape; eps and budgets stay the digits ones).

    Example:
        >>> dataset_layer({"fashion-mnist": {"scale": {"eps": 0.1}, "budget": {"epochs": 3}}}, "fmnist", quick=True)
        {'eps': 0.1, 'dataset': {'name': 'fashion-mnist', 'root': None}}
    """
    from pyadvt.experiments._data import dataset_name

    key = dataset_name(dataset)
    entry = (presets or {}).get(key, {})
    layer: dict = {}
    for part in ("scale",) + (() if quick else ("budget",)):
        layer = merge_config(layer, entry.get(part, {}), strict=False)
    return merge_config(layer, {"dataset": {"name": key, "root": root}}, strict=False)


def experiment_cli(name: str, run: Callable[..., dict], defaults: Mapping | None = None, quick: Mapping | None = None,
                   *, resolve: Callable[..., dict] | None = None, presets: Mapping | None = None):
    """Build ``(add_arguments, main)`` for experiment ``name``.

    The configuration is ``resolve(config_file, quick, overrides)`` when given, else the
    ``quick`` or ``defaults`` preset <- ``--dataset`` layer (:func:`dataset_layer` of ``presets``) <-
    ``--config`` file <- ``--set`` overrides. Results go to
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
        if presets is None:  # an experiment without a 'dataset' config section
            return
        parser.add_argument("--dataset", default=None, metavar="NAME",
                            help="data set: digits (default), fashion-mnist (Debian's dataset-fashion-mnist), mnist, "
                                 "kmnist, cifar10, imagefolder ... (file data sets read from --data-root); "
                                 f"presets for: {', '.join(presets) if presets else 'none'}")
        parser.add_argument("--data-root", default=None, metavar="DIR",
                            help="directory of a file data set (default: the system package's, if any)")

    def main(args: argparse.Namespace) -> int:
        if args.quiet:
            set_quiet(True)
        out = args.out or f"results/{name}{'-quick' if args.quick else ''}"
        config = args.config
        dataset, root = getattr(args, "dataset", None), getattr(args, "data_root", None)
        if dataset is not None or root is not None:
            layer = dataset_layer(presets, dataset or "digits", root, args.quick)
            config = layer if config is None else merge_config(layer, load_config(config), strict=False)
            if args.out is None:
                out = f"results/{name}-{layer['dataset']['name']}{'-quick' if args.quick else ''}"
        cfg = resolve(config, args.quick, args.overrides)
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
