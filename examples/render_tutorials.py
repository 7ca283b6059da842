"""Run the tutorials in examples/ and write their pages for the documentation site.

    python examples/render_tutorials.py            # all tutorials, full setting (minutes on 2 CPU cores)
    python examples/render_tutorials.py --fast     # the fast setting (what the test suite runs)
    python examples/render_tutorials.py choose_source check_theorem

A tutorial is a plain Python script split into cells by ``# %%`` lines (the "percent" format that
VS Code, Spyder and jupytext read). The comment lines at the top of a cell are its prose (Markdown);
the rest is code. The renderer executes the cells in order in one namespace, captures what each
prints, saves every matplotlib figure left open after a cell as a PNG, and writes
``docs/tutorials/<name>.md`` (prose, code, output, figures) plus ``docs/tutorials/<name>/*.png``.

Why this and not mkdocs-gallery or mkdocs-jupyter: those execute every example on every
``mkdocs build``; here training the small zoos takes minutes on a 2-core machine, so the pages are
rendered once, committed, and the build stays fast and deterministic. What keeps them honest is
``tests/docs/test_examples.py``: it runs every tutorial at its fast setting and fails when a page's code
differs from its script (re-render after editing a script).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PAGES = ROOT / "docs" / "tutorials"
# page order; each is examples/<name>.py
TUTORIALS = ("choose_source", "choose_surrogate", "robustness_transfer", "check_theorem")
FAST_ENV = "PYADVT_TUTORIAL_FAST"


RUN_TIME = "\0run-time\0"  # token in the page's note; render() substitutes the measured run time


def _duration(seconds: float) -> str:
    """``'42 s'`` or ``'12 min 5 s'``.

    >>> _duration(41.6), _duration(725.2)
    ('42 s', '12 min 5 s')
    """
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"


def _threads() -> str:
    """The CPU setting a run used, for the page (torch's intra-op thread count)."""
    import torch

    n = torch.get_num_threads()
    return f"{n} CPU thread{'s' if n != 1 else ''}"


@dataclass
class Cell:
    prose: str  # Markdown
    code: str   # Python


def split_cells(source: str) -> tuple[str, list[Cell]]:
    """``(module docstring, cells)`` of a percent-format script.

    >>> q = '"' * 3
    >>> doc, cells = split_cells(q + 'Title.\\n\\nIntro.' + q + '\\n# %%\\n# Some *prose*.\\nx = 1\\n# %%\\nprint(x)\\n')
    >>> doc, [(c.prose, c.code) for c in cells]
    ('Title.\\n\\nIntro.', [('Some *prose*.', 'x = 1'), ('', 'print(x)')])
    """
    m = re.match(r'\s*"""(.*?)"""\n', source, flags=re.S)
    if not m:
        raise ValueError("a tutorial starts with a module docstring (its title and introduction)")
    doc, rest = m.group(1).strip(), source[m.end():]
    cells = []
    for chunk in re.split(r"^# %%[^\n]*\n", rest, flags=re.M):
        lines = chunk.split("\n")
        prose = []
        while lines and (lines[0].startswith("# ") or lines[0] == "#"):
            prose.append(lines.pop(0)[2:])
        code = "\n".join(lines).strip("\n")
        if prose or code.strip():
            cells.append(Cell("\n".join(prose).strip(), code))
    return doc, cells


def cell_code(path: Path) -> list[str]:
    """The code of every cell of ``path`` (what its page must show)."""
    return [c.code for c in split_cells(path.read_text(encoding="utf-8"))[1] if c.code.strip()]


def render(name: str, fast: bool) -> Path:
    """Execute ``examples/<name>.py`` cell by cell and write its page; returns the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    script = EXAMPLES / f"{name}.py"
    doc, cells = split_cells(script.read_text(encoding="utf-8"))
    title, _, intro = doc.partition("\n")
    fig_dir = PAGES / name
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    os.environ[FAST_ENV] = "1" if fast else "0"
    namespace = {"__name__": "__main__", "__file__": str(script)}
    out = [f"# {title.strip()}", "", intro.strip(), "",
           f"!!! note \"Run it\"\n    `python examples/{name}.py` runs this page as a script "
           f"(`{FAST_ENV}=1` for the fast setting the test suite uses). This page was rendered with "
           f"the {'fast' if fast else 'full'} setting by `python examples/render_tutorials.py` "
           f"in {RUN_TIME} on the development machine ({_threads()}).", ""]
    n_fig = 0
    t0 = time.perf_counter()
    for cell in cells:
        if cell.prose:
            out += [cell.prose, ""]
        if not cell.code.strip():
            continue
        out += ["```python", cell.code, "```", ""]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(cell.code, str(script), "exec"), namespace)
        text = buf.getvalue().rstrip()
        if text:
            out += ["```text", text, "```", ""]
        for num in plt.get_fignums():
            n_fig += 1
            png = fig_dir / f"figure_{n_fig}.png"
            plt.figure(num).savefig(png, dpi=90, bbox_inches="tight")
            out += [f"![figure {n_fig}]({name}/{png.name})", ""]
        plt.close("all")
    took = _duration(time.perf_counter() - t0)
    out += [f"*Rendered ({'fast' if fast else 'full'} setting) in {took} on the development machine "
            f"({_threads()}).*", ""]
    page = PAGES / f"{name}.md"
    page.write_text("\n".join(out).replace(RUN_TIME, took, 1), encoding="utf-8")
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"tutorials to render (default all: {', '.join(TUTORIALS)})")
    parser.add_argument("--fast", action="store_true", help="the fast setting (as the test suite)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(TUTORIALS))
    if unknown:
        parser.error(f"unknown tutorial(s) {unknown}; choose from {', '.join(TUTORIALS)}")
    sys.path.insert(0, str(EXAMPLES))
    for name in args.names or TUTORIALS:
        t0 = time.perf_counter()
        page = render(name, args.fast)
        print(f"{page.relative_to(ROOT)}: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
