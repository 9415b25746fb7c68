"""The docs' benchmark tables are what the committed benchmark JSON gives (bench/report.py).

A figure lives in one place, the JSON a benchmark wrote; a page shows it between
``<!-- bench:NAME -->`` markers. These tests fail when a page's block differs from what its JSON
renders to, and show that the check sees a figure changed on either side.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.stack import REPO

sys.path.insert(0, str(REPO / "bench"))
import report


def test_every_benchmark_block_in_the_docs_is_what_its_json_gives() -> None:
    assert report.stale() == [], "run `python bench/report.py` (the JSON is the source of the figures)"
    page = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    (block,) = [m for m in report.BLOCK.finditer(page) if m["name"] == "day"]
    assert "| requests (failed) |" in block["body"], block["body"][:500]


def copy_of_the_repository(tmp_path: Path) -> Path:
    """The day benchmark's JSON and the page that shows it, under ``tmp_path`` (the rest of the repository left out)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench" / "results").mkdir(parents=True)
    shutil.copy(REPO / "docs" / "performance.md", tmp_path / "docs" / "performance.md")
    shutil.copy(REPO / report.BENCHMARKS["day"].json, tmp_path / report.BENCHMARKS["day"].json)
    return tmp_path


def test_a_figure_changed_in_the_json_makes_the_page_stale_until_rewritten(tmp_path: Path) -> None:
    root = copy_of_the_repository(tmp_path)
    assert report.stale(root) == []
    path = root / report.BENCHMARKS["day"].json
    data = json.loads(path.read_text(encoding="utf-8"))
    design = next(iter(data["designs"].values()))
    design["overhead"]["p90"] = 9.87
    path.write_text(json.dumps(data), encoding="utf-8")
    assert report.stale(root) == ["docs/performance.md (day)"]
    page = root / "docs" / "performance.md"
    page.write_text(report.rewritten(page.read_text(encoding="utf-8"), root), encoding="utf-8")
    assert report.stale(root) == []
    assert " / 9.87 / " in page.read_text(encoding="utf-8")


def test_a_figure_edited_by_hand_in_the_page_is_stale(tmp_path: Path) -> None:
    root = copy_of_the_repository(tmp_path)
    page = root / "docs" / "performance.md"
    text = page.read_text(encoding="utf-8")
    body = next(m for m in report.BLOCK.finditer(text) if m["name"] == "day")["body"]
    edited = body.replace("| requests (failed) |", "| requests (failed) | 1 |", 1)
    assert edited != body
    page.write_text(text.replace(body, edited), encoding="utf-8")
    assert report.stale(root) == ["docs/performance.md (day)"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("<!-- bench:nosuch -->\n<!-- /bench:nosuch -->\n", "unknown benchmark block `bench:nosuch`"),
        ("<!-- bench:day -->\nno end\n", "is not closed"),
    ],
)
def test_a_block_that_cannot_be_rendered_is_named(tmp_path: Path, block: str, message: str) -> None:
    root = copy_of_the_repository(tmp_path)
    (root / "docs" / "other.md").write_text(f"# Other\n\n{block}", encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        report.stale(root)
