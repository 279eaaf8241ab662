"""The run's pages render in a real browser: headless Chromium draws a run's `index.html` and its
evaluation page to PNG (the expected size, not one flat colour) and dumps their DOM, whose text
must hold the headline and no raw markup. A page shown as source (what a browser does with an HTML
report saved without `.html`, as kfp names artifacts) would put "<!DOCTYPE" and "<svg" in the
text: the last test checks that this check does catch it.

The pages come from a small fake run made by the real page-building code
(`pipelines.local.write_run_page`, `signpipe.pages`, `signpipe.reports`), so the test takes
seconds. Chromium is required, not optional: CI installs it (`apt-get install chromium`), and a
machine without it fails here with that message."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipelines.local import LocalRun, TaskTiming, write_run_page
from signpipe.fingerspelling.report import fingerspelling_evaluation_page
from signpipe.reports import gate_report

WINDOW = (1200, 1600)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is not installed, so the pages cannot be rendered: install it with `apt-get install chromium` "
                "(Debian; CI installs it)")


def browse(*arguments: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


def screenshot(page: Path, out: Path) -> Path:
    browse(f"--screenshot={out}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri())
    return out


class _Text(HTMLParser):
    """The text a reader sees: every text node, outside <style>, <script> and <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "script", "title"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def rendered_dom(page: Path) -> tuple[str, list[str]]:
    """(visible text, element tags) of the DOM Chromium built from `page`."""
    parser = _Text()
    parser.feed(browse("--dump-dom", page.as_uri()).stdout)
    return " ".join(parser.parts), parser.tags


def png_pixels(path: Path) -> np.ndarray:
    """`[height, width, channels]` uint8 pixels of a PNG (decoded by TensorFlow, a dependency of the
    export step: no image library is needed just for this)."""
    import tensorflow as tf

    return tf.io.decode_png(path.read_bytes(), channels=3).numpy()


def check_rendered(png: Path) -> None:
    assert png.is_file() and png.stat().st_size > 10_000, f"{png}: no screenshot"
    pixels = png_pixels(png)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0]), pixels.shape
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert counts.max() / counts.sum() < 0.97, "the screenshot is (almost) one colour: nothing was drawn"
    assert len(colours) > 50, f"only {len(colours)} colours: no text or charts were drawn"


def fake_corpus(root: Path, rows: list[tuple[int, str]]) -> Path:
    root.mkdir(parents=True)
    lines = ["path,participant_id,sequence_id,phrase"] + [f"x.parquet,{p},{k},{phrase}" for k, (p, phrase) in enumerate(rows)]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> LocalRun:
    """A finished fingerspelling run's folder: corpora, an evaluation with its page, a gate
    verdict and page, written by the real page code; then its index page."""
    run_dir = tmp_path_factory.mktemp("runs") / "fingerspelling-smoke-1"
    corpus = fake_corpus(run_dir / "corpus", [(1, "4514 hill boulevard"), (2, "kim1@hazel.info"), (3, "1-800-793-3362")])
    held_out = fake_corpus(run_dir / "eval-corpus", [(7, "jobswalker.net"), (8, "97 kane drive"), (8, "+39 66 5063 4982")])
    job = run_dir / "pipeline" / "signpipe-fingerspelling-1"
    rows = [(0, "jobswalker.net", "jobwalker.net"), (1, "97 kane drive", "97 kane dr"), (2, "+39 66 5063 4982", "")]
    evaluation = {"score": 0.62, "metric": "normalized_levenshtein", "n_characters": 43, "model_mb": 0.4, "data": str(held_out),
                  "latency_ms": {"p50": 5.0, "p95": 9.0, "mean": 5.5, "max": 9.5}, "interpreter": "ai_edge_litert", "threads": 1}
    (job / "evaluate" / "evaluation").mkdir(parents=True)
    (job / "evaluate" / "evaluation" / "evaluation.json").write_text("{}\n")
    (job / "evaluate" / "evaluation" / "predictions.csv").write_text("sequence_id,truth,prediction,latency_ms\n")
    (job / "evaluate" / "report.html").write_text(fingerspelling_evaluation_page(evaluation, rows, [4.0, 5.5, 9.5]))
    criteria = [{"name": "model size", "measured": 0.4, "threshold": 40.0, "comparison": "<=", "unit": "MB", "passed": True},
                {"name": "normalized_levenshtein", "measured": 0.62, "threshold": 0.5, "comparison": ">=", "passed": True}]
    (job / "gate").mkdir()
    (job / "gate" / "verdict").write_text(json.dumps({"passed": True, "criteria": criteria, "champion": None}) + "\n")
    (job / "gate" / "report.html").write_text(gate_report(criteria, True, context={"evaluation corpus": f"`{held_out}`"}))
    (run_dir / "pipeline.log").write_text("log\n")
    (run_dir / "summary.json").write_text("{}\n")
    run = LocalRun(
        run_dir=run_dir, pipeline="fingerspelling", preset="smoke", succeeded=True, seconds=72.0,
        tasks=[TaskTiming("evaluate", 1.3, "SUCCESS"), TaskTiming("gate", 1.2, "SUCCESS")],
        outputs={"evaluation": {"uri": str(job / "evaluate" / "evaluation"), "metadata": {}},
                 "verdict": {"uri": str(job / "gate" / "verdict"), "metadata": {}}},
        summary={"corpus": str(corpus), "eval_corpus": str(held_out), "score": 0.62, "metric": "normalized_levenshtein",
                 "eval_sequences": 3, "gate": "passed", "gate_failed": [], "model_mb": 0.4, "quantize": "fp16",
                 "latency_ms": {"mean": 5.5, "p50": 5.0, "p95": 9.0}, "plumbing": True},
    )
    write_run_page(run)
    return run


def test_the_run_page_renders_as_html(fake_run, tmp_path):
    index = fake_run.run_dir / "index.html"
    check_rendered(screenshot(index, tmp_path / "index.png"))
    text, tags = rendered_dom(index)
    assert "fingerspelling run (smoke): finished" in text and "vs trivial baseline" in text and "gate PASSED" in text
    assert "<!DOCTYPE" not in text and "<svg" not in text and "<table" not in text
    assert {"h1", "table", "a"} <= set(tags)


def test_the_evaluation_page_renders_its_charts(fake_run, tmp_path):
    page = next((fake_run.run_dir / "pipeline").rglob("evaluate/report.html"))
    check_rendered(screenshot(page, tmp_path / "evaluation.png"))
    text, tags = rendered_dom(page)
    assert "Fingerspelling: evaluation" in text and "Score by phrase kind" in text and "Most confused characters" in text
    assert "<!DOCTYPE" not in text and "<svg" not in text
    assert "svg" in tags and "rect" in tags  # the latency histogram is drawn, not printed


def test_a_page_without_the_html_suffix_would_show_as_source(fake_run, tmp_path):
    """The control: the same page saved the way kfp names an artifact (no suffix) is shown as
    text, and the checks above would catch it."""
    raw = tmp_path / "report"
    raw.write_bytes(next((fake_run.run_dir / "pipeline").rglob("evaluate/report.html")).read_bytes())
    text, tags = rendered_dom(raw)
    assert "<!DOCTYPE" in text and "<svg" in text and "svg" not in tags
