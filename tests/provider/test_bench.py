"""The benchmark script still runs end to end (a tiny run: no figure is asserted, only that it measured)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import REPO

pytestmark = pytest.mark.integration


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Run bench/bench.py with ``args``; its table and its JSON report."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_bench_runs_and_reports_both_designs(tmp_path: Path) -> None:
    stdout, report = run_bench(tmp_path, "--concurrency", "1", "--requests", "2", "--tokens", "5")
    assert "| design | conc." in stdout, stdout[-3000:]
    # The values in force are printed: here the provider's defaults, derived from the host.
    assert re.search(r"MAX_CONCURRENCY=\d+, WARM_MAX=\d+ \(provider defaults; host: ", stdout), stdout[:2000]
    rows = {row["design"]: row for row in report["rows"]}
    assert set(rows) == {"warm", "cold"}
    for design, row in rows.items():
        assert row["requests"] == 2 and row["errors"] == 0, (design, row)
        assert 0 < row["ttft_p50"] <= row["total_p50"], (design, row)
        assert row["completions_per_s"] > 0 and row["peak_rss_mib"] > 0 and row["cpu_s_per_request"] > 0, row
        # Every request reached the fake upstream, with no tool definitions inflating it.
        assert 0 < row["upstream_overhead_bytes"] < 3 * 1024, (design, row)


def test_conversation_bench_shows_cache_reads_for_real_turns_only(tmp_path: Path) -> None:
    args = ("--conversation", "--turns", "3", "--conversations", "1", "--turn-tokens", "1200")
    stdout, report = run_bench(tmp_path, *args)
    assert "| turn | design |" in stdout, stdout[-3000:]
    turns, flattened = report["runs"]["turns, 1 chat"], report["runs"]["flattened, 1 chat"]
    assert [t["turn"] for t in turns] == [1, 2, 3] == [t["turn"] for t in flattened]
    for previous, turn in itertools.pairwise(turns):
        # Real turns: the previous turn's prompt is read back from the cache.
        assert turn["cache_read"] >= 0.9 * previous["prompt_tokens"], (previous, turn)
    # Flattened: the one growing user block never has a boundary where the last prompt ended.
    assert all(t["cache_read"] == 0 for t in flattened), flattened
    assert all(0 < t["overhead_bytes"] < 3 * 1024 for t in turns + flattened)


def test_mixed_bench_serves_every_app_and_model(tmp_path: Path) -> None:
    # Five requests: four apps' system prompts (one new each time) and a haiku request.
    args = ("--mixed", "--concurrency", "1", "--requests", "5", "--tokens", "5", "--warm-max", "2")
    stdout, report = run_bench(tmp_path, *args)
    assert "| design | conc. | requests | upstream TTFT | TTFT p50" in stdout, stdout[-3000:]
    assert re.search(r"MAX_CONCURRENCY=\d+, WARM_MAX=2 \(set: WARM_MAX; host: ", stdout), stdout[:2000]
    rows = {row["design"]: row for row in report["mixed"]}
    assert set(rows) == {"warm", "cold"}
    assert all(row["errors"] == 0 and row["requests"] == 5 for row in rows.values()), rows
    assert rows["cold"]["warm_hit_rate"] == 0
    # Late binding: a spare fits whatever app or model comes next (one may still be starting
    # on a loaded machine).
    assert rows["warm"]["warm_hit_rate"] >= 0.8, rows["warm"]
