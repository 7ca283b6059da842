"""Render ``pyadvt.result/1`` results into a self-contained HTML page and a Markdown file.

:func:`render_report` takes a result dict, a result file, a directory holding result files (found
recursively) or a list of these, and writes into ``out_dir``:

* ``report.html`` - one file, no external resources: figures embedded as base64 PNG, inline CSS.
  A tiny script sets ``data-figures-total`` / ``data-figures-rendered`` on ``<body>`` once the page
  has loaded (number of ``<img>`` elements and of those decoded with ``naturalWidth > 0``), which
  the headless-browser test reads.
* ``report.md`` - the same content in Markdown, with links to ``figures/*.png``.
* ``figures/*.png`` - every figure; ``tables/*.csv`` - every table (empty cell = undefined).

Each result becomes a section with its summary, figures (the result's figure specs, see
:mod:`pyadvt.report.figures`; results without specs get a heatmap of every numeric matrix in
``data``), tables, notes, timings, the configuration (YAML, reloadable with ``--config``) and the
environment (versions, device, git commit, seeds).

Example:
    >>> import tempfile
    >>> from pyadvt.report.results import make_result
    >>> res = make_result("demo", {"eps": 0.1}, {"asr": [[1.0, 0.4], [0.5, 1.0]]}, seeds=[0])
    >>> rep = render_report(res, tempfile.mkdtemp())
    >>> rep.html.name, rep.markdown.name, len(rep.figures)
    ('report.html', 'report.md', 1)
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pyadvt.report.figures import plot
from pyadvt.report.results import find_results, read_result, validate_result, write_result
from pyadvt.utils import distributed
from pyadvt.utils.sweep import atomic_write_text

__all__ = ["Report", "render_report", "load_results", "publish"]

_MAX_RAW_CHARS = 200_000


@dataclasses.dataclass(frozen=True)
class Report:
    """Paths written by :func:`render_report`.

    A plain record.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> from pyadvt.report import make_result
        >>> rep = render_report(make_result("demo", {}, {"x": 1}), d)
        >>> rep.html.name, rep.markdown.name
        ('report.html', 'report.md')
    """

    html: Path
    markdown: Path
    figures: list[Path]


def load_results(source: Any) -> list[dict]:
    """Results from a dict, a result file, a directory (recursive) or a list of these (validated).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a result is not a valid ``pyadvt.result/1`` (or a directory holds none).
        TypeError: ``source`` is none of these kinds.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> from pyadvt.report import make_result, write_result
        >>> _ = write_result(make_result("demo", {}, {"x": 1}), d)
        >>> [r["kind"] for r in load_results(d)]
        ['demo']
    """
    if isinstance(source, Mapping):
        validate_result(source)
        return [dict(source)]
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = find_results(path)
            if not files:
                raise FileNotFoundError(f"no pyadvt result files (*.json with schema pyadvt.result/1) under {path}")
            return [read_result(f) for f in files]
        return [read_result(path)]
    if isinstance(source, Sequence):
        out = [r for item in source for r in load_results(item)]
        if not out:
            raise ValueError("no results to render")
        return out
    raise TypeError(f"result_or_dir must be a result dict, a path or a list of these, got {type(source).__name__}")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".4g") if math.isfinite(value) else "n/a"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "figure"


def _is_matrix(value: Any) -> bool:
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(r, list) for r in value):
        return False
    width = len(value[0])
    return width >= 2 and all(len(r) == width and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in r) for r in value)


def _walk(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for k, v in data.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, data


def _figure_specs(result: Mapping) -> list[dict]:
    if result.get("figures"):
        return [dict(f) for f in result["figures"]]
    return [{"type": "heatmap", "matrix": value, "title": name}
            for name, value in _walk(result["data"]) if _is_matrix(value)]


def _scalars(result: Mapping) -> list[tuple[str, Any]]:
    if result.get("summary"):
        return list(_walk(result["summary"]))
    return [(k, v) for k, v in _walk(result["data"])
            if v is None or isinstance(v, (int, float, str, bool))][:60]


# -- HTML ------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #4c72b0;padding-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f0f3f8}
figure{display:inline-block;margin:.6em 1em .6em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#555}
pre{background:#f7f7f7;padding:.7em;overflow:auto;font-size:.85em}.muted{color:#777}
"""

