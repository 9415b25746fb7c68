#!/usr/bin/env python3
"""A day in the life of a team gateway, replayed in a few minutes: the defaults against the cold design.

Steady traffic flatters a warm pool; a real gateway's day is not steady. This replays one mixed
day (the same seeded schedule for both designs) through a real LiteLLM proxy with this provider,
the Claude Code CLI it bundles and the project's fake upstream, with the official ``openai``
client (and ``anthropic`` for an agent that speaks ``/v1/messages``):

- quiet gaps longer than the idle timeout, the last one ten minutes plus the idle timeout (and
  as long as the maximum age), at the end of which the idle gateway's memory is read before the
  next morning's first requests;
- bursts above the warm set (``MAX_CONCURRENCY`` + 4 requests at once), and smaller ones
  within and beyond the demand window of the first;
- long chats (many turns) that come back after the gaps;
- client tools: a request offers ``tools``, Claude answers with a call, the client sends the
  result back (three apps, three tool sets);
- several apps' system prompts (one of them changing per request), no system prompt, and both
  models (sonnet, haiku).

The day's clock is compressed by ``--factor`` (20: an hour of the day passes in three minutes),
and so are the settings that count time: ``WARM_IDLE_TIMEOUT``, ``WARM_MAX_AGE`` and
``WARM_WINDOW`` are their defaults divided by the factor. Every other setting is the provider's
default (derived from the host), as a user gets it. The proxy is started as the generated
project starts it (``LITELLM_WORKER_STARTUP_HOOKS`` names the provider's warm-up hook when the
installed provider has one), and the day begins the moment ``/health/readiness`` answers.

It prints one Markdown table with both designs side by side (bench/report.py renders it, from
the same JSON that ``--json`` writes and docs/performance.md shows): the time above the
upstream's own first token (p50, p90, p99) for every request and for the first request after
start-up and after each quiet gap, the warm-hit rate, cold starts by reason (from the proxy's
``claude_code_request`` log lines), the RSS of the proxy's process tree (ready, peak, after the
last quiet gap), CPU-seconds per request (proxy and CLI processes), errors and requests.

    python bench/day.py                                    # both designs, factor 20 (about 8 minutes)
    python bench/day.py --json bench/results/day.json      # what docs/performance.md shows
    python bench/day.py --designs defaults --factor 60     # a quicker look at one design
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench.py, report.py

import anthropic
import httpx
import psutil
import report  # the one renderer of the table (docs/performance.md shows the same)
from litellm_claude_code import Settings, read_host
from litellm_claude_code.testing import FakeAnthropicServer, directive
from openai import AsyncOpenAI

import bench  # the proxy config, the process-tree sampler, percentiles, the upstream's own timing
from tests.support import stack

DESIGNS = ("defaults", "cold")
MINUTE = 60.0

# The settings that count time, at their defaults (seconds of the day); the replay divides them by the factor.
TIMED = {"warm_idle_timeout": 300.0, "warm_max_age": 900.0, "warm_window": 300.0}
# The idle gateway is read after this much quiet (the ten minutes), plus the idle timeout.
IDLE_AFTER = 600.0
IDLE_READ = "quiet, memory read"  # the last gap's phase; its end is where the idle gateway is read
LAST_GAP_END = 55 * MINUTE + IDLE_AFTER + TIMED["warm_idle_timeout"]
HOOK = "litellm_claude_code.proxy_hooks:warm_up"

WORDS = bench.WORDS
ONE_SHOT_APPS: tuple[str | None, ...] = (*bench.APPS, None)  # four apps' system prompts, and scripts with none


# --------------------------------------------------------------------------- the tools apps offer


def _function(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }


TOOLSETS: dict[str, list[dict[str, Any]]] = {
    "weather": [
        _function("get_weather", "Current weather for a city", {"city": {"type": "string"}}),
        _function("get_time", "The time now in a city", {"city": {"type": "string"}}),
    ],
    "orders": [_function("lookup_order", "An order's status by its number", {"order": {"type": "string"}})],
    "docs": [
        _function("search_docs", "Search the team's documentation", {"query": {"type": "string"}}),
        _function("read_file", "Read a file of the repository", {"path": {"type": "string"}}),
    ],
}
CALLS = {
    "weather": ("get_weather", "city", "Paris"),
    "orders": ("lookup_order", "order", "A-1042"),
    "docs": ("search_docs", "query", "warm pool sizing"),
}


def anthropic_tools(toolset: str) -> list[dict[str, Any]]:
    return [
        {
            "name": t["function"]["name"],
            "description": t["function"]["description"],
            "input_schema": t["function"]["parameters"],
        }
        for t in TOOLSETS[toolset]
    ]


# --------------------------------------------------------------------------- the day's schedule


@dataclass(frozen=True)
class Phase:
    name: str
    start: float  # day seconds
    end: float
    quiet: bool = False


@dataclass(frozen=True)
class Step:
    """One user turn of a thread: a request, or two when Claude calls a tool and the client answers it."""

    at: float  # day seconds
    text: str
    call_tool: bool = False
    first_after_quiet: bool = False


@dataclass
class Thread:
    """A conversation (or a one-shot request): its steps run in order, each not before its time."""

    name: str
    kind: str  # "chat" or "one-shot"
    api: str  # "chat" (openai, /v1/chat/completions) or "messages" (anthropic, /v1/messages)
    model: str
    system: str | None
    toolset: str | None
    steps: list[Step] = field(default_factory=list)


# The long chats: name, API, model, system prompt, tool set, and each turn's (minute, tool call?).
CHATS: list[tuple[str, str, str, str, str | None, list[tuple[float, bool]]]] = [
    (
        "review",
        "chat",
        "sonnet",
        "You are a code reviewer. Point out bugs first, style last.",
        None,
        [(t, False) for t in (1, 4, 7, 18, 22, 26, 30, 45, 50, 54, LAST_GAP_END / MINUTE)],
    ),
    (
        "support",
        "chat",
        "haiku",
        "You are the support desk of an online shop. Look orders up.",
        "orders",
        [(2, False), (5, True), (19.5, False), (23, True), (27, False), (32, False), (47, True), (52, False)],
    ),
    (
        "agent",
        "messages",
        "sonnet",
        "You are the team's documentation agent. Search before you answer.",
        "docs",
        [(3, True), (21.5, False), (25, True), (28, False), (31, True), (48, True), (53, False)],
    ),
    (
        "writer",
        "chat",
        "sonnet",
        "You help write release notes. Keep them short.",
        None,
        [(t, False) for t in (21.2, 23.5, 26.5, 29.5, 32.5)],
    ),
]


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def day_schedule(seed: int, burst: int) -> tuple[list[Phase], list[Thread]]:
    """The day, in day seconds: the same for both designs (``seed``); ``burst``: the largest burst."""
    rng = random.Random(seed)
    m = MINUTE
    phases = [
        Phase("morning", 0, 8 * m),
        Phase("quiet", 8 * m, 18 * m, quiet=True),
        Phase("back, burst", 18 * m, 21 * m),
        Phase("busy", 21 * m, 33 * m),
        Phase("quiet", 33 * m, 45 * m, quiet=True),
        Phase("afternoon", 45 * m, 55 * m),
        Phase(IDLE_READ, 55 * m, LAST_GAP_END, quiet=True),
        Phase("back after the long quiet", LAST_GAP_END, LAST_GAP_END + m),
    ]
    threads: list[Thread] = []

    def chat(
        name: str, api: str, model: str, system: str, toolset: str | None, turns: list[tuple[float, bool]]
    ) -> None:
        thread = Thread(name, "chat", api, model, system, toolset)
        for number, (minute, tool) in enumerate(turns, 1):
            thread.steps.append(Step(minute * m, f"[{name} t{number}] {words(rng, rng.randint(60, 200))}", tool))
        threads.append(thread)

    # Long chats that come back after the quiet gaps: (minute of the day, whether Claude calls a tool).
    for name, api, model, system, toolset, turns in CHATS:
        chat(name, api, model, system, toolset, turns)

    count = 0

    def one_shot(at: float) -> None:
        nonlocal count
        count += 1
        app = ONE_SHOT_APPS[rng.randrange(len(ONE_SHOT_APPS))]
        system = app.format(now=f"2026-12-07 {9 + int(at // 3600):02d}:{int(at // 60) % 60:02d}") if app else None
        tool = rng.random() < 0.15
        api = "messages" if rng.random() < 0.2 else "chat"
        model = "haiku" if rng.random() < 0.25 else "sonnet"
        name = f"one-{count}"
        thread = Thread(name, "one-shot", api, model, system, "weather" if tool else None)
        thread.steps.append(Step(at, f"[{name}] {words(rng, rng.randint(10, 60))}", tool))
        threads.append(thread)

    def poisson(start: float, end: float, mean_gap: float) -> None:
        at = start + rng.expovariate(1 / mean_gap)
        while at < end:
            one_shot(at)
            at += rng.expovariate(1 / mean_gap)

    def burst_at(at: float, size: int) -> None:
        for _ in range(size):
            one_shot(at)

    one_shot(0.0)  # the first request, the moment the gateway is ready
    poisson(0.5 * m, 8 * m, 1.5 * m)
    burst_at(19 * m, burst)  # above the warm set
    poisson(21 * m, 33 * m, 20)
    burst_at(24 * m, max(2, burst // 2))  # within the demand window of the first burst's traffic
    burst_at(30 * m, max(2, burst - 2))
    poisson(45.5 * m, 55 * m, 2 * m)  # human-paced
    one_shot(LAST_GAP_END + 0.25 * m)  # the next morning, with a chat back below

    # The first step after start-up and after each quiet gap.
    for previous, phase in zip([None, *phases], phases, strict=False):
        if phase.quiet or (previous is not None and not previous.quiet):
            continue
        inside = [(s.at, t, i) for t in threads for i, s in enumerate(t.steps) if phase.start <= s.at < phase.end]
        if inside:
            _, thread, index = min(inside, key=lambda item: item[0])
            step = thread.steps[index]
            thread.steps[index] = Step(step.at, step.text, step.call_tool, first_after_quiet=True)
    return phases, threads


# --------------------------------------------------------------------------- one design's run


@dataclass
class Sample:
    """One request as the client saw it (and, once the log is read, as the proxy logged it)."""

    thread: str
    kind: str  # the thread's kind; "tool result" for the request that answers a tool call
    api: str
    model: str
    phase: str
    at: float  # scheduled, seconds of the run
    sent: float  # seconds of the run
    first_after_quiet: bool
    ttft: float | None = None
    total: float | None = None
    overhead: float | None = None
    error: str | None = None
    call_id: str | None = None
    warm: bool | None = None
    cold_reason: str | None = None
    queue_ms: float | None = None
    cli_start_ms: float | None = None


class Timeline(bench.TreeSampler):
    """The proxy's process tree every ``interval`` s: RSS, CLI processes, and the load average."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(pid)
        self.interval = interval
        self.origin = time.monotonic()
        self.points: list[tuple[float, int, int]] = []  # (seconds, RSS bytes, CLI processes)
        self.max_load = 0.0

    def snapshot(self) -> tuple[int, int]:
        rss, clis = 0, 0
        for process in self.tree():
            with contextlib.suppress(psutil.Error):
                rss += process.memory_info().rss
                if stack.is_claude(process) and process.status() != psutil.STATUS_ZOMBIE:
                    clis += 1
        return rss, clis

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, clis = self.snapshot()
            self.points.append((time.monotonic() - self.origin, rss, clis))
            self.peak = max(self.peak, rss)
            self.max_load = max(self.max_load, os.getloadavg()[0])
            self._stop.wait(self.interval)

    def between(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return [p for p in self.points if start <= p[0] <= end]


def settings_env(design: str, factor: float) -> dict[str, str]:
    """The proxy's LITELLM_CLAUDE_CODE_* values: the timed ones scaled, the rest the provider's defaults."""
    env = {f"LITELLM_CLAUDE_CODE_{name.upper()}": f"{value / factor:g}" for name, value in TIMED.items()}
    # tests/support/stack.py sets the test suite's CLI_MAX_RETRIES=0; a user gets the provider's default.
    env["LITELLM_CLAUDE_CODE_CLI_MAX_RETRIES"] = str(Settings.__dataclass_fields__["cli_max_retries"].default)
    if design == "cold":
        env["LITELLM_CLAUDE_CODE_WARM_ENABLED"] = "false"
    if has_warm_up_hook():
        env["LITELLM_WORKER_STARTUP_HOOKS"] = HOOK
    return env


def has_warm_up_hook() -> bool:
    """The generated project names the provider's warm-up hook; an older provider has none."""
    module, _, name = HOOK.partition(":")
    try:
        return callable(getattr(importlib.import_module(module), name, None))
    except ImportError:
        return False


def in_force(env: dict[str, str]) -> dict[str, Any]:
    """The settings the proxy resolves from ``env`` on this host (same rule, same host), by variable name.

    Only the concurrency and warm settings: the rest do not shape the pool. A variable the
    installed provider does not read is listed with ``None``."""
    resolved = Settings.from_env(env)
    known = {name for name in Settings.__dataclass_fields__}
    shown: dict[str, Any] = {}
    for name in Settings.__dataclass_fields__:
        if name in ("max_concurrency", "queue_timeout") or name.startswith("warm_"):
            shown[f"LITELLM_CLAUDE_CODE_{name.upper()}"] = getattr(resolved, name)
    for name in TIMED:
        if name not in known:
            shown[f"LITELLM_CLAUDE_CODE_{name.upper()}"] = None
    return shown


def wait_ready(base_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/health/readiness", timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{base_url}/health/readiness did not answer 200 within {timeout:g} s")


class Replay:
    """The day's threads against one proxy, each step at its time (compressed by ``factor``)."""

    def __init__(self, base_url: str, threads: list[Thread], phases: list[Phase], factor: float) -> None:
        self.base_url = base_url
        self.threads = threads
        self.phases = phases
        self.factor = factor
        self.samples: list[Sample] = []
        self.origin = 0.0
        self.shift = 0.0  # how much later than scheduled the last gap began (the day ran behind)
        self.idle_read_at = 0.0  # seconds of the run: the end of the last gap, where the idle gateway is read
        self.histories: dict[str, list[dict[str, Any]]] = {}

    def phase_of(self, day_seconds: float) -> str:
        return next((p.name for p in self.phases if p.start <= day_seconds < p.end), self.phases[-1].name)

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def run(self) -> None:
        """The day up to the last gap; the last gap, a full one counted from the last answer if the
        day ran behind (so the idle gateway is read after as much quiet as scheduled); then the rest."""
        self.origin = time.monotonic()
        last_gap = next(p for p in self.phases if p.name == IDLE_READ)
        async with (
            AsyncOpenAI(
                base_url=self.base_url + "/v1",
                api_key=stack.MASTER_KEY,
                max_retries=0,
                timeout=300,
            ) as self.openai,
            anthropic.AsyncAnthropic(
                base_url=self.base_url,
                api_key=stack.MASTER_KEY,
                max_retries=0,
                timeout=300,
            ) as self.anthropic,
        ):
            await asyncio.gather(*(self.thread(thread, 0, last_gap.start) for thread in self.threads))
            self.shift = max(0.0, self.now() - last_gap.start / self.factor)
            self.idle_read_at = last_gap.end / self.factor + self.shift
            await asyncio.sleep(max(0.0, self.idle_read_at - self.now()))
            await asyncio.gather(*(self.thread(thread, last_gap.end, math.inf) for thread in self.threads))
            end = self.phases[-1].end / self.factor + self.shift
            await asyncio.sleep(max(0.0, end - self.now()))

    async def thread(self, thread: Thread, start: float, end: float) -> None:
        """The thread's steps scheduled in [start, end) of the day; a chat's history carries over."""
        history = self.histories.setdefault(thread.name, [])
        for step in thread.steps:
            if not start <= step.at < end:
                continue
            at = step.at / self.factor + (self.shift if step.at >= LAST_GAP_END else 0.0)
            await asyncio.sleep(max(0.0, at - self.now()))
            if thread.api == "chat":
                await self.chat_step(thread, step, at, history)
            else:
                await self.messages_step(thread, step, at, history)

    def sample(self, thread: Thread, step: Step, at: float, kind: str | None = None) -> Sample:
        sample = Sample(
            thread=thread.name,
            kind=kind or thread.kind,
            api=thread.api,
            model=thread.model,
            phase=self.phase_of(step.at),
            at=round(at, 3),
            sent=round(time.monotonic() - self.origin, 3),
            first_after_quiet=step.first_after_quiet and kind is None,
        )
        self.samples.append(sample)
        return sample

    @staticmethod
    def user_text(thread: Thread, step: Step) -> str:
        if not step.call_tool or thread.toolset is None:
            return step.text
        name, key, value = CALLS[thread.toolset]
        return f"{step.text} {directive(text='Let me look that up.', tool_use={'name': name, 'input': {key: value}})}"

    # -- /v1/chat/completions (openai) --------------------------------------------------------

    async def chat_step(self, thread: Thread, step: Step, at: float, history: list[dict[str, Any]]) -> None:
        if not history and thread.system is not None:
            history.append({"role": "system", "content": thread.system})
        history.append({"role": "user", "content": self.user_text(thread, step)})
        message = await self.chat_request(thread, self.sample(thread, step, at), history)
        if message is None:
            history.pop()
            return
        history.append(message)
        if message.get("tool_calls"):
            for call in message["tool_calls"]:
                history.append({"role": "tool", "tool_call_id": call["id"], "content": "sunny, 14 °C; order shipped"})
            answer = await self.chat_request(thread, self.sample(thread, step, at, "tool result"), history)
            if answer is not None:
                history.append(answer)
        if thread.kind == "one-shot":
            history.clear()

    async def chat_request(
        self, thread: Thread, sample: Sample, messages: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        started = time.perf_counter()
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        extra = {"tools": TOOLSETS[thread.toolset]} if thread.toolset else {}
        try:
            create: Any = self.openai.chat.completions.with_raw_response.create  # messages: plain dicts
            raw = await create(model=thread.model, messages=messages, stream=True, **extra)
            sample.call_id = raw.headers.get("x-litellm-call-id")
            chunks: Any = await parsed(raw)
            async for chunk in chunks:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if (delta.content or delta.tool_calls) and sample.ttft is None:
                    sample.ttft = time.perf_counter() - started
                if delta.content:
                    text.append(delta.content)
                for piece in delta.tool_calls or []:
                    call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = piece.id or call["id"]
                    if piece.function is not None:
                        call["name"] += piece.function.name or ""
                        call["arguments"] += piece.function.arguments or ""
        except Exception as exc:
            sample.error = f"{type(exc).__name__}: {exc}"[:300]
            print(f"  {sample.thread}: {sample.error}", file=sys.stderr)
            return None
        sample.total = time.perf_counter() - started
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(calls.items())
            ]
        return message

    # -- /v1/messages (anthropic) --------------------------------------------------------------

    async def messages_step(self, thread: Thread, step: Step, at: float, history: list[dict[str, Any]]) -> None:
        history.append({"role": "user", "content": self.user_text(thread, step)})
        content = await self.messages_request(thread, self.sample(thread, step, at), history)
        if content is None:
            history.pop()
            return
        history.append({"role": "assistant", "content": content})
        uses = [block for block in content if block["type"] == "tool_use"]
        if uses:
            results = [{"type": "tool_result", "tool_use_id": u["id"], "content": "three pages found"} for u in uses]
            history.append({"role": "user", "content": results})
            answer = await self.messages_request(thread, self.sample(thread, step, at, "tool result"), history)
            if answer is not None:
                history.append({"role": "assistant", "content": answer})
        if thread.kind == "one-shot":
            history.clear()

    async def messages_request(
        self, thread: Thread, sample: Sample, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        started = time.perf_counter()
        blocks: list[dict[str, Any]] = []
        extra: dict[str, Any] = {"tools": anthropic_tools(thread.toolset)} if thread.toolset else {}
        if thread.system is not None:
            extra["system"] = thread.system
        try:
            create: Any = self.anthropic.messages.with_raw_response.create  # messages: plain dicts
            raw = await create(model=thread.model, max_tokens=1024, messages=messages, stream=True, **extra)
            sample.call_id = raw.headers.get("x-litellm-call-id")
            events: Any = await parsed(raw)
            async for event in events:
                if event.type == "content_block_start":
                    block = event.content_block.model_dump()
                    if block["type"] == "tool_use":
                        block["input"], block["_json"] = {}, ""
                    blocks.append(block)
                elif event.type == "content_block_delta":
                    if sample.ttft is None:
                        sample.ttft = time.perf_counter() - started
                    if event.delta.type == "text_delta":
                        blocks[-1]["text"] += event.delta.text
                    elif event.delta.type == "input_json_delta":
                        blocks[-1]["_json"] += event.delta.partial_json
        except Exception as exc:
            sample.error = f"{type(exc).__name__}: {exc}"[:300]
            print(f"  {sample.thread}: {sample.error}", file=sys.stderr)
            return None
        sample.total = time.perf_counter() - started
        content = []
        for block in blocks:
            if block["type"] == "text":
                content.append({"type": "text", "text": block["text"]})
            elif block["type"] == "tool_use":
                arguments = json.loads(block["_json"] or "{}")
                content.append({"type": "tool_use", "id": block["id"], "name": block["name"], "input": arguments})
        return content


async def parsed(raw: Any) -> Any:
    """A raw response's body (the openai SDK's raw response parses at once, the anthropic SDK's is awaited)."""
    body = raw.parse()
    return await body if inspect.isawaitable(body) else body


LOG_FIELDS = re.compile(r"(\w+)=(\S+)")


def request_lines(log: Path) -> dict[str, dict[str, str]]:
    """The proxy's ``claude_code_request`` lines, by request id."""
    found = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "claude_code_request " in line:
            fields = dict(LOG_FIELDS.findall(line.split("claude_code_request ", 1)[1]))
            found[fields.get("request_id", "")] = fields
    return found


def provider_notes(log: Path) -> list[str]:
    """The provider's other lines above INFO, and its start-up lines about the warm set (at most 40)."""
    notes = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if " litellm_claude_code " not in line or "claude_code_request " in line:
            continue
        if " WARNING " in line or " ERROR " in line or re.search(r"warm|floor|ready", line, re.IGNORECASE):
            notes.append(line[:300])
    return notes[:40]


def summarize(samples: list[Sample], fields_by_id: dict[str, dict[str, str]]) -> dict[str, Any]:
    done = [s for s in samples if s.error is None]
    overheads = [s.overhead for s in done if s.overhead is not None]
    after_quiet = [s.overhead for s in done if s.first_after_quiet and s.overhead is not None]
    reasons: dict[str, int] = {}
    refused: dict[str, int] = {}
    warm = logged = 0
    for fields in fields_by_id.values():
        if fields.get("status") != "200":  # refused or failed: no process served it
            refused[fields.get("status", "?")] = refused.get(fields.get("status", "?"), 0) + 1
            continue
        logged += 1
        if fields.get("warm") == "true":
            warm += 1
        else:
            reason = fields.get("cold_reason", "-")
            reasons[reason] = reasons.get(reason, 0) + 1

    def quantiles(values: list[float]) -> dict[str, float | None]:
        return {f"p{q}": (round(bench.percentile(values, q / 100), 3) if values else None) for q in (50, 90, 99)}

    return {
        "requests": len(samples),
        "errors": len(samples) - len(done),
        "logged": logged,
        "warm_hits": warm,
        "warm_hit_rate": round(warm / logged, 4) if logged else None,
        "cold_reasons": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        "failed_by_status": refused,
        "sent_late_s": {
            "p50": round(bench.percentile([s.sent - s.at for s in samples], 0.5), 2) if samples else None,
            "max": round(max((s.sent - s.at for s in samples), default=0.0), 2),
        },
        "overhead": quantiles(overheads),
        "overhead_after_quiet": quantiles(after_quiet),
        "after_quiet": [
            {"phase": s.phase, "at": s.at, "overhead": s.overhead, "warm": s.warm, "cold_reason": s.cold_reason}
            for s in samples
            if s.first_after_quiet
        ],
    }


def run_design(
    design: str,
    args: argparse.Namespace,
    fake: FakeAnthropicServer,
    workdir: Path,
    phases: list[Phase],
    threads: list[Thread],
) -> dict[str, Any]:
    env = settings_env(design, args.factor)
    rundir = workdir / design
    rundir.mkdir(parents=True)
    config = rundir / "config.yaml"
    config.write_text(bench.CONFIG)
    upstream_before = bench.upstream_ttft(fake)[0]
    load_before = os.getloadavg()
    launched = time.monotonic()
    try:
        proxy = stack.start_proxy(config, rundir, fake, env)
    except RuntimeError as exc:
        raise SystemExit(f"proxy ({design}) did not start: {exc}") from None
    try:
        wait_ready(proxy.base_url)
        ready_s = time.monotonic() - launched
        timeline = Timeline(proxy.process.pid)
        ready_rss, ready_clis = timeline.snapshot()
        cpu_ready = timeline.cpu_seconds()
        timeline.start()
        print(f"  {design}: ready after {ready_s:.1f} s ({ready_clis} CLI processes); the day begins", file=sys.stderr)
        replay = Replay(proxy.base_url, threads, phases, args.factor)
        asyncio.run(replay.run())
        timeline.stop()
        cpu = timeline.cpu_seconds() - cpu_ready
        read = replay.idle_read_at
        idle = timeline.between(read - args.idle_read, read - 0.25)
        time.sleep(0.5)
        by_id = request_lines(proxy.log)
        notes = provider_notes(proxy.log)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(proxy.log, args.keep_logs / f"proxy-{design}.log")
    finally:
        stack.stop_proxy(proxy)
    upstream_after = bench.upstream_ttft(fake)[0]
    upstream_first = min(upstream_before, upstream_after)
    for sample in replay.samples:
        if sample.ttft is not None:
            sample.overhead = round(sample.ttft - upstream_first, 4)
            sample.ttft = round(sample.ttft, 4)
        if sample.total is not None:
            sample.total = round(sample.total, 4)
        fields = by_id.get(sample.call_id or "")
        if fields is not None:
            sample.warm = fields.get("warm") == "true"
            sample.cold_reason = None if fields.get("cold_reason") in (None, "-") else fields["cold_reason"]
            with contextlib.suppress(ValueError):
                sample.queue_ms = float(fields.get("queue_ms", ""))
            with contextlib.suppress(ValueError):
                sample.cli_start_ms = float(fields.get("cli_start_ms", ""))
    mib = 2**20
    result = {
        "design": design,
        "settings": in_force({**os.environ, **env}),
        "startup_hooks": env.get("LITELLM_WORKER_STARTUP_HOOKS"),
        "ready_s": round(ready_s, 2),
        "startup_cpu_s": round(cpu_ready, 2),
        "upstream_first_token_s": round(upstream_first, 4),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "load_average_max": round(timeline.max_load, 2),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_request": round(cpu / max(1, len(replay.samples)), 3),
        "rss_mib": {
            "ready": round(ready_rss / mib),
            "peak": round(max(timeline.peak, ready_rss) / mib),
            "idle": round(sum(p[1] for p in idle) / len(idle) / mib) if idle else None,
        },
        "cli_processes": {
            "ready": ready_clis,
            "peak": max((p[2] for p in timeline.points), default=0),
            "idle": max((p[2] for p in idle), default=0),
        },
        "timeline": [
            [round(t, 1), round(rss / mib), clis]
            for t, rss, clis in timeline.points[:: max(1, round(1 / timeline.interval))]
        ],
        "last_gap_began_late_s": round(replay.shift, 2),
        "provider_notes": notes,
        **summarize(replay.samples, by_id),
        "samples": [asdict(s) for s in replay.samples],
    }
    print(f"  {design}: {result['requests']} requests, {result['errors']} failed", file=sys.stderr)
    return result


def machine() -> dict[str, Any]:
    host = read_host()
    return {
        "host": host.describe(),
        "cpus": host.cpus,
        "memory_gib": round(host.memory / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    parser.add_argument("--factor", type=float, default=20.0, help="how much faster than the day's clock (default 20)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--tokens", type=int, default=40, help="tokens of each upstream answer")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between the upstream's tokens")
    parser.add_argument(
        "--idle-read", type=float, default=5.0, help="seconds at the end of the last gap the idle RSS is read over"
    )
    parser.add_argument("--json", type=Path, help="also write everything as JSON here")
    parser.add_argument("--keep-logs", type=Path, help="copy each design's proxy log into this directory")
    args = parser.parse_args(argv)
    logging.getLogger("litellm_claude_code.testing.fake_anthropic").setLevel(logging.WARNING)

    resolved = Settings.from_env(settings_env("defaults", args.factor))
    burst = resolved.max_concurrency + 4
    phases, threads = day_schedule(args.seed, burst)
    steps = sum(len(t.steps) for t in threads)
    data: dict[str, Any] = {
        "benchmark": "day",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "factor": args.factor,
        "seed": args.seed,
        "upstream": {"tokens": args.tokens, "token_delay_s": args.token_delay},
        "timed_settings_default_s": TIMED,
        "idle_read_after_s": (IDLE_AFTER + TIMED["warm_idle_timeout"]) / args.factor,
        "burst": burst,
        "schedule": {
            "phases": [asdict(p) for p in phases],
            "threads": len(threads),
            "chats": sum(1 for t in threads if t.kind == "chat"),
            "steps": steps,
            "tool_steps": sum(1 for t in threads for s in t.steps if s.call_tool),
            "day_minutes": phases[-1].end / MINUTE,
            "wall_s": phases[-1].end / args.factor,
        },
        "designs": {},
    }
    print(
        f"Day replay: {steps} user turns in {len(threads)} threads over {phases[-1].end / MINUTE:.0f} minutes of the "
        f"day, {phases[-1].end / args.factor:.0f} s per design (factor {args.factor:g})",
        file=sys.stderr,
    )
    with (
        tempfile.TemporaryDirectory(prefix="lcc-day-") as tmp,
        FakeAnthropicServer(tokens=args.tokens, token_delay=args.token_delay) as fake,
    ):
        for design in args.designs:
            data["designs"][design] = run_design(design, args, fake, Path(tmp), phases, threads)
    data["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(report.render_day(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if not any(d["errors"] for d in data["designs"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
