#!/usr/bin/env python3
"""Benchmark the gateway: a real LiteLLM proxy with this provider, against the fake upstream.

For each design (warm processes, the default; cold, one fresh CLI process per request) it
starts a proxy, drives it with the official ``openai`` client at several concurrencies and
prints one Markdown table with both designs side by side:

- time to first token (p50, p95) and total latency (p50, p95), in seconds;
- completions per second;
- CPU-seconds per request (proxy and every CLI process, children included);
- peak RSS of the proxy's whole process tree, in MiB;
- upstream request bytes per completion, and how far above the client's own messages.

Every run uses the provider's defaults (``MAX_CONCURRENCY`` and ``WARM_MAX`` derived from the
host) unless ``--max-concurrency`` / ``--warm-max`` set them, and each table says which values
were in force and what the host gave.

The upstream sends ``--tokens`` tokens ``--token-delay`` seconds apart; its own time to
first token is measured directly and shown in the first row, so the table reads as
"overhead above the upstream".

    python bench/bench.py                       # both designs, concurrency 1, 4, 8, provider defaults
    python bench/bench.py --max-concurrency 8 --warm-max 8   # tuned values instead of the defaults
    python bench/bench.py --designs warm --concurrency 1 8 --requests 16
    python bench/bench.py --conversation        # 10-turn chats: real turns vs flattened
    python bench/bench.py --mixed               # several apps' system prompts, models mixed

The conversation benchmark runs a chat of ``--turns`` turns (and ``--conversations`` chats with
their own system prompts, interleaved) through one proxy with the provider's defaults, twice: as
the client sends it (real turns) and flattened into one user message that quotes the earlier
turns (the design before real turns). Per turn it prints the time to first token, the upstream
request bytes and how far they exceed the client's own messages (as Messages API JSON), and the fake upstream's prompt
cache figures: tokens read from the cache, written to it, and billed as plain input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import psutil
from litellm_claude_code import Settings, read_host
from litellm_claude_code.testing import FakeAnthropicServer
from openai import AsyncOpenAI

# One support layer: the proxy, ports and keys the tests use (tests/support/stack.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import stack
from tests.support.stack import MASTER_KEY

PROMPT = "Say something about benchmarks."

CONFIG = """\
model_list:
  - model_name: sonnet
    litellm_params: {model: claude-code/sonnet}
  - model_name: haiku
    litellm_params: {model: claude-code/haiku}
litellm_settings:
  custom_provider_map:
    - {provider: claude-code, custom_handler: litellm_claude_code.handler}
