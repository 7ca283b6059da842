"""End-to-end experiments reproducing the seed papers' key results.

Each experiment is a module ``pyadvt.experiments.<name>`` exposing

* ``run(config: dict | None = None, out_dir=..., progress=True) -> dict`` — the Python API, and
* ``add_arguments(parser)`` / ``main(args) -> int`` — its ``pyadvt experiment <name>`` CLI.

``EXPERIMENTS`` maps the CLI name to the module; the CLI imports a module only when it runs.
"""

EXPERIMENTS: dict[str, str] = {
    # "name": "pyadvt.experiments.module",  (one line per experiment)
    "robust-transfer": "pyadvt.experiments.robust_transfer",
    "robustness-transfer": "pyadvt.experiments.robustness_transfer",
    "geometry": "pyadvt.experiments.geometry",
    "mixture": "pyadvt.experiments.mixture",
    "surrogates": "pyadvt.experiments.surrogates",
    "source-selection": "pyadvt.experiments.source_selection",
}

__all__ = ["EXPERIMENTS"]
