#!/usr/bin/env python3
"""Overload: many more streamed requests at once than the gateway has CLI slots.

Every request must end one of two ways: **completed** (HTTP 200, every token of its own answer
in order, ``finish_reason: stop`` and ``[DONE]``) or **refused** cleanly (HTTP 429 with a
``Retry-After`` of whole seconds, before any byte of a stream). Anything else is a failure and is
counted by kind: ``cut`` (a 200 stream that ended without ``[DONE]``), ``wrong_text`` (a token
missing, extra or someone else's), ``error_event`` (an in-band error), ``429_no_retry_after``,
``http_<status>``, ``hung`` (no end within ``--request-timeout``), ``connection``. Refused requests
are not retried: the run measures the gateway, not a client's backoff.

Each request scripts its own answer through the fake upstream's directive in the prompt
(``[[fake:{"text": ..., "token_delay": ...}]]``): ``--tokens`` words unique to the request,
``--token-delay`` seconds apart, so a stream's length is set and its content is checkable.

It prints one Markdown table: completions/s, completed, refused, failures by kind, p50/p95
latency of the completions, the Retry-After values seen, the peak memory, and the load average
of the machine at the end (numbers from a busy machine are not a benchmark of the gateway).

    python bench/overload.py                          # a local proxy it starts: MAX_CONCURRENCY=4, QUEUE_TIMEOUT=5
    python bench/overload.py --requests 50 --concurrency 16 --queue-timeout 2
    python bench/overload.py --url http://10.0.0.5:4000 --key "$KEY" \\
        --memory-cmd 'ssh gw1 cat /sys/fs/cgroup/system.slice/gateway.service/memory.current'

Against a local proxy the fake upstream runs in this process and the peak memory is the
proxy's process tree (RSS summed, so shared pages count more than once: an upper bound).
Against ``--url`` the upstream must be the fake (the directive is what makes streams checkable),
and the memory is whatever ``--memory-cmd`` prints (bytes), sampled every ``--memory-interval``
seconds; the fleet test (tests/roles/test_fleet_load.py) reads the service's cgroup instead.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from litellm_claude_code.testing import FakeAnthropicServer, directive

import bench  # the benchmark's proxy, sampler and percentile helpers (bench/bench.py)

COMPLETED = "completed"
REFUSED = "refused"
# Entered for the run; its value, called after the run, gives the peak memory in bytes (or None).
MemoryProbe = Callable[[], AbstractContextManager[Callable[[], int | None]]]


@dataclass
class Outcome:
    """How one request ended."""

    index: int
    kind: str  # COMPLETED, REFUSED, or a failure kind (see the module docstring)
    status: int | None
    started: float  # seconds since the run began
    seconds: float
    retry_after: str | None = None
    upstream: str | None = None  # X-Upstream-Addr, when a load balancer in front says which gateway answered
    detail: str = ""


@dataclass
class Report:
    target: str
    requests: int
    concurrency: int
    tokens: int
    token_delay: float
    elapsed: float
    outcomes: list[Outcome]
    peak_memory_bytes: int | None = None
    memory_source: str = "not measured"
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    @property
    def completed(self) -> int:
        return len(self.of(COMPLETED))

    @property
    def refused(self) -> int:
        return len(self.of(REFUSED))

    @property
    def failures(self) -> dict[str, int]:
        counts = collections.Counter(o.kind for o in self.outcomes if o.kind not in (COMPLETED, REFUSED))
        return dict(sorted(counts.items()))

    @property
    def completions_per_s(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def latency(self, q: float) -> float:
        return bench.percentile([o.seconds for o in self.of(COMPLETED)], q)

    @property
    def retry_after_values(self) -> dict[str, int]:
        counts = collections.Counter(o.retry_after for o in self.outcomes if o.retry_after is not None)
        return dict(sorted(counts.items(), key=lambda kv: float(kv[0]) if kv[0].isdigit() else float("inf")))

    def summary(self) -> dict[str, Any]:
        return {
            "completions_per_s": round(self.completions_per_s, 2),
            "completed": self.completed,
            "refused": self.refused,
            "failures": self.failures,
            "latency_p50": round(self.latency(0.5), 3),
            "latency_p95": round(self.latency(0.95), 3),
            "retry_after": self.retry_after_values,
            "peak_memory_mib": round(self.peak_memory_bytes / 2**20) if self.peak_memory_bytes else None,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "outcomes"},
            **self.summary(),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


# ----------------------------------------------------------------------------------- one request


def answer_text(index: int, tokens: int) -> str:
    """The answer request ``index`` scripts for itself: ``tokens`` words no other request has."""
    return " ".join(f"r{index}w{k}" for k in range(tokens))


def prompt(index: int, tokens: int, token_delay: float) -> str:
    return f"Overload request {index}. " + directive(text=answer_text(index, tokens), token_delay=token_delay)


async def one_stream(
    client: httpx.AsyncClient, url: str, key: str, model: str, index: int, args: argparse.Namespace, t0: float
) -> Outcome:
    """Send request ``index`` streamed and classify how it ended."""
    body = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": prompt(index, args.tokens, args.token_delay)}],
    }
    started = time.perf_counter()

    upstream: str | None = None

    def outcome(kind: str, status: int | None, **kw: Any) -> Outcome:
        return Outcome(index, kind, status, started - t0, time.perf_counter() - started, upstream=upstream, **kw)

    expected = answer_text(index, args.tokens)
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    status: int | None = None
    try:
        async with asyncio.timeout(args.request_timeout):
            async with client.stream(
                "POST", f"{url}/v1/chat/completions", json=body, headers={**headers, "Authorization": f"Bearer {key}"}
            ) as response:
                status = response.status_code
                upstream = response.headers.get("x-upstream-addr")
                if status != 200:
                    text = (await response.aread()).decode(errors="replace")
                    retry_after = response.headers.get("retry-after")
                    if status == 429 and retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1:
                        return outcome(REFUSED, status, retry_after=retry_after)
                    kind = "429_no_retry_after" if status == 429 else f"http_{status}"
                    return outcome(kind, status, retry_after=retry_after, detail=text[:300])
                parts: list[str] = []
                finish: str | None = None
                done = False
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        return outcome("error_event", status, detail=data[:300])
                    for choice in chunk.get("choices") or []:
                        parts.append((choice.get("delta") or {}).get("content") or "")
                        finish = choice.get("finish_reason") or finish
                text = "".join(parts)
                if not done:
                    return outcome("cut", status, detail=f"{len(text)} of {len(expected)} characters, no [DONE]")
                if text.strip() != expected or finish != "stop":
                    return outcome("wrong_text", status, detail=f"finish={finish} text={text[:200]!r}")
                return outcome(COMPLETED, status)
    except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        return outcome("hung", status, detail=f"no end within {args.request_timeout:g} s")
    except httpx.HTTPError as exc:
        return outcome("connection", status, detail=f"{type(exc).__name__}: {exc}"[:300])


async def drive(url: str, key: str, args: argparse.Namespace) -> tuple[list[Outcome], float]:
    """``args.requests`` streams, ``args.concurrency`` at a time; the outcomes and the wall time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(args.requests):
        queue.put_nowait(index)
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    timeout = httpx.Timeout(args.request_timeout + 10, connect=10)  # the request's own deadline comes first
    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcomes.append(await one_stream(client, url, key, args.model, index, args, t0))

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return sorted(outcomes, key=lambda o: o.index), time.perf_counter() - t0