_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute("data-figures-total", String(imgs.length));
  document.body.setAttribute("data-figures-rendered", String(ok));
});
</script>
"""


def _html_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    esc = html.escape
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _md_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    def cell(v: Any) -> str:
        return _fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _write_csv(table: Mapping, path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table["columns"])
    for row in table["rows"]:
        writer.writerow(["" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v) for v in row])
    return atomic_write_text(path, buf.getvalue())


def _section(result: Mapping, index: int, fig_dir: Path, out_dir: Path) -> tuple[str, str, list[Path]]:
    esc = html.escape
    kind = result["kind"]
    h: list[str] = [f'<section id="result-{index}"><h2>{esc(kind)}</h2>',
                    f'<p class="muted">created {esc(str(result.get("created", "n/a")))}</p>']
    m: list[str] = [f"## {kind}", "", f"created {result.get('created', 'n/a')}", ""]
    figures: list[Path] = []

    scalars = _scalars(result)
    if scalars:
        h += ["<h3>Summary</h3>", _html_table(scalars, ["quantity", "value"])]
        m += ["### Summary", "", _md_table(scalars, ["quantity", "value"]), ""]

    specs = _figure_specs(result)
    if specs:
        h.append("<h3>Figures</h3>")
        m += ["### Figures", ""]
    for j, spec in enumerate(specs):
        title = str(spec.get("title") or spec.get("type"))
        path = plot(spec, fig_dir / f"{index:02d}-{j:02d}-{_slug(title)}.png")
        figures.append(path)
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = spec.get("caption") or title
        h.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(title)}">'
                 f"<figcaption>{esc(str(caption))}</figcaption></figure>")
        m += [f"![{title}]({path.relative_to(out_dir).as_posix()})", "", f"*{caption}*", ""]

    for j, table in enumerate(result.get("tables", [])):
        title = str(table.get("title", "Table"))
        csv_path = _write_csv(table, out_dir / "tables" / f"{index:02d}-{j:02d}-{_slug(title)}.csv")
        h += [f"<h3>{esc(title)}</h3>", _html_table(table["rows"], table["columns"])]
        m += [f"### {title}", "", _md_table(table["rows"], table["columns"]), "",
              f"[CSV]({csv_path.relative_to(out_dir).as_posix()})", ""]

    if result.get("notes"):
        h += ["<h3>Notes</h3>", "<ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in result["notes"]) + "</ul>"]
        m += ["### Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]

    if result["timings"]:
        rows = [(k, v) for k, v in result["timings"].items()]
        h += ["<h3>Timings (s)</h3>", _html_table(rows, ["phase", "seconds"])]
        m += ["### Timings (s)", "", _md_table(rows, ["phase", "seconds"]), ""]

    config_yaml = yaml.safe_dump(result["config"], sort_keys=False) if result["config"] else "{}\n"
    h += ["<h3>Configuration</h3>", f"<pre>{esc(config_yaml)}</pre>"]
    m += ["### Configuration", "", "```yaml", config_yaml.rstrip("\n"), "```", ""]

    env_rows = list(result["environment"].items())
    h += ["<h3>Environment</h3>", _html_table(env_rows, ["item", "value"])]
    m += ["### Environment", "", _md_table(env_rows, ["item", "value"]), ""]

    raw = json.dumps(result["data"], indent=1)
    if len(raw) > _MAX_RAW_CHARS:
        raw = raw[:_MAX_RAW_CHARS] + f"\n... ({len(raw) - _MAX_RAW_CHARS} more characters in the result file)"
    h += [f"<details><summary>Raw data</summary><pre>{esc(raw)}</pre></details>", "</section>"]
    return "\n".join(h), "\n".join(m), figures


def render_report(result_or_dir: Any, out_dir: str | os.PathLike, *, title: str | None = None) -> Report:
    """Write ``report.html`` (self-contained), ``report.md`` and ``figures/`` for the given results.

    Args:
        result_or_dir: a result dict, a result JSON file, a directory searched recursively for
            result files, or a list of these.
        out_dir: output directory (created).
        title: page title (default: "pyadvt report: <kinds>").

    Returns:
        :class:`Report` with the paths written.

    Raises:
        FileNotFoundError, ValueError, TypeError: as :func:`load_results`.
        OSError: ``out_dir`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> from pyadvt.report import make_result
        >>> sorted(p.name for p in os.scandir(render_report(make_result("demo", {}, {"x": 1}), d).html.parent))[:2]
        ['figures', 'report.html']
    """
    results = load_results(result_or_dir)
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    title = title or "pyadvt report: " + ", ".join(dict.fromkeys(r["kind"] for r in results))
    html_parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                  f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
                  f"<h1>{html.escape(title)}</h1>"]
    md_parts = [f"# {title}", ""]
    if len(results) > 1:
        html_parts.append("<ul>" + "".join(
            f'<li><a href="#result-{i}">{html.escape(r["kind"])}</a></li>' for i, r in enumerate(results)) + "</ul>")
    figures: list[Path] = []
    for i, result in enumerate(results):
        h, m, figs = _section(result, i, fig_dir, out_dir)
        html_parts.append(h)
        md_parts.append(m)
        figures += figs
    html_parts += [_SCRIPT, "</body></html>"]
    html_path = atomic_write_text(out_dir / "report.html", "\n".join(html_parts) + "\n")
    md_path = atomic_write_text(out_dir / "report.md", "\n".join(md_parts) + "\n")
    return Report(html=html_path, markdown=md_path, figures=figures)


def publish(result: Mapping, out_dir: str | os.PathLike, *, report: bool = True,
            title: str | None = None) -> dict[str, Path]:
    """Write ``out_dir/result.json`` and, with ``report``, ``report.html``/``report.md``/``figures/``.

    Only rank 0 writes under ``torchrun`` (other ranks get ``{}``). Returns the written paths as
    ``{"result": ..., "html": ..., "markdown": ...}``. This is the last step of every experiment.

    Raises:
        ValueError: ``result`` is not a valid ``pyadvt.result/1``.  OSError: ``out_dir`` cannot be written.

    Example:
        >>> import tempfile
        >>> from pyadvt.report.results import make_result
        >>> sorted(publish(make_result("demo", {}, {"x": 1}), tempfile.mkdtemp()))
        ['html', 'markdown', 'result']
    """
    if not distributed.is_main():
        return {}
    out_dir = Path(out_dir)
    paths = {"result": write_result(result, out_dir / "result.json")}
    if report:
        rep = render_report(read_result(paths["result"]), out_dir, title=title)
        paths.update(html=rep.html, markdown=rep.markdown)
    return paths
