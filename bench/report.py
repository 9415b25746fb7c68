#!/usr/bin/env python3
"""The benchmarks' tables in the docs, rendered from the committed JSON; never copied by hand.

A figure lives in one place: the JSON a benchmark writes (``bench/results/*.json``). A document
shows it between two markers, and this script writes what is between them::

    <!-- bench:day -->
    (the table bench/results/day.json gives)
    <!-- /bench:day -->

    python bench/report.py           # rewrite every marked block in README.md and docs/**/*.md
    python bench/report.py --check   # exit 1 and name each block that differs from its JSON

To add a benchmark, add a renderer (JSON in, Markdown out) to :data:`BENCHMARKS` under the name
its markers use. ``bench/day.py`` prints its table with :func:`render_day` too, so what a run
prints and what the docs show are the same text.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(?P<open><!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /bench:(?P=name) -->)", re.DOTALL
)
OPENING = re.compile(r"<!-- bench:([\w-]+) -->")


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark's JSON is (relative to the repository), how to regenerate it, how to render it."""

    json: str
    command: str
    render: Callable[[dict[str, Any]], str]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _quantiles(q: dict[str, float | None]) -> str:
    return " / ".join(_seconds(q.get(k)) for k in ("p50", "p90", "p99"))


def _setting(name: str) -> str:
    return name.removeprefix("LITELLM_CLAUDE_CODE_")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_day(data: dict[str, Any]) -> str:
    """bench/day.py's table: the designs side by side, then what the day was and what was in force."""
    designs: dict[str, dict[str, Any]] = data["designs"]
    names = list(designs)
    factor = data["factor"]
    schedule = data["schedule"]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(cell(designs[name]) for name in names) + " |"

    def rss(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda d: f"{d['rss_mib'][key]} ({d['cli_processes'][key]})" if d["rss_mib"][key] is not None else "-"

    def failed(d: dict[str, Any]) -> str:
        statuses = ", ".join(f"{count}x {status}" for status, count in d.get("failed_by_status", {}).items())
        return f"{d['requests']} ({d['errors']}{': ' + statuses if statuses else ''})"

    def reasons(d: dict[str, Any]) -> str:
        return ", ".join(f"{reason} {count}" for reason, count in d["cold_reasons"].items()) or "none"

    def warm(d: dict[str, Any]) -> str:
        rate = d["warm_hit_rate"]
        return "-" if rate is None else f"{rate:.0%} ({d['warm_hits']} of {d['logged']})"

    def after_quiet(d: dict[str, Any]) -> str:
        cold = [a for a in d["after_quiet"] if a["warm"] is False]
        return f"{_quantiles(d['overhead_after_quiet'])} ({len(d['after_quiet'])}, {len(cold)} cold)"

    idle_after = data["idle_read_after_s"]
    lines = [
        "| | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
        row("requests (failed)", failed),
        row("above the upstream's first token, s: p50 / p90 / p99", lambda d: _quantiles(d["overhead"])),
        row("first request after start-up and after each quiet gap, s: p50 / p90 / p99 (requests, cold)", after_quiet),
        row("warm hits (of the requests served)", warm),
        row("cold starts by reason", reasons),
        row("RSS when ready, MiB (CLI processes)", rss("ready")),
        row("RSS at peak, MiB (CLI processes)", rss("peak")),
        row(
            f"RSS after {idle_after:g} s of quiet ({idle_after * factor / 60:g} min of the day), MiB (CLI processes)",
            rss("idle"),
        ),
        row("CPU-seconds per request (proxy and CLI processes)", lambda d: f"{d['cpu_s_per_request']:.2f}"),
        row("ready after, s (CPU-seconds until then)", lambda d: f"{d['ready_s']:.1f} ({d['startup_cpu_s']:.1f})"),
        row(
            "requests sent behind the schedule, s: p50 / most (a chat waits for its previous turn)",
            lambda d: f"{d['sent_late_s']['p50']:.2f} / {d['sent_late_s']['max']:.2f}",
        ),
        row(
            "load average (1 min) before / highest during the run",
            lambda d: f"{d['load_average_before'][0]:.1f} / {d['load_average_max']:.1f}",
        ),
    ]
    first = designs[names[0]]
    timed = data["timed_settings_default_s"]
    settings = first["settings"]
    shown = []
    for name, value in settings.items():
        key = _setting(name).lower()
        text = f"{_setting(name)}={_value(value) if value is not None else '(not read by this provider)'}"
        if key in timed:
            text += f" ({timed[key]:g} s / {factor:g})"
        shown.append(text)
    upstream = data["upstream"]
    hook = (
        f"`LITELLM_WORKER_STARTUP_HOOKS={first['startup_hooks']}`"
        if first.get("startup_hooks")
        else "no start-up hook (the provider had none)"
    )
    lines += [
        "",
        f"The day: {schedule['steps']} user turns in {schedule['threads']} threads ({schedule['chats']} long chats "
        f"that come back after the quiet gaps, {schedule['tool_steps']} client tool calls answered by the client, "
        f"bursts of up to {data['burst']} requests at once), {schedule['day_minutes']:g} minutes of a day replayed "
        f"{factor:g} times faster ({schedule['wall_s']:g} s) through one LiteLLM proxy worker, the bundled Claude Code "
        f"CLI and the fake upstream ({upstream['tokens']} tokens {upstream['token_delay_s'] * 1000:g} ms apart; "
        f"its own first token {first['upstream_first_token_s']:.3f} s). "
        f"Settings in force ({names[0]}, started with {hook}): {', '.join(shown)}; "
        "every other setting the provider's default."
        + (" The cold design: the same with `WARM_ENABLED=false`." if "cold" in designs else ""),
        f"Host: {data['machine']['host']}; measured {data['measured_at']} with `python bench/day.py`.",
    ]
    return "\n".join(lines)


def _measured(data: dict[str, Any]) -> str:
    """The line under a table of bench/bench.py or bench/overload.py: where, when, how loaded, how to rerun."""
    machine = data["machine"]
    start, end = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
    return (
        f"Host: {machine['host']}; measured {data['measured_at']} (the end of the run) with `{data['command']}`; "
        f"load average (1 min) {start:.1f} at the start, {end:.1f} at the end."
    )


def _upstream(data: dict[str, Any]) -> str:
    upstream = data["upstream"]
    own = f"; its own first token {upstream['first_token_s']:.3f} s" if "first_token_s" in upstream else ""
    return f"{upstream['tokens']} tokens {upstream['token_delay_s'] * 1000:g} ms apart{own}"


def _rows(data: dict[str, Any], key: str = "rows") -> dict[tuple[str, int], dict[str, Any]]:
    return {(row["design"], row["concurrency"]): row for row in data[key]}


def _requests(row: dict[str, Any]) -> str:
    return f"{row['requests']} ({row['errors']} failed)" if row["errors"] else str(row["requests"])


def render_single(data: dict[str, Any]) -> str:
    """bench/bench.py's single requests: warm and cold designs at each concurrency, then the ratios."""
    lines = [
        "| design | concurrency | requests | TTFT p50 s | TTFT p95 s | total p50 s | total p95 s | completions/s "
        "| CPU-s/request | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in data["rows"]:
        lines.append(
            f"| {row['design']} | {row['concurrency']} | {_requests(row)} | {row['ttft_p50']:.3f} "
            f"| {row['ttft_p95']:.3f} | {row['total_p50']:.3f} | {row['total_p95']:.3f} "
            f"| {row['completions_per_s']:.2f} | {row['cpu_s_per_request']:.2f} | {row['peak_rss_mib']:.0f} |"
        )
    rows = _rows(data)
    first = data["upstream"]["first_token_s"]
    lines.append("")
    for concurrency in sorted({c for _, c in rows}):
        warm, cold = rows.get(("warm", concurrency)), rows.get(("cold", concurrency))
        if warm and cold and cold["completions_per_s"] and warm["cpu_s_per_request"]:
            lines.append(
                f"- Concurrency {concurrency}: first token {warm['ttft_p50'] - first:.3f} s above the upstream's own "
                f"(p50) warm against {cold['ttft_p50'] - first:.3f} s cold; "
                f"{warm['completions_per_s'] / cold['completions_per_s']:.1f}x the cold design's completions/s, "
                f"for {warm['cpu_s_per_request']:.2f} against {cold['cpu_s_per_request']:.2f} CPU-seconds per request."
            )
    sent = [row for row in data["rows"] if row["upstream_bytes"]]
    if sent:
        most = max(sent, key=lambda row: row["upstream_bytes"])
        lines.append(
            f"- Upstream request bytes: at most {most['upstream_bytes']:,.0f} per request, "
            f"{most['upstream_overhead_bytes']:,.0f} above the client's own message."
        )
    lines += [
        "",
        f"Streamed single-turn requests, one proxy worker with {data['settings']}; the fake upstream sends "
        f"{_upstream(data)}. Each row: the requests at that concurrency after as many to warm up.",
        _measured(data),
    ]
    return "\n".join(lines)


def render_summary(data: dict[str, Any]) -> str:
    """README's one table: warm processes against a fresh CLI per request, from bench/bench.py's JSON."""
    rows = _rows(data)
    top = max(c for _, c in rows)
    low = min(c for _, c in rows)
    first = data["upstream"]["first_token_s"]
    lines = [
        f"| design | first token above the upstream's, s (p50, concurrency {low}) | completions/s (concurrency {top}) "
        f"| CPU-s/request (concurrency {top}) | peak RSS MiB (concurrency {top}) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    labels = {"warm": "warm processes (the default)", "cold": "cold: a fresh CLI per request"}
    for design in ("warm", "cold"):
        one, many = rows.get((design, low)), rows.get((design, top))
        if one and many:
            lines.append(
                f"| {labels[design]} | {one['ttft_p50'] - first:.3f} | {many['completions_per_s']:.2f} "
                f"| {many['cpu_s_per_request']:.2f} | {many['peak_rss_mib']:.0f} |"
            )
    lines += ["", f"{data['settings']}. {_measured(data)}"]
    return "\n".join(lines)


def _percentile(values: list[float], q: float) -> float:
    """bench/bench.py's percentile (the nearest rank), so a rendered table and a run's own print agree."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _conversation_runs(data: dict[str, Any]) -> list[str]:
    lines = [
        "| run | requests | cache read / all prompt tokens | TTFT p50 s | TTFT p95 s | last turn - turn 2 TTFT s "
        "| most bytes above the client's messages |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    last = data["turns"]
    for label, turns in data["runs"].items():
        prompt = sum(t["prompt_tokens"] for t in turns) or 1
        ttfts = [float(t["ttft"]) for t in turns]

        def median(turn: int, turns: list[dict[str, Any]] = turns) -> float:
            return statistics.median(float(t["ttft"]) for t in turns if t["turn"] == turn)

        drift = median(last) - median(min(2, last))
        read = sum(t["cache_read"] for t in turns) / prompt
        lines.append(
            f"| {label} | {len(turns)} | {read:.0%} | {_percentile(ttfts, 0.5):.3f} "
            f"| {_percentile(ttfts, 0.95):.3f} | {drift:+.3f} "
            f"| {max(t['overhead_bytes'] for t in turns):,} |"
        )
    return lines


def render_conversation(data: dict[str, Any]) -> str:
    """bench/bench.py --conversation: one chat turn by turn (real turns against flattened), then every run."""
    real, flat = data["runs"]["turns, 1 chat"], data["runs"]["flattened, 1 chat"]
    lines = [
        "| turn | TTFT s, real turns | TTFT s, flattened | prompt tokens | cache read, real turns "
        "| cache read, flattened | upstream bytes above the client's messages |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, (turn, other) in enumerate(zip(real, flat, strict=True)):
        previous = real[index - 1]["prompt_tokens"] if index else 0
        share = f" ({turn['cache_read'] / previous:.0%} of the previous prompt)" if previous else ""
        lines.append(
            f"| {turn['turn']} | {turn['ttft']:.3f} | {other['ttft']:.3f} | {turn['prompt_tokens']:,} "
            f"| {turn['cache_read']:,}{share} | {other['cache_read']:,} | {turn['overhead_bytes']:,} |"
        )
    lines += ["", *_conversation_runs(data), "", _conversation_footer(data)]
    return "\n".join(lines)


def _conversation_footer(data: dict[str, Any]) -> str:
    return (
        f"Chats of {data['turns']} turns of about {data['turn_tokens']:,} tokens each, streamed, one request at a "
        f"time; {data['conversations']} chats interleaved turn by turn, each with its own system prompt. One proxy "
        f"worker with {data['settings']}; the fake upstream ({_upstream(data)}) with its prompt-cache simulation. "
        + _measured(data)
    )


def render_mixed(data: dict[str, Any]) -> str:
    """bench/bench.py --mixed: several apps' system prompts and two models through one proxy."""
    lines = [
        "| design | concurrency | requests | upstream TTFT s | TTFT p50 s | TTFT p90 s | above upstream p50 s "
        "| above upstream p90 s | warm hits | CPU-s/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in data["mixed"]:
        lines.append(
            f"| {row['design']} | {row['concurrency']} | {_requests(row)} | {row['upstream_first']:.3f} "
            f"| {row['ttft_p50']:.3f} | {row['ttft_p90']:.3f} | {row['overhead_p50']:.3f} | {row['overhead_p90']:.3f} "
            f"| {row['warm_hit_rate']:.0%} | {row['cpu_s_per_request']:.2f} |"
        )
    lines += [
        "",
        "Four apps' system prompts in turn (one with the time in it, new every request), every fifth request on "
        f"haiku, streamed, single-turn. One proxy worker per design with {data['settings']}; the fake upstream "
        f"sends {_upstream(data)}; its own first token is measured just before and after each row (the lower "
        "of the two). " + _measured(data),
    ]
    return "\n".join(lines)


def render_overload(data: dict[str, Any]) -> str:
    """bench/overload.py: more streams at once than slots; how every one of them ended."""
    failures = ", ".join(f"{kind} {count}" for kind, count in data["failures"].items()) or "0"
    retry = ", ".join(f"{value} s ({count})" for value, count in data["retry_after"].items()) or "-"
    peak = "-" if data["peak_memory_mib"] is None else str(data["peak_memory_mib"])
    lines = [
        "| completions/s | completed | refused (429 + Retry-After) | other failures | latency p50 / p95 s "
        "| Retry-After seen (times) | peak memory MiB | CLI processes at the end |",
        "| ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |",
        f"| {data['completions_per_s']:.2f} | {data['completed']} | {data['refused']} | {failures} "
        f"| {data['latency_p50']:.2f} / {data['latency_p95']:.2f} | {retry} | {peak} "
        f"| {data['extra'].get('cli_processes_after', '-')} |",
        "",
        f"{data['requests']} streams of {data['tokens']} tokens {data['token_delay'] * 1000:g} ms apart, "
        f"{data['concurrency']} at a time, against the {data['target']}, in {data['elapsed']:.1f} s. "
        f"Peak memory: {data['memory_source']}. " + _measured(data),
    ]
    return "\n".join(lines)


def _command(script: str, json_path: str) -> str:
    return f"python bench/{script} --json {json_path}"


BENCHMARKS: dict[str, Benchmark] = {
    "day": Benchmark("bench/results/day.json", "python bench/day.py --json bench/results/day.json", render_day),
    "summary": Benchmark(
        "bench/results/single.json", _command("bench.py", "bench/results/single.json"), render_summary
    ),
    "single": Benchmark("bench/results/single.json", _command("bench.py", "bench/results/single.json"), render_single),
    "conversation": Benchmark(
        "bench/results/conversation.json",
        _command("bench.py --conversation", "bench/results/conversation.json"),
        render_conversation,
    ),
    "mixed": Benchmark(
        "bench/results/mixed.json",
        _command("bench.py --mixed --concurrency 1 4 --requests 24", "bench/results/mixed.json"),
        render_mixed,
    ),
    "overload": Benchmark(
        "bench/results/overload.json", _command("overload.py", "bench/results/overload.json"), render_overload
    ),
}


def documents(root: Path) -> list[Path]:
    """Where blocks may be: the README and every page under docs/."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted((root / "docs").rglob("*.md"))


def render(name: str, root: Path = REPO) -> str:
    """The block's text for benchmark ``name`` (from its JSON under ``root``)."""
    benchmark = BENCHMARKS.get(name)
    if benchmark is None:
        raise SystemExit(f"unknown benchmark block `bench:{name}`: bench/report.py knows {', '.join(BENCHMARKS)}")
    path = root / benchmark.json
    if not path.exists():
        raise SystemExit(f"{benchmark.json} is missing: run `{benchmark.command}` first")
    data = json.loads(path.read_text(encoding="utf-8"))
    source = f"<!-- generated by bench/report.py from {benchmark.json}: edit the JSON's benchmark, not this -->"
    return f"{source}\n{benchmark.render(data)}\n"


def rewritten(text: str, root: Path = REPO) -> str:
    """``text`` with every block's body rendered afresh."""
    openings = OPENING.findall(text)
    blocks = list(BLOCK.finditer(text))
    if len(openings) != len(blocks):
        unclosed = sorted(set(openings) - {m["name"] for m in blocks})
        raise SystemExit(
            f"a `<!-- bench:NAME -->` block is not closed by `<!-- /bench:NAME -->`: {', '.join(unclosed)}"
        )
    return BLOCK.sub(lambda m: m["open"] + render(m["name"], root) + m["close"], text)


def stale(root: Path = REPO) -> list[str]:
    """Each document (and block) whose text differs from what the JSON gives."""
    found = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        if OPENING.search(text) and rewritten(text, root) != text:
            names = sorted({m["name"] for m in BLOCK.finditer(text)})
            found.append(f"{path.relative_to(root)} ({', '.join(names)})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs from its JSON")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        for entry in differ:
            print(f"{entry}: differs from the benchmark JSON; run `python bench/report.py`", file=sys.stderr)
        return 1 if differ else 0
    for path in documents(REPO):
        text = path.read_text(encoding="utf-8")
        if OPENING.search(text):
            new = rewritten(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
