"""The documentation site builds strictly: ``mkdocs build --strict`` (broken links, unknown anchors,
pages missing from the nav, API names mkdocstrings cannot collect and docstrings griffe cannot parse
all fail it). Needs the docs extra: ``pip install -e ".[docs]"``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs", reason='the docs extra is not installed (pip install -e ".[docs]")')
pytest.importorskip("material", reason='mkdocs-material is not installed (pip install -e ".[docs]")')
pytest.importorskip("mkdocstrings_handlers.python", reason='mkdocstrings[python] is not installed')


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    proc = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/attacks/index.html", "tutorials/choose_source/index.html",
                 "theory/index.html", "benchmarks/index.html", "changelog/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "attacks" / "index.html").read_text(encoding="utf-8")
    assert 'id="pyadvt.attacks.PGD"' in api and "Examples:" in api  # rendered from the docstring
    assert (site / "tutorials" / "choose_source" / "figure_1.png").is_file()


@pytest.mark.slow
def test_a_broken_link_fails_the_build(tmp_path):
    # a copy of the docs with one broken link: the strict build must refuse it
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("api", "__pycache__"))
    (docs / "index.md").write_text("# Home\n\n[missing](no_such_page.md)\n", encoding="utf-8")
    nav_free = "\n".join(["site_name: t", f"docs_dir: {docs}", "strict: true", "theme: {name: material}",
                          "validation: {unrecognized_links: warn, omitted_files: info}"])
    config = tmp_path / "mkdocs.yml"
    config.write_text(nav_free, encoding="utf-8")
    proc = _build(config, tmp_path / "site")
    assert proc.returncode != 0 and "no_such_page.md" in proc.stderr
