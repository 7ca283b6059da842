"""Docs that cannot rot: every ```python block of the site's pages runs, the home page's set-up
commands are the README's, and the benchmark tables are the README's.

README.md's own python blocks are executed by tests/docs/test_readme.py (this file uses the same block
pattern and does not run them twice). Pages not covered here, and why:
docs/tutorials/*.md are rendered from examples/*.py, which tests/docs/test_examples.py runs and checks
against the pages; docs/api/*.md hold mkdocstrings directives, not code (their doctests run under
``pytest --doctest-modules pyadvt``). A ```py block (not ```python) is shown but not run: use it
only for code that needs the user's files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", flags=re.S)  # the pattern of tests/docs/test_readme.py
SKIPPED_DIRS = ("tutorials", "api")
SLOW_PAGES = {"models.md", "index.md"}  # hub ResNet-18 + timm ViT; training two digits models


def site_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in SKIPPED_DIRS)


def pages_with_code() -> list:
    out = []
    for page in site_pages():
        if BLOCK.search(page.read_text(encoding="utf-8")):
            rel = page.relative_to(DOCS).as_posix()
            out.append(pytest.param(page, id=rel, marks=[pytest.mark.slow] if rel in SLOW_PAGES else []))
    return out


@pytest.mark.parametrize("page", pages_with_code())
def test_python_blocks_of_the_page_run(page):
    matplotlib.use("Agg")
    namespace = {"__name__": "docs_example"}  # one namespace per page: later blocks may use earlier ones
    t0 = time.perf_counter()
    for i, block in enumerate(BLOCK.findall(page.read_text(encoding="utf-8"))):
        exec(compile(block, f"{page.relative_to(ROOT)} block {i + 1}", "exec"), namespace)
    assert time.perf_counter() - t0 < 120


def test_the_site_has_code_to_run_and_readme_is_covered_by_test_readme():
    assert len(pages_with_code()) >= 2
    assert BLOCK.pattern in (ROOT / "tests" / "docs" / "test_readme.py").read_text(encoding="utf-8").replace("\\n", "\n") \
        or 'r"```python\\n(.*?)```"' in (ROOT / "tests" / "docs" / "test_readme.py").read_text(encoding="utf-8")


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_home_page_set_up_commands_are_the_readmes():
    readme = _bash_blocks(README.read_text(encoding="utf-8"))
    home = _bash_blocks((DOCS / "index.md").read_text(encoding="utf-8"))
    assert len(readme) >= 2 and home[:2] == readme[:2], "copy the README's two set-up commands into docs/index.md"


def _table_rows(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]


def test_benchmark_page_holds_the_readmes_performance_section():
    readme = README.read_text(encoding="utf-8")
    performance = readme[readme.index("## Performance"):]
    performance = performance[:m.start()] if (m := re.search(r"^## (?!Performance)", performance[3:], re.M)) \
        else performance
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    missing = [row for row in _table_rows(performance) if row not in page]
    assert not missing, f"docs/benchmarks.md lacks README Performance rows (copy them): {missing[:3]}"
    bold = re.findall(r"\*\*([^*]+)\*\* \(", performance)
    assert bold and all(f"**{b}**" in page for b in bold)


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    missing = [p for p in pages if p not in nav]
    assert not missing, f"add to the nav of mkdocs.yml: {missing}"
