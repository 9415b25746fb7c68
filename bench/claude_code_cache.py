#!/usr/bin/env python3
"""Prompt-cache reads of a Claude Code session: through the generated gateway, and sent directly.

Runs Claude Code (``.clients/npm/bin/claude``) for ``--turns`` turns (``-p``, then ``--continue``)
twice against one fake Anthropic upstream, which models Anthropic's prompt cache
(``litellm_claude_code.testing._cache``): once with ``ANTHROPIC_BASE_URL`` = the gateway (the
template rendered with its defaults, its ``config/litellm.yaml``), once with it = the fake itself.
For each turn it prints the input tokens of Claude Code's request as Claude saw it, and the
part read from the cache (``cache_read``), created in it, and sent uncached.

    python bench/claude_code_cache.py             # 5 turns
    python bench/claude_code_cache.py --turns 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from litellm_claude_code.keys import KeyRecord, hash_key, write_records  # noqa: E402
from litellm_claude_code.testing import FakeAnthropicServer  # noqa: E402

from tests.support.clients import path_of  # noqa: E402
from tests.support.stack import start_proxy, stop_proxy  # noqa: E402
from tests.support.template import make_template_repo, render  # noqa: E402

KEY = "sk-cc-bench-person-0123456789abcdefghijklmnopqrstuvwxyz01"


def session(base_url: str, key: str, turns: int, root: Path, fake: FakeAnthropicServer) -> list[dict[str, Any]]:
    """Run the session; the cache figures of each turn's main request (the one with Claude Code's tools)."""
    home, work = root / "home", root / "work"
    home.mkdir(parents=True)
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    rows = []
    for turn in range(turns):
        fake.clear()
        args = [str(path_of("claude")), *(["--continue"] if turn else []), "-p", f"Turn {turn + 1}: go on."]
        done = subprocess.run(
            [*args, "--output-format", "json"], cwd=work, env=env, capture_output=True, text=True, timeout=180
        )
        if done.returncode != 0:
            raise SystemExit(f"turn {turn + 1} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        main = [r for r in fake.messages_requests() if len(r.get("tool_names") or []) >= 10]
        cache = main[-1]["cache"]
        total = cache["read"] + cache["creation"] + cache["input"]
        rows.append({"turn": turn + 1, "total": total, **cache})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    if not path_of("claude").exists():
        raise SystemExit("Claude Code is not installed: python -m tests.support.clients install")
    root = Path(tempfile.mkdtemp(prefix="cc-cache-bench-"))
    try:
        with FakeAnthropicServer(tokens=40) as fake:
            project = render(make_template_repo(root / "template"), root / "project")
            env: dict[str, str] = {}
            for line in (project / "config" / "provider.env").read_text().splitlines():
                name, sep, value = line.partition("=")
                if sep and not line.lstrip().startswith("#"):
                    env[name.strip()] = value.strip()
            store = root / "keys.json"
            write_records(store, [KeyRecord(name="bench", sha256=hash_key(KEY))])
            env["LITELLM_CLAUDE_CODE_KEYS_FILE"] = str(store)
            proxy = start_proxy(project / "config" / "litellm.yaml", root / "run", fake, env)
            try:
                through = session(proxy.base_url, KEY, args.turns, root / "gateway", fake)
            finally:
                stop_proxy(proxy)
            fake.clear_cache()
            direct = session(fake.base_url, "sk-ant-bench-direct", args.turns, root / "direct", fake)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"Claude Code session of {args.turns} turns; input tokens of each turn's request as Claude saw it")
    print()
    print(
        "| turn | via gateway: input | cache read | created | uncached | read % | direct: input | cache read "
        "| created | uncached | read % |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g, d in zip(through, direct, strict=True):
        cells = []
        for row in (g, d):
            share = 100 * row["read"] / row["total"] if row["total"] else 0.0
            cells += [row["total"], row["read"], row["creation"], row["input"], f"{share:.0f}%"]
        print(f"| {g['turn']} | " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