router_settings: {num_retries: 0, disable_cooldowns: true}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  custom_auth: litellm_claude_code.proxy_auth.user_api_key_auth
"""


@dataclass
class Row:
    design: str
    concurrency: int
    requests: int
    errors: int = 0
    ttft_p50: float = 0.0
    ttft_p95: float = 0.0
    total_p50: float = 0.0
    total_p95: float = 0.0
    completions_per_s: float = 0.0
    cpu_s_per_request: float = 0.0
    peak_rss_mib: float = 0.0
    upstream_bytes: float = 0.0
    upstream_overhead_bytes: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class TreeSampler:
    """Samples the RSS of a process and all its descendants; tracks the peak."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """CPU of the tree, with children already reaped (their time is in the parent's)."""
        total = 0.0
        try:
            times = self.root.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            return total
        for child in self.tree()[1:]:
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = 0
            for process in self.tree():
                try:
                    rss += process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, rss)
            self._stop.wait(0.05)

    def start(self) -> None:
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def provenance(argv: list[str], load_before: tuple[float, float, float]) -> dict[str, Any]:
    """When, where and how a run was measured, for its JSON: a figure from a busy machine says so.

    ``argv``: the benchmark's own arguments (``--json`` left out, so the command reproduces the
    table); ``load_before``: ``os.getloadavg()`` when the run started. ``measured_at`` is when the
    run ended (when this is called).
    """
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            shown.append(arg)
    host = read_host()
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": shlex.join(["python", f"bench/{Path(sys.argv[0]).name}", *shown]),
        "machine": {
            "host": host.describe(),
            "cpus": host.cpus,
            "memory_gib": round(host.memory / 2**30, 1),
            "python": sys.version.split()[0],
            "load_average_at_start": [round(x, 2) for x in load_before],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def tuned(args: argparse.Namespace) -> dict[str, str]:
    """The LITELLM_CLAUDE_CODE_* values given on the command line (the rest: the provider's defaults)."""
    settings = {}
    if args.max_concurrency is not None:
        settings["max_concurrency"] = str(args.max_concurrency)
    if args.warm_max is not None:
        settings["warm_max"] = str(args.warm_max)
    return settings


def in_force(settings: dict[str, str]) -> str:
    """MAX_CONCURRENCY and WARM_MAX as the proxy resolves them from ``settings`` (same host, same rule)."""
    resolved = Settings.from_env({f"LITELLM_CLAUDE_CODE_{name.upper()}": value for name, value in settings.items()})
    given = [name for name in ("max_concurrency", "warm_max") if name in settings]
    how = f"set: {', '.join(n.upper() for n in given)}" if given else "provider defaults"
    return (
        f"MAX_CONCURRENCY={resolved.max_concurrency}, WARM_MAX={resolved.warm_max} ({how}; host: "
        f"{read_host().describe()})"
    )


def start_proxy(
    design: str, fake: FakeAnthropicServer, workdir: Path, settings: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """A LiteLLM proxy with this provider (tests/support/stack.py's, as the tests start it);
    ``settings``: the LITELLM_CLAUDE_CODE_* values set (the rest are the provider's defaults)."""
    rundir = workdir / design
    rundir.mkdir(parents=True, exist_ok=True)
    config = rundir / "config.yaml"
    config.write_text(CONFIG)
    env = {
        "LITELLM_CLAUDE_CODE_QUEUE_TIMEOUT": "300",
        "LITELLM_CLAUDE_CODE_LOG_LEVEL": "WARNING",
        **{f"LITELLM_CLAUDE_CODE_{name.upper()}": value for name, value in settings.items()},
    }
    try:
        proxy = stack.start_proxy(config, rundir, fake, env)
    except RuntimeError as exc:
        raise SystemExit(f"proxy ({design}) did not become ready: {exc}") from None
    _proxies[proxy.process.pid] = proxy
    return proxy.process, int(proxy.base_url.rsplit(":", 1)[1])


_proxies: dict[int, stack.Proxy] = {}


def stop_proxy(proc: subprocess.Popen[bytes]) -> None:
    proxy = _proxies.pop(proc.pid, None)
    if proxy is not None:
        stack.stop_proxy(proxy)


async def one_request(client: AsyncOpenAI) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    stream = await client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    return (first if first is not None else total), total


async def drive(port: int, concurrency: int, requests: int) -> tuple[list[tuple[float, float]], int, float]:
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=0, timeout=300)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    results: list[tuple[float, float]] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                results.append(await one_request(client))
            except Exception as exc:
                errors += 1
                print(f"  request failed: {exc}", file=sys.stderr)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return results, errors, elapsed


def upstream_ttft(fake: FakeAnthropicServer) -> tuple[float, float]:
    """The fake upstream's own time to first token and total time, measured directly."""
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    firsts, totals = [], []
    for _ in range(5):
        started = time.perf_counter()
        first = None
        with httpx.stream(
            "POST", f"{fake.base_url}/v1/messages", json=body, headers={"x-api-key": "bench"}, timeout=30
        ) as response:
            for line in response.iter_lines():
                if first is None and "text_delta" in line:
                    first = time.perf_counter() - started
        totals.append(time.perf_counter() - started)
        firsts.append(first or totals[-1])
    fake.clear()
    return statistics.median(firsts), statistics.median(totals)


def run_design(design: str, args: argparse.Namespace, fake: FakeAnthropicServer, workdir: Path) -> list[Row]:
    rows = []
    settings = {**tuned(args), "warm_enabled": "true" if design == "warm" else "false"}
    proc, port = start_proxy(design, fake, workdir, settings)
    try:
        sampler = TreeSampler(proc.pid)
        asyncio.run(drive(port, 1, 2))  # first contact: import paths, first process
        for concurrency in args.concurrency:
            count = max(args.requests, concurrency * 2)
            asyncio.run(drive(port, concurrency, concurrency))  # steady state: as many processes as clients
            fake.clear()
            cpu_before = sampler.cpu_seconds()
            sampler.start()
            results, errors, elapsed = asyncio.run(drive(port, concurrency, count))
            sampler.stop()
            cpu = sampler.cpu_seconds() - cpu_before
            upstream = [r for r in fake.requests() if r["path"].startswith("/v1/messages")]
            body = statistics.mean(r["body_bytes"] for r in upstream) if upstream else 0.0
            ttfts = [r[0] for r in results]
            totals = [r[1] for r in results]
            rows.append(
                Row(
                    design=design,
                    concurrency=concurrency,
                    requests=count,
                    errors=errors,
                    ttft_p50=percentile(ttfts, 0.5),
                    ttft_p95=percentile(ttfts, 0.95),
                    total_p50=percentile(totals, 0.5),
                    total_p95=percentile(totals, 0.95),
                    completions_per_s=len(results) / elapsed if elapsed else 0.0,
                    cpu_s_per_request=cpu / max(1, len(results)),
                    peak_rss_mib=sampler.peak / 2**20,
                    upstream_bytes=body,
                    upstream_overhead_bytes=body - len(PROMPT),
                )
            )
            print(f"  {design} c={concurrency}: {rows[-1].completions_per_s:.2f}/s", file=sys.stderr)
    finally:
        stop_proxy(proc)
    return rows


def table(rows: list[Row], upstream: tuple[float, float], args: argparse.Namespace) -> str:
    lines = [
        f"Upstream: {args.tokens} tokens, {args.token_delay * 1000:.0f} ms apart; its own first token "
        f"{upstream[0]:.3f} s, whole answer {upstream[1]:.3f} s. One proxy worker, {in_force(tuned(args))}.",
        "",
        "| design | conc. | requests | TTFT p50 | TTFT p95 | total p50 | total p95 | completions/s | CPU-s/req "
        "| peak RSS MiB | upstream bytes/req | above client msg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        errors = f" ({row.errors} failed)" if row.errors else ""
        lines.append(
            f"| {row.design} | {row.concurrency} | {row.requests}{errors} | {row.ttft_p50:.3f} | {row.ttft_p95:.3f} "
            f"| {row.total_p50:.3f} | {row.total_p95:.3f} | {row.completions_per_s:.2f} | {row.cpu_s_per_request:.2f} "
            f"| {row.peak_rss_mib:.0f} | {row.upstream_bytes:.0f} | {row.upstream_overhead_bytes:.0f} |"
        )
    by_key = {(row.design, row.concurrency): row for row in rows}
    ratios = []
    for concurrency in args.concurrency:
        warm, cold = by_key.get(("warm", concurrency)), by_key.get(("cold", concurrency))
        if warm and cold and cold.completions_per_s:
            ratios.append(
                f"c={concurrency}: warm/cold throughput {warm.completions_per_s / cold.completions_per_s:.1f}x, "
                f"TTFT p50 above upstream {warm.ttft_p50 - upstream[0]:.3f} s vs {cold.ttft_p50 - upstream[0]:.3f} s"
            )
    if ratios:
        lines += ["", *[f"- {line}" for line in ratios]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- conversations

WORDS = [
    "gateway",
    "process",
    "prompt",
    "cache",
    "turn",
    "history",
    "token",
    "answer",
    "client",
    "model",
    "system",
    "request",
    "stream",
    "latency",
    "conversation",
    "agent",
    "tool",
    "result",
    "message",
    "prefix",
    "block",
    "upstream",
]


@dataclass
class Turn:
    """One request of a conversation benchmark, as the client and the upstream saw it."""

    design: str
    conversation: int
    turn: int
    ttft: float
    upstream_bytes: int
    overhead_bytes: int
    prompt_tokens: int
    cache_read: int
    cache_creation: int
    uncached_input: int


def turn_text(conversation: int, turn: int, tokens: int) -> str:
    """About ``tokens`` tokens (the fake counts four characters a token) of text unique to the turn."""
    words, size, index = [f"[c{conversation} t{turn}]"], 0, conversation * 7919 + turn * 104729
    while size < tokens * 4:
        word = WORDS[index % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        index = index * 31 + 17
    return " ".join(words)


def client_bytes(messages: list[dict[str, str]]) -> int:
    """The client's own content as the Messages API carries it: the system text, and the turns
    as JSON messages (one text block each), so that what is counted above it is what we add."""
    system = sum(len(m["content"].encode()) for m in messages if m["role"] == "system")
    turns = [
        {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
        for m in messages
        if m["role"] != "system"
    ]
    return system + len(json.dumps(turns, ensure_ascii=False).encode())


def flatten(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The design before real turns: every earlier turn quoted in one user message."""
    system = [m for m in history if m["role"] == "system"]
    turns = [m for m in history if m["role"] != "system"]
    quoted = "\n".join(f'<turn role="{m["role"]}">{m["content"]}</turn>' for m in turns[:-1])
    latest = turns[-1]["content"]
    return [*system, {"role": "user", "content": f"{quoted}\n{latest}" if quoted else latest}]


async def converse(
    port: int, fake: FakeAnthropicServer, design: str, conversations: int, turns: int, tokens: int
) -> list[Turn]:
    """Run ``conversations`` chats of ``turns`` turns, interleaved turn by turn as a shared gateway
    sees them, each with its own system prompt; one request at a time, streamed."""
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=0, timeout=300)
    histories = [
        [{"role": "system", "content": f"You are assistant {c} of the {design} benchmark. Answer briefly."}]
        for c in range(conversations)
    ]
    results = []
    for turn in range(1, turns + 1):
        for conversation, history in enumerate(histories):
            history.append({"role": "user", "content": turn_text(conversation, turn, tokens)})
            sent = flatten(history) if design == "flattened" else history
            seen = len(fake.messages_requests())
            started = time.perf_counter()
            first, answer = None, []
            stream = await client.chat.completions.create(model="sonnet", messages=sent, stream=True)  # type: ignore[arg-type]
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first = first if first is not None else time.perf_counter() - started
                    answer.append(chunk.choices[0].delta.content)
            history.append({"role": "assistant", "content": "".join(answer)})
            (record,) = [
                r for r in fake.messages_requests()[seen:] if f"[c{conversation} t{turn}]" in json.dumps(r["messages"])
            ]
            cache = record["cache"]
            own = client_bytes(sent)
            results.append(
                Turn(
                    design=design,
                    conversation=conversation,
                    turn=turn,
                    ttft=first if first is not None else time.perf_counter() - started,
                    upstream_bytes=record["body_bytes"],
                    overhead_bytes=record["body_bytes"] - own,
                    prompt_tokens=cache["read"] + cache["creation"] + cache["input"],
                    cache_read=cache["read"],
                    cache_creation=cache["creation"],
                    uncached_input=cache["input"],
                )
            )
    await client.close()
    return results


def run_conversations(args: argparse.Namespace, fake: FakeAnthropicServer, workdir: Path) -> dict[str, list[Turn]]:
    """Both designs on one proxy with the provider's defaults (or ``--warm-max``), cache cleared between."""
    proc, port = start_proxy("conversation", fake, workdir, tuned(args))
    runs: dict[str, list[Turn]] = {}
    try:
        asyncio.run(drive(port, 1, 2))  # first contact: import paths, the first process
        for conversations in sorted({1, args.conversations}):
            for design in ("turns", "flattened"):
                fake.clear()
                fake.clear_cache()
                label = f"{design}, {conversations} chat{'s' if conversations > 1 else ''}"
                runs[label] = asyncio.run(converse(port, fake, design, conversations, args.turns, args.turn_tokens))
                print(f"  conversation {label}: done", file=sys.stderr)
    finally:
        stop_proxy(proc)
    return runs


def conversation_table(runs: dict[str, list[Turn]], args: argparse.Namespace) -> str:
    settings = in_force(tuned(args))
    lines = [
        f"Conversation: {args.turns} turns of about {args.turn_tokens} tokens, streamed, one request at a time "
        f"({settings}). Upstream: the fake with its prompt-cache simulation.",
        "",
        "| turn | design | TTFT s | upstream bytes | above client messages | prompt tokens | cache read "
        "| cache write | uncached | read / previous prompt |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    single = {label: turns for label, turns in runs.items() if label.endswith("1 chat")}
    for index in range(args.turns):
        for turns in single.values():
            row = turns[index]
            previous = turns[index - 1].prompt_tokens if index else 0
            share = f"{row.cache_read / previous:.0%}" if previous else "-"
            lines.append(
                f"| {row.turn} | {row.design} | {row.ttft:.3f} | {row.upstream_bytes} | {row.overhead_bytes} "
                f"| {row.prompt_tokens} | {row.cache_read} | {row.cache_creation} | {row.uncached_input} | {share} |"
            )
    lines += [
        "",
        "| run | requests | cache read / all prompt tokens | TTFT p50 s | TTFT p95 s | last turn - turn 2 TTFT s "
        "| most above client messages, bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, turns in runs.items():
        prompt = sum(t.prompt_tokens for t in turns) or 1
        ttfts = [t.ttft for t in turns]
        by_turn = {t.turn: statistics.median(x.ttft for x in turns if x.turn == t.turn) for t in turns}
        drift = by_turn[args.turns] - by_turn[min(2, args.turns)]
        read = sum(t.cache_read for t in turns) / prompt
        lines.append(
            f"| {label} | {len(turns)} | {read:.0%} | {percentile(ttfts, 0.5):.3f} "
            f"| {percentile(ttfts, 0.95):.3f} | {drift:+.3f} | {max(t.overhead_bytes for t in turns)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- mixed traffic

APPS = (
    "You are the support assistant of an online shop. Answer politely and briefly.",
    "You are a code reviewer. Point out bugs first, style last.",
    "You are a translator: translate the user's text into French.",
    "You are a helpful assistant. The current date and time is {now}.",  # changes per request
)


@dataclass
class MixedRow:
    design: str
    concurrency: int
    requests: int
    errors: int
    ttft_p50: float
    ttft_p90: float
    overhead_p50: float
    overhead_p90: float
    warm_hit_rate: float
    cpu_s_per_request: float
    upstream_first: float = 0.0


def mixed_request(index: int) -> tuple[str, list[dict[str, str]]]:
    """Request ``index`` of the mixed traffic: four apps in turn, one of them with a system prompt
    that changes per request (a chat UI putting the time in), every fifth request on haiku."""
    app = APPS[index % len(APPS)].format(now=f"2026-12-01 10:{index // 60 % 60:02d}:{index % 60:02d}")
    model = "haiku" if index % 5 == 4 else "sonnet"
    return model, [{"role": "system", "content": app}, {"role": "user", "content": f"{PROMPT} ({index})"}]


async def drive_mixed(port: int, concurrency: int, start: int, count: int) -> tuple[list[float], int]:
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=0, timeout=300)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(start, start + count):
        queue.put_nowait(index)
    ttfts: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            model, messages = mixed_request(queue.get_nowait())
            started = time.perf_counter()
            try:
                stream = await client.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
                first = None
                async for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter() - started
                ttfts.append(first if first is not None else time.perf_counter() - started)
            except Exception as exc:
                errors += 1
                print(f"  request failed: {exc}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return ttfts, errors


def warm_lines(log: Path) -> list[bool]:
    """``warm=`` of every request the proxy logged so far."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return [" warm=true " in line for line in text.splitlines() if "claude_code_request " in line]


def run_mixed(args: argparse.Namespace, fake: FakeAnthropicServer, workdir: Path) -> list[MixedRow]:
    """Overhead is measured against the upstream's own first token, measured just before and just
    after each phase (the lower of the two: on a loaded machine a single measurement swings)."""
    rows = []
    for design in args.designs:
        settings = {**tuned(args), "log_level": "INFO", "warm_enabled": "true" if design == "warm" else "false"}
        proc, port = start_proxy(design, fake, workdir, settings)
        log = _proxies[proc.pid].log
        try:
            sampler = TreeSampler(proc.pid)
            asyncio.run(drive(port, 1, 2))  # first contact: import paths, the first process
            start = 0
            for concurrency in args.concurrency:
                count = max(args.requests, concurrency * 4)
                seen = len(warm_lines(log))
                before = upstream_ttft(fake)[0]
                cpu_before = sampler.cpu_seconds()
                ttfts, errors = asyncio.run(drive_mixed(port, concurrency, start, count))
                start += count
                cpu = sampler.cpu_seconds() - cpu_before
                time.sleep(0.5)  # the last log lines
                warm = warm_lines(log)[seen:]
                upstream_first = min(before, upstream_ttft(fake)[0])
                overheads = [t - upstream_first for t in ttfts]
                rows.append(
                    MixedRow(
                        design=design,
                        concurrency=concurrency,
                        requests=count,
                        errors=errors,
                        ttft_p50=percentile(ttfts, 0.5),
                        ttft_p90=percentile(ttfts, 0.9),
                        overhead_p50=percentile(overheads, 0.5),
                        overhead_p90=percentile(overheads, 0.9),
                        warm_hit_rate=sum(warm) / len(warm) if warm else 0.0,
                        cpu_s_per_request=cpu / max(1, len(ttfts)),
                        upstream_first=upstream_first,
                    )
                )
                print(f"  mixed {design} c={concurrency}: done", file=sys.stderr)
        finally:
            stop_proxy(proc)
    return rows


def mixed_table(rows: list[MixedRow], args: argparse.Namespace) -> str:
    lines = [
        "Mixed traffic: four apps' system prompts in turn, one of them changing per request, every fifth "
        f"request on haiku; streamed; {in_force(tuned(args))}. Load average at the end: "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| design | conc. | requests | upstream TTFT | TTFT p50 | TTFT p90 | above upstream p50 | above upstream p90 "
        "| warm hits | CPU-s/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        errors = f" ({row.errors} failed)" if row.errors else ""
        lines.append(
            f"| {row.design} | {row.concurrency} | {row.requests}{errors} | {row.upstream_first:.3f} "
            f"| {row.ttft_p50:.3f} | {row.ttft_p90:.3f} "
            f"| {row.overhead_p50:.3f} | {row.overhead_p90:.3f} | {row.warm_hit_rate:.0%} "
            f"| {row.cpu_s_per_request:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level (at least 2x it)")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--conversation", action="store_true", help="run the conversation benchmark instead (real turns vs flattened)"
    )
    parser.add_argument("--mixed", action="store_true", help="run the mixed-traffic benchmark instead (several apps)")
    parser.add_argument(
        "--max-concurrency", type=int, help="LITELLM_CLAUDE_CODE_MAX_CONCURRENCY (default: host-derived)"
    )
    parser.add_argument("--turns", type=int, default=10, help="conversation: turns per chat")
    parser.add_argument("--turn-tokens", type=int, default=2000, help="conversation: tokens of each user turn")
    parser.add_argument(
        "--conversations",
        type=int,
        default=4,
        help="conversation: also run this many chats interleaved (mixed traffic)",
    )
    parser.add_argument(
        "--warm-max", type=int, help="LITELLM_CLAUDE_CODE_WARM_MAX (default: the provider's, MAX_CONCURRENCY)"
    )
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    load_before = os.getloadavg()
    # One log line per upstream request would drown the table.
    logging.getLogger("litellm_claude_code.testing.fake_anthropic").setLevel(logging.WARNING)

    def common(benchmark: str) -> dict[str, Any]:
        return {
            "benchmark": benchmark,
            **provenance(argv, load_before),
            "settings": in_force(tuned(args)),
            "upstream": {"tokens": args.tokens, "token_delay_s": args.token_delay},
        }

    with (
        tempfile.TemporaryDirectory(prefix="lcc-bench-") as tmp,
        FakeAnthropicServer(tokens=args.tokens, token_delay=args.token_delay) as fake,
    ):
        workdir = Path(tmp)
        if args.conversation:
            runs = run_conversations(args, fake, workdir)
            print(conversation_table(runs, args))
            if args.json:
                write_json(
                    args.json,
                    {
                        **common("conversation"),
                        "turns": args.turns,
                        "turn_tokens": args.turn_tokens,
                        "conversations": args.conversations,
                        "runs": {label: [asdict(turn) for turn in turns] for label, turns in runs.items()},
                    },
                )
            return 0
        if args.mixed:
            mixed = run_mixed(args, fake, workdir)
            print(mixed_table(mixed, args))
            if args.json:
                write_json(args.json, {**common("mixed"), "mixed": [asdict(row) for row in mixed]})
            return 0 if not any(row.errors for row in mixed) else 1
        upstream = upstream_ttft(fake)
        rows: list[Row] = []
        for design in args.designs:
            rows += run_design(design, args, fake, workdir)
    print(table(rows, upstream, args))
    if args.json:
        data = common("single")
        data["upstream"].update(first_token_s=upstream[0], total_s=upstream[1])
        write_json(args.json, {**data, "rows": [asdict(r) for r in rows]})
    return 0 if not any(row.errors for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
