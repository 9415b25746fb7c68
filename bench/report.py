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


BENCHMARKS: dict[str, Benchmark] = {
    "day": Benchmark("bench/results/day.json", "python bench/day.py --json bench/results/day.json", render_day),
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