# ----------------------------------------------------------------------------------- memory


class CommandSampler:
    """Peak of the byte counts a shell command prints, run every ``interval`` seconds."""

    def __init__(self, command: str, interval: float) -> None:
        self.command, self.interval = command, interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        done = subprocess.run(shlex.split(self.command), capture_output=True, text=True, timeout=30, check=False)
        value = done.stdout.strip().split()
        if done.returncode == 0 and value and value[0].isdigit():
            self.peak = max(self.peak or 0, int(value[0]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run(
    url: str,
    key: str,
    args: argparse.Namespace,
    *,
    target: str,
    memory: MemoryProbe | None = None,
    memory_source: str = "not measured",
) -> Report:
    """Drive ``url`` and report. ``memory``: a context manager factory, entered for the run, whose
    value (called after the run) gives the peak memory in bytes, or None."""
    peak: int | None = None
    if memory is None:
        outcomes, elapsed = asyncio.run(drive(url, key, args))
    else:
        with memory() as read_peak:
            outcomes, elapsed = asyncio.run(drive(url, key, args))
        peak = read_peak()
    return Report(
        target=target,
        requests=args.requests,
        concurrency=args.concurrency,
        tokens=args.tokens,
        token_delay=args.token_delay,
        elapsed=elapsed,
        outcomes=outcomes,
        peak_memory_bytes=peak,
        memory_source=memory_source,
        load_average=os.getloadavg(),
    )


def _sampled_by(make: Callable[[], CommandSampler | bench.TreeSampler]) -> MemoryProbe:
    """A memory probe that runs a fresh sampler for the length of a run."""

    @contextmanager
    def sampled() -> Iterator[Callable[[], int | None]]:
        sampler = make()
        sampler.start()
        try:
            yield lambda: sampler.peak
        finally:
            sampler.stop()

    return sampled


def command_memory(command: str, interval: float) -> MemoryProbe:
    return _sampled_by(lambda: CommandSampler(command, interval))


def tree_memory(pid: int) -> MemoryProbe:
    return _sampled_by(lambda: bench.TreeSampler(pid))


def run_local(args: argparse.Namespace) -> Report:
    """A local proxy with this provider (bench/bench.py's), the fake upstream in this process."""
    settings = {"max_concurrency": str(args.max_concurrency), "queue_timeout": str(args.queue_timeout)}
    with tempfile.TemporaryDirectory(prefix="lcc-overload-") as tmp, FakeAnthropicServer() as fake:
        proc, port = bench.start_proxy("overload", fake, Path(tmp), settings)
        try:
            url = f"http://127.0.0.1:{port}"
            warm = argparse.Namespace(**{**vars(args), "requests": args.max_concurrency})
            asyncio.run(drive(url, bench.MASTER_KEY, warm))  # first contact: imports, the warm set
            report = run(
                url,
                bench.MASTER_KEY,
                args,
                target=f"local proxy, QUEUE_TIMEOUT={args.queue_timeout:g}, {bench.in_force(settings)}",
                memory=tree_memory(proc.pid),
                memory_source="RSS of the proxy's process tree (summed)",
            )
            report.extra["cli_processes_after"] = len(bench._proxies[proc.pid].claude_processes())
        finally:
            bench.stop_proxy(proc)
    return report


def table(report: Report) -> str:
    s = report.summary()
    failures = ", ".join(f"{k} {v}" for k, v in s["failures"].items()) or "0"
    retry = ", ".join(f"{k} s x{v}" for k, v in s["retry_after"].items()) or "-"
    peak = f"{s['peak_memory_mib']}" if s["peak_memory_mib"] is not None else "-"
    load = " ".join(f"{x:.1f}" for x in report.load_average)
    return "\n".join(
        [
            f"Overload: {report.requests} streams of {report.tokens} tokens {report.token_delay:g} s apart, "
            f"{report.concurrency} at a time, against {report.target}. Peak memory: {report.memory_source}. "
            f"Load average at the end: {load}.",
            "",
            "| completions/s | completed | refused (429 + Retry-After) | other failures | latency p50 s "
            "| latency p95 s | Retry-After seen | peak memory MiB | wall s |",
            "| ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: |",
            f"| {s['completions_per_s']:.2f} | {s['completed']} | {s['refused']} | {failures} "
            f"| {s['latency_p50']:.2f} | {s['latency_p95']:.2f} | {retry} | {peak} | {report.elapsed:.1f} |",
        ]
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--tokens", type=int, default=20, help="words per answer")
    p.add_argument("--token-delay", type=float, default=0.05, help="seconds between the upstream's tokens")
    p.add_argument("--model", default="sonnet")
    p.add_argument("--request-timeout", type=float, default=180, help="a request not ended by then is 'hung'")
    p.add_argument("--url", help="a running gateway (its upstream must be the fake); default: start a local proxy")
    p.add_argument(
        "--key", default=os.environ.get("LITELLM_MASTER_KEY"), help="with --url (default: $LITELLM_MASTER_KEY)"
    )
    p.add_argument("--header", action="append", default=[], help="'Name: value' sent with every request")
    p.add_argument("--memory-cmd", help="with --url: a command printing the gateway's memory in bytes")
    p.add_argument("--memory-interval", type=float, default=1.0)
    p.add_argument("--max-concurrency", type=int, default=4, help="local proxy: LITELLM_CLAUDE_CODE_MAX_CONCURRENCY")
    p.add_argument("--queue-timeout", type=float, default=5, help="local proxy: LITELLM_CLAUDE_CODE_QUEUE_TIMEOUT")
    p.add_argument("--json", type=Path, help="also write the report (every outcome) as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    load_before = os.getloadavg()
    # One log line per upstream request would drown the table.
    logging.getLogger("litellm_claude_code.testing.fake_anthropic").setLevel(logging.WARNING)
    if args.url:
        if not args.key:
            raise SystemExit("--url needs --key (or LITELLM_MASTER_KEY)")
        memory = command_memory(args.memory_cmd, args.memory_interval) if args.memory_cmd else None
        source = f"`{args.memory_cmd}` every {args.memory_interval:g} s" if args.memory_cmd else "not measured"
        report = run(args.url.rstrip("/"), args.key, args, target=args.url, memory=memory, memory_source=source)
    else:
        report = run_local(args)
    print(table(report))
    for failed in [o for o in report.outcomes if o.kind not in (COMPLETED, REFUSED)][:10]:
        print(f"  request {failed.index}: {failed.kind} (HTTP {failed.status}) {failed.detail}", file=sys.stderr)
    if args.json:
        measured = bench.provenance(sys.argv[1:] if argv is None else argv, load_before)
        bench.write_json(args.json, {"benchmark": "overload", **measured, **report.as_json()})
    return 0 if not report.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
