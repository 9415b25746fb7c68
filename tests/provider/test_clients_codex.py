"""OpenAI's Codex CLI (``tests.support.clients``, pinned) through the gateway, on its defaults.

Codex reads the ``config.toml`` of docs/clients.md (written here from the page's snippet, with the
test gateway's URL) in a throwaway ``CODEX_HOME``, and runs ``codex exec "..."`` in a fresh git
repository, with no network but the gateway (a dead HTTPS proxy for everything else). It streams
``/v1/responses`` with its own tools (a shell ``exec_command``, sub-agents, goals, ``web_search``)
and reconnects up to five times when a stream ends without ``response.completed``, so each run has
a timeout and each test counts the requests that reached the upstream: a retry loop fails the test
at once instead of passing slowly.

The fake upstream answers as scripted by a directive in the prompt (thinking first, then text or a
call of Codex's shell tool); given tool results it answers by quoting them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.provider.conftest import Gateway
from tests.support.clients import binary
from tests.support.docs_snippets import snippet
from tests.support.upstream import user_text

pytestmark = pytest.mark.integration

# One turn takes 3 to 6 s here; Codex's five reconnects (backoff 0.2 s to 3 s) about 25 s more.
CODEX_TIMEOUT = 60
PREFIX = "mcp__client__"  # how the provider offers a client's tools to Claude
CHUNK_ERRORS = ("Error building chunks", "KeyError: 'model'")


@dataclass(frozen=True)
class CodexRun:
    returncode: int
    stdout: str  # Codex's last message
    stderr: str  # its transcript: reasoning, commands run, errors and reconnects

    def show(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-6000:]}"


def run_codex(gateway: Gateway, tmp_path: Path, *args: str) -> CodexRun:
    """``codex *args`` (``exec "..."``, ``exec resume --last "..."``) in a git repository of its own,
    configured by the docs' snippet alone; a later call in the same test continues in the same place."""
    codex = binary("codex")
    home = tmp_path / "home"
    codex_home = home / ".codex"
    work = tmp_path / "work"
    if not work.exists():
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(snippet("codex-config", gateway.url))
        work.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    dead = "http://127.0.0.1:9"  # nothing listens: Codex's own calls home (plugins, analytics) fail at once
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "GATEWAY_KEY": gateway.key,
        "LANG": "C.UTF-8",
        "HTTPS_PROXY": dead,
        "HTTP_PROXY": dead,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    try:
        done = subprocess.run(
            [str(codex), *args],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CODEX_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"codex ran past {CODEX_TIMEOUT} s (a reconnect loop?)\n{exc.stderr!r}"[-6000:])
    return CodexRun(done.returncode, done.stdout, done.stderr)


def upstream(fake: FakeAnthropicServer, marker: str, unless: str = "\0") -> list[dict[str, Any]]:
    """The upstream requests of this test: those whose conversation carries ``marker`` (and not ``unless``)."""
    return [r for r in fake.messages_requests() if marker in user_text(r) and unless not in user_text(r)]


def test_a_turn_that_starts_with_thinking_and_the_next_turn(
    gateway: Gateway, fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    log_start = len(gateway.proxy.log_text())
    prompt = "say hello c0d1 " + directive(thinking="a greeting is due", text="Hello from Claude")
    run = run_codex(gateway, tmp_path, "exec", prompt)
    assert run.returncode == 0, run.show()
    assert run.stdout.strip() == "Hello from Claude", run.show()
    assert "a greeting is due" in run.stderr, run.show()  # the reasoning reached Codex, which shows it
    assert "Reconnecting" not in run.stderr, run.show()
    (request,) = upstream(fake, "c0d1")  # one request: the stream completed, nothing was retried
    assert request["body"]["thinking"]["type"] in ("adaptive", "enabled")
    # Codex's instructions are Claude's system prompt, its tools Claude's tools.
    assert "Codex CLI" in request["system_text"]
    assert {PREFIX + "exec_command", PREFIX + "multi_agent_v1__spawn_agent"} <= set(request["tool_names"])
    assert not any(name.endswith("web_search") for name in request["tool_names"])
    added = gateway.proxy.log_text()[log_start:]
    assert not any(marker in added for marker in CHUNK_ERRORS), added[-3000:]

    # The next turn: Codex sends the whole session back (the reasoning item, the answer, the new prompt).
    run = run_codex(gateway, tmp_path, "exec", "resume", "--last", "and now c0e1 " + directive(text="Second answer"))
    assert run.returncode == 0, run.show()
    assert run.stdout.strip() == "Second answer", run.show()
    assert "Reconnecting" not in run.stderr, run.show()
    (second,) = upstream(fake, "c0e1")
    roles = [m["role"] for m in second["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]
    assert "Hello from Claude" in json.dumps(second["messages"][1:])  # the first answer, in its place
    assert "c0d1" in user_text(second)


def test_claude_calls_codexs_shell_and_gets_the_output(
    gateway: Gateway, fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    call = {"id": "toolu_codex_c0d2", "name": "exec_command", "input": {"cmd": "printf 'shell-%s' $((6*7))"}}
    prompt = "run it c0d2 " + directive(thinking="I will run a command", text="", tool_use=call)
    run = run_codex(gateway, tmp_path, "exec", prompt)
    assert run.returncode == 0, run.show()
    assert "shell-42" in run.stderr, run.show()  # Codex ran the command itself and shows its output
    first, second = upstream(fake, "c0d2")  # the call, then its result: no retry on either
    assert PREFIX + "exec_command" in first["tool_names"]
    last = second["messages"][-1]
    assert last["role"] == "user"
    (result,) = [b for b in last["content"] if b.get("type") == "tool_result"]
    assert result["tool_use_id"] == "toolu_codex_c0d2"
    assert "shell-42" in json.dumps(result["content"])
    # The fake's answer to tool results quotes them; it is Codex's last message.
    assert run.stdout.startswith(f"Tool results: {PREFIX}exec_command(toolu_codex_c0d2) -> "), run.show()
    assert "shell-42" in run.stdout


def test_a_reconnect_after_a_cut_stream_is_answered_afresh(
    gateway: Gateway, fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    """A stream cut after the thinking and some text: Codex reconnects with the partial reasoning as
    its last input item. The gateway answers the user's turn again (the reasoning counts for
    nothing), instead of refusing it five times. The cut is an error the CLI does not retry, so each
    of Codex's requests is one upstream request."""
    cut = {
        "thinking": "partial thoughts",
        "text": "one two three four",
        "error_after_tokens": 2,
        "stream_error": {"type": "invalid_request_error", "message": "cut short"},
    }
    fake.push([cut, {"thinking": "fresh thoughts", "text": "Recovered answer"}])
    run = run_codex(gateway, tmp_path, "exec", "answer me c0d3")
    assert run.returncode == 0, run.show()
    assert run.stdout.strip() == "Recovered answer", run.show()
    assert "Reconnecting... 1/5" in run.stderr and "Reconnecting... 2/5" not in run.stderr, run.show()
    first, second = upstream(fake, "c0d3")
    assert [r["scenario_source"] for r in (first, second)] == ["queue", "queue"]
    # The reconnect's conversation is the user's turn alone (the CLI adds a system note of its own).
    assert [m["role"] for m in second["messages"] if m["role"] != "system"] == ["user"]
    assert "answer me c0d3" in user_text(second) and "partial thoughts" not in json.dumps(second["messages"])
