"""The docs' benchmark tables are what the committed benchmark JSON gives (bench/report.py).

A figure lives in one place, the JSON a benchmark wrote; a page shows it between
``<!-- bench:NAME -->`` markers. These tests fail when a page's block differs from what its JSON
renders to, and show, for every block, that the check sees a figure changed on either side.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import REPO

sys.path.insert(0, str(REPO / "bench"))
import report

# Where each block is shown: README carries the one summary table, docs/performance.md the rest.
PAGES = {name: "docs/performance.md" for name in report.BENCHMARKS} | {"summary": "README.md"}


def blocks(text: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in report.BLOCK.finditer(text)}


def test_every_benchmark_block_in_the_docs_is_what_its_json_gives() -> None:
    assert report.stale() == [], "run `python bench/report.py` (the JSON is the source of the figures)"
    for name, page in PAGES.items():
        shown = blocks((REPO / page).read_text(encoding="utf-8"))
        assert name in shown, f"{page} has no `<!-- bench:{name} -->` block"
        assert "\n| ---" in shown[name], (name, shown[name][:500])


@pytest.mark.parametrize("name", sorted({b.json for b in report.BENCHMARKS.values()}))
def test_every_benchmark_json_says_when_where_and_how_loaded(name: str) -> None:
    """A figure from a busy machine is no benchmark of the gateway: each JSON records the load."""
    data = json.loads((REPO / name).read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", data["measured_at"]), data["measured_at"]
    machine = data["machine"]
    assert machine["host"] and len(machine["load_average_at_start"]) == 3, machine
    assert len(machine["load_average_at_end"]) == 3, machine


def copy_of_the_repository(tmp_path: Path) -> Path:
    """The benchmarks' JSON and the pages that show it, under ``tmp_path`` (the rest of the repository left out)."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "bench" / "results", tmp_path / "bench" / "results")
    return tmp_path


def _first_row(data: dict[str, Any], key: str, field: str, value: Any) -> None:
    data[key][0][field] = value


def _conversation(data: dict[str, Any], field: str, value: Any) -> None:
    for turns in data["runs"].values():
        for turn in turns:
            turn[field] = value


# For each block: a change to one figure of its JSON, and the text the page shows after the rewrite.
CHANGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "day": (lambda d: next(iter(d["designs"].values()))["overhead"].__setitem__("p90", 9.87), " / 9.87 / "),
    "summary": (lambda d: [r.__setitem__("completions_per_s", 98.76) for r in d["rows"]], "| 98.76 |"),
    "single": (lambda d: _first_row(d, "rows", "total_p95", 98.765), "| 98.765 |"),
    "conversation": (lambda d: _conversation(d, "prompt_tokens", 98765), "| 98,765 |"),
    "mixed": (lambda d: _first_row(d, "mixed", "warm_hit_rate", 0.37), "| 37% |"),
    "overload": (lambda d: d.__setitem__("completed", 987), "| 987 |"),
}


def test_every_block_has_a_change_to_check() -> None:
    assert set(CHANGES) == set(report.BENCHMARKS) == set(PAGES)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_figure_changed_in_the_json_makes_the_page_stale_until_rewritten(tmp_path: Path, name: str) -> None:
    root = copy_of_the_repository(tmp_path)
    assert report.stale(root) == []
    path = root / report.BENCHMARKS[name].json
    data = json.loads(path.read_text(encoding="utf-8"))
    change, shown = CHANGES[name]
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    page = root / PAGES[name]
    assert any(entry.startswith(f"{PAGES[name]} (") for entry in report.stale(root)), report.stale(root)
    page.write_text(report.rewritten(page.read_text(encoding="utf-8"), root), encoding="utf-8")
    assert PAGES[name] not in " ".join(report.stale(root))
    assert shown in blocks(page.read_text(encoding="utf-8"))[name]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_figure_edited_by_hand_in_the_page_is_stale(tmp_path: Path, name: str) -> None:
    root = copy_of_the_repository(tmp_path)
    page = root / PAGES[name]
    text = page.read_text(encoding="utf-8")
    body = blocks(text)[name]
    # The last digit of the table's first row (after the header and the `| --- |` line) goes up by one.
    rows = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    row = rows[1]
    index = max(i for i, c in enumerate(row) if c.isdigit())
    edited_row = row[:index] + str((int(row[index]) + 1) % 10) + row[index + 1 :]
    page.write_text(text.replace(body, body.replace(row, edited_row, 1)), encoding="utf-8")
    assert report.stale(root) == [f"{PAGES[name]} ({', '.join(sorted(blocks(text)))})"]


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
