"""Results, figures and reports: the versioned JSON result schema, matplotlib figures and a
self-contained HTML + Markdown report (docs/architecture.md: report sits above metrics/attacks, below the CLI).

* :mod:`pyadvt.report.results` - ``make_result``/``write_result``/``read_result`` (``pyadvt.result/1``)
  and ``Timings``.
* :mod:`pyadvt.report.figures` - ``heatmap``, ``scatter`` (fitted line + Pearson r), ``bars`` (CIs),
  ``curves`` (bands), ``dendrogram`` (similarity tree); each returns the saved PNG path.
* :mod:`pyadvt.report.render` - ``render_report(result_or_dir, out_dir)``; ``publish(result, out_dir)``
  writes ``result.json`` + the report (rank 0 only), the last step of an experiment.

Example:
    >>> import tempfile
    >>> from pyadvt.report import make_result, render_report
    >>> rep = render_report(make_result("demo", {}, {"m": [[0.0, 1.0], [1.0, 0.0]]}), tempfile.mkdtemp())
    >>> rep.html.exists() and rep.markdown.exists()
    True
"""

from pyadvt.report.figures import bars, curves, dendrogram, fit_line, heatmap, mean_ci, plot, scatter
from pyadvt.report.render import Report, load_results, publish, render_report
from pyadvt.report.results import (SCHEMA, Timings, environment, find_results, make_result, read_result,
                                   validate_result, write_result)

__all__ = ["SCHEMA", "Report", "Timings", "bars", "curves", "dendrogram", "environment", "find_results", "fit_line",
           "heatmap", "load_results", "make_result", "mean_ci", "plot", "publish", "read_result", "render_report",
           "scatter", "validate_result", "write_result"]
