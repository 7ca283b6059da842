"""HTML/Markdown report rendering, the ``pyadvt report`` command, and a headless-Chromium load check."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest
import yaml

from pyadvt import cli
from pyadvt.report import make_result, render_report, write_result

FIGS = [
    {"type": "heatmap", "title": "Transfer ASR", "matrix": [[1.0, 0.3], [0.6, None]],
     "row_labels": ["mlp", "cnn"], "col_labels": ["mlp", "cnn"], "caption": "rows: source, columns: target"},
    {"type": "scatter", "title": "tau vs accuracy", "x": [0.1, 0.2, 0.3, 0.5], "y": [0.5, 0.55, 0.7, 0.8]},
    {"type": "bars", "title": "ASR by method", "values": [0.4, 0.6], "lower": [0.3, 0.5], "upper": [0.5, 0.7],
     "labels": ["ST", "AT"]},
    {"type": "curves", "title": "accuracy vs subset", "x": [10, 20, 40], "series": {"FT": [[0.1, 0.3, 0.5],
                                                                                          [0.2, 0.3, 0.6]]}},
]


def _result(kind="zoo_transfer", **kw):
    kw.setdefault("figures", FIGS)
    return make_result(kind, {"eps": 0.1, "train": {"epochs": 2}}, {"asr": [[1.0, 0.3], [0.6, None]]},
                       timings={"train": 3.25}, seeds=[0, 1], summary={"spearman": 0.75},
                       tables=[{"title": "Ranking", "columns": ["source", "score"], "rows": [["mlp", 0.9]]}],
                       notes=["bound is vacuous for 2 of 4 pairs"], **kw)


def test_html_is_self_contained_and_holds_config_and_environment(tmp_path):
    res = _result()
    rep = render_report(res, tmp_path / "out")
    page = rep.html.read_text()
    assert len(rep.figures) == 4 and all(p.exists() for p in rep.figures)
    imgs = re.findall(r'<img src="([^"]+)"', page)
    assert len(imgs) == 4 and all(src.startswith("data:image/png;base64,") for src in imgs)
    for src, path in zip(imgs, rep.figures):
        assert base64.b64decode(src.split(",", 1)[1]) == path.read_bytes()
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing external to load
    assert "eps: 0.1" in page and "epochs: 2" in page  # configuration as YAML
    assert res["environment"]["torch"] in page and "git_commit" in page
    for text in ("spearman", "0.75", "Ranking", "bound is vacuous", "3.25", "rows: source, columns: target"):
        assert text in page


def test_markdown_links_figures_and_config_reloads(tmp_path):
    rep = render_report(_result(), tmp_path)
    md = rep.markdown.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 4 and all((tmp_path / link).exists() for link in links)
    config_block = re.search(r"```yaml\n(.*?)```", md, re.S).group(1)
    assert yaml.safe_load(config_block) == {"eps": 0.1, "train": {"epochs": 2}}
    assert "| spearman | 0.75 |" in md and "| mlp | 0.9 |" in md
    csv_link = re.search(r"\[CSV\]\(([^)]+)\)", md).group(1)
    import csv

    with open(tmp_path / csv_link, newline="") as fh:
        assert list(csv.reader(fh)) == [["source", "score"], ["mlp", "0.9"]]


def test_matrices_in_data_become_heatmaps_without_figure_specs(tmp_path):
    res = make_result("plain", {}, {"grid": {"asr": [[0.1, 0.2], [0.3, 0.4]], "labels": ["a", "b"]},
                                    "vec": [1, 2, 3], "ragged": [[1, 2], [3]], "n": 4})
    rep = render_report(res, tmp_path)
    assert [p.name for p in rep.figures] == ["00-00-grid-asr.png"]
    assert "<td>n</td><td>4</td>" in rep.html.read_text()  # scalars summarised


def test_text_is_escaped(tmp_path):
    res = _result(kind="<script>alert(1)</script>", figures=[])
    page = render_report(res, tmp_path).html.read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_directory_of_results_and_cli(tmp_path, capsys):
    write_result(_result("first"), tmp_path / "runs" / "a")
    write_result(_result("second", figures=[]), tmp_path / "runs" / "b")
    assert cli.main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "rep"), "--title", "Both"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "rep" / "report.html")
    page = (tmp_path / "rep" / "report.html").read_text()
    assert '<a href="#result-0">first</a>' in page and '<a href="#result-1">second</a>' in page
    assert "<title>Both</title>" in page
    assert cli.main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "result file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / "empty")]) == 2
    assert "no pyadvt result files" in capsys.readouterr().err


def test_bad_figure_spec_is_a_clear_error(tmp_path):
    res = _result(figures=[{"type": "heatmap", "title": "broken", "matrix": [[1, 2], [3]]}])
    with pytest.raises(ValueError, match="figure 'broken': matrix must be a rectangular"):
        render_report(res, tmp_path)


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _dump_dom(browser: str, html_path, profile) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", "--dump-dom", html_path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _rendered(dom: str) -> tuple[int, int]:
    body = re.search(r"<body[^>]*>", dom).group(0)
    total = re.search(r'data-figures-total="(\d+)"', body)
    ok = re.search(r'data-figures-rendered="(\d+)"', body)
    assert total and ok, f"the page's load script did not run: {body}"
    return int(total.group(1)), int(ok.group(1))


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (Debian package 'chromium') installed")
def test_figures_render_in_headless_chromium(tmp_path):
    browser = _chromium()
    rep = render_report(_result(), tmp_path / "good")
    assert _rendered(_dump_dom(browser, rep.html, tmp_path / "profile")) == (4, 4)
    # the check can fail: corrupt one embedded PNG and Chromium reports one figure not rendered
    page = rep.html.read_text()
    start = page.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(page[:start] + base64.b64encode(b"not a png").decode() + page[page.index('"', start):])
    assert _rendered(_dump_dom(browser, broken, tmp_path / "profile")) == (4, 3)


def test_publish_writes_result_and_report_on_rank_zero_only(tmp_path, monkeypatch):
    from pyadvt.report import publish, read_result
    from pyadvt.utils import distributed

    paths = publish(_result(), tmp_path / "run")
    assert set(paths) == {"result", "html", "markdown"} and all(p.exists() for p in paths.values())
    assert read_result(paths["result"])["kind"] == "zoo_transfer"
    assert set(publish(_result(), tmp_path / "noreport", report=False)) == {"result"}
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert publish(_result(), tmp_path / "rank1") == {} and not (tmp_path / "rank1").exists()
