"""The tutorials in examples/ run (fast setting) and their rendered pages show their current code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import render_tutorials  # noqa: E402

# what each tutorial must print at the fast setting: the claims its page makes
EXPECTED = {
    "choose_source": [r"tau1\*tau2 picks: cnn, 100% target-like", r"the linear probe picks: cnn, 100% target-like"],
    "choose_surrogate": [r"best surrogate \(mean transfer ASR over attacks and targets\): \S"],
    "robustness_transfer": [r"\(lower for the adversarially trained source\)", r"certified points broken by PGD: none"],
    "check_theorem": [r"every point adversarial along -y w\*: True", r"adversarial along -y w\* at (\d+) of \1\b"],
}


def test_every_tutorial_has_expectations_and_a_page():
    assert set(EXPECTED) == set(render_tutorials.TUTORIALS)
    for name in render_tutorials.TUTORIALS:
        assert (ROOT / "examples" / f"{name}.py").exists()
        assert (render_tutorials.PAGES / f"{name}.md").exists(), f"run python examples/render_tutorials.py {name}"


@pytest.mark.parametrize("name", render_tutorials.TUTORIALS)
def test_page_shows_the_scripts_current_code(name):
    page = (render_tutorials.PAGES / f"{name}.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```python\n(.*?)\n```$", page, flags=re.S | re.M)
    assert shown == render_tutorials.cell_code(ROOT / "examples" / f"{name}.py"), (
        f"docs/tutorials/{name}.md is stale: run python examples/render_tutorials.py {name}")
    for fig in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page):
        assert (render_tutorials.PAGES / fig).is_file(), f"{name}.md shows a missing figure {fig}"


def test_split_cells_separates_prose_code_and_rejects_a_script_without_docstring():
    doc, cells = render_tutorials.split_cells('"""T\n\nIntro."""\n\n# %%\n# ## Head\n#\n# text\nx = 1\n\n# %%\ny = 2\n')
    assert doc == "T\n\nIntro."
    assert [(c.prose, c.code) for c in cells] == [("## Head\n\ntext", "x = 1"), ("", "y = 2")]
    with pytest.raises(ValueError, match="module docstring"):
        render_tutorials.split_cells("x = 1\n")


def test_render_captures_output_and_figures(tmp_path, monkeypatch):
    script = tmp_path / "tiny.py"
    script.write_text('"""Tiny\n\nA tutorial."""\n# %%\n# Prose.\nprint("fast" if __import__("os").environ'
                      '["PYADVT_TUTORIAL_FAST"] == "1" else "full")\n# %%\nimport matplotlib.pyplot as plt\n'
                      'plt.plot([0, 1])\n', encoding="utf-8")
    monkeypatch.setattr(render_tutorials, "EXAMPLES", tmp_path)
    monkeypatch.setattr(render_tutorials, "PAGES", tmp_path / "pages")
    monkeypatch.delenv(render_tutorials.FAST_ENV, raising=False)
    page = render_tutorials.render("tiny", fast=True).read_text(encoding="utf-8")
    assert page.startswith("# Tiny\n\nA tutorial.")
    assert "Prose.\n\n```python\nprint(" in page and "```text\nfast\n```" in page
    assert "![figure 1](tiny/figure_1.png)" in page and (tmp_path / "pages" / "tiny" / "figure_1.png").stat().st_size
    assert "rendered with the fast setting" in page


@pytest.mark.slow
@pytest.mark.parametrize("name", render_tutorials.TUTORIALS)
def test_tutorial_runs_at_the_fast_setting(name):
    env = {**os.environ, render_tutorials.FAST_ENV: "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for pattern in EXPECTED[name]:
        assert re.search(pattern, proc.stdout), f"{name} did not print {pattern!r}:\n{proc.stdout[-3000:]}"
