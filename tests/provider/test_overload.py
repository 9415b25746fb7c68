"""bench/overload.py: it tells every way a request can end, and runs end to end (a tiny run).

The first test serves scripted endings from a small aiohttp app (no proxy): a driver that
called a cut stream or a 429 without Retry-After "completed" or "refused" would make the fleet
load test (tests/roles/test_fleet_load.py) pass blind. The second runs the script itself against
the local proxy it starts, with two slots and a one-second queue timeout, so that both clean
endings must occur.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.stack import REPO, free_port

sys.path.insert(0, str(REPO / "bench"))
import overload


def chunk(text: str, finish: str | None = None) -> bytes:
    body = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def scripted(request: web.Request) -> web.StreamResponse:
    """Request N of the driver ends the way ENDINGS[N] says."""
    body = await request.json()
    index = int(re.search(r"Overload request (\d+)\.", body["messages"][-1]["content"]).group(1))  # type: ignore[union-attr]
    ending = ENDINGS[index]
    words = overload.answer_text(index, 3).split(" ")
    if ending == "refused":
        return web.json_response({"error": "busy"}, status=429, headers={"Retry-After": "2"})
    if ending == "429_no_retry_after":
        return web.json_response({"error": "busy"}, status=429)
    if ending == "http_500":
        return web.json_response({"error": "boom"}, status=500)
    if ending == "hung":
        await asyncio.sleep(3)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Upstream-Addr": "10.0.0.9:4000"})
    await response.prepare(request)
    if ending == "wrong_text":
        words = [*words[:1], "r99w1 ", *words[2:]]
    sent = words[:2] if ending == "cut" else words
    for n, word in enumerate(sent):
        await response.write(chunk(word + (" " if n < len(words) - 1 else "")))
    if ending == "error_event":
        await response.write(b'data: {"error": {"message": "upstream died", "code": "500"}}\n\n')
        return response
    if ending != "cut":
        await response.write(chunk("", "stop"))
        await response.write(b"data: [DONE]\n\n")
    return response


ENDINGS = ["completed", "refused", "429_no_retry_after", "http_500", "cut", "wrong_text", "error_event", "hung"]


@pytest.fixture
async def scripted_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", scripted)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_driver_classifies_every_ending(scripted_server: str) -> None:
    args: Any = overload.parser().parse_args(
        ["--requests", str(len(ENDINGS)), "--concurrency", str(len(ENDINGS)), "--tokens", "3", "--request-timeout", "1"]
    )
    outcomes, _ = await overload.drive(scripted_server, "sk-test", args)
    assert [o.kind for o in outcomes] == ENDINGS
    assert outcomes[1].retry_after == "2" and outcomes[0].upstream == "10.0.0.9:4000"
    report = overload.Report("scripted", len(ENDINGS), len(ENDINGS), 3, 0.0, 1.0, outcomes)
    assert (report.completed, report.refused) == (1, 1)
    assert report.failures == {kind: 1 for kind in ENDINGS[2:]}
    assert "| 1.00 | 1 | 1 | 429_no_retry_after 1, cut 1, error_event 1" in overload.table(report)


@pytest.mark.integration
def test_overload_script_runs_against_a_local_proxy(tmp_path: Path) -> None:
    out = tmp_path / "overload.json"
    # Two slots, 8 at a time, streams of at least 0.8 s: the 7th of the first 8 waits at least
    # 2.4 s, more than the 1 s queue timeout, so refusals are certain; the first two complete.
    argv = ["--requests", "12", "--concurrency", "8", "--tokens", "5", "--token-delay", "0.2"]
    argv += ["--max-concurrency", "2", "--queue-timeout", "1", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "overload.py"), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| completions/s | completed | refused (429 + Retry-After) |" in done.stdout, done.stdout
    assert "MAX_CONCURRENCY=2, WARM_MAX=2" in done.stdout and "Load average at the end: " in done.stdout
    report = json.loads(out.read_text())
    assert report["failures"] == {}, report["outcomes"]
    assert report["completed"] >= 2 and report["refused"] >= 1, report
    assert report["completed"] + report["refused"] == 12
    assert all(int(value) >= 1 for value in report["retry_after"]), report["retry_after"]
    assert report["peak_memory_mib"] > 0
    # The proxy's CLI processes at the end: never more than its slots.
    assert report["extra"]["cli_processes_after"] <= 2


def test_parser_defaults_are_the_issue_s_run() -> None:
    args: argparse.Namespace = overload.parser().parse_args([])
    assert (args.requests, args.concurrency, args.max_concurrency, args.tokens) == (200, 32, 4, 20)
