"""aider through the gateway, on its defaults: the released aider (its own venv, its own litellm and
openai) edits a file with an answer the fake upstream scripts as Claude would write it.

aider is given only the gateway's URL, a person's key and ``openai/<alias>`` (the docs/clients.md
snippet). It sends ``temperature: 0`` on every request and exits 0 even after an API error, so the
tests read its output and the edited file, and check what reached "Claude" (the fake's log).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.provider.conftest import Gateway
from tests.support.clients import binary
from tests.support.docs_snippets import snippet
from tests.support.stack import wait_until
from tests.support.upstream import user_text

pytestmark = pytest.mark.integration

ORIGINAL = 'def greet(name):\n    return "Hello, " + name\n'
EDITED = 'def greet(name):\n    return "Bonjour, " + name\n'
TIMEOUT = 180


@dataclass(frozen=True)
class Run:
    """One aider run: what it printed, the file after it, and the upstream requests it caused."""

    marker: str
    output: str
    returncode: int
    file_after: str
    upstream: list[dict[str, Any]]
    log_lines: list[dict[str, str]]


def whole_file_answer(name: str, content: str) -> str:
    """An answer in aider's ``whole`` edit format (what it asks a model it does not know for)."""
    return f"I changed the greeting.\n\n{name}\n```python\n{content}```\n"


def run_aider(gateway: Gateway, upstream: FakeAnthropicServer, workdir: Path, marker: str) -> Run:
    """The docs' aider command as a shell runs it, plus what makes it one non-interactive turn."""
    aider = binary("aider")
    workdir.mkdir()
    home = workdir / "home"
    home.mkdir()
    target = workdir / "greet.py"
    target.write_text(ORIGINAL)
    message = f"{marker} Change the greeting to French. " + directive(text=whole_file_answer("greet.py", EDITED))
    batch = [
        "--yes",
        "--no-git",
        "--no-check-update",
        "--analytics-disable",
        "--message",
        message,
        "greet.py",
    ]
    env = {
        "PATH": f"{aider.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "GATEWAY_KEY": gateway.key,
        "TERM": "dumb",
    }
    log_start = len(gateway.proxy.log_text())
    done = subprocess.run(
        ["bash", "-c", snippet("aider", gateway.url) + ' "$@"', "aider", *batch],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    requests = [r for r in upstream.messages_requests() if marker in user_text(r)]

    def lines() -> list[dict[str, str]]:
        new = gateway.proxy.log_text()[log_start:].splitlines()
        found = [line.split("claude_code_request ", 1)[1] for line in new if "claude_code_request " in line]
        return [dict(re.findall(r"(\w+)=(\S+)", line)) for line in found]

    wait_until(lambda: len(lines()) >= len(requests), 10)
    return Run(marker, done.stdout + done.stderr, done.returncode, target.read_text(), requests, lines())


@pytest.fixture(scope="module")
def run(gateway: Gateway, upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """aider streamed, its default. Not also with ``--no-stream``: aider's start-up takes about 20 s
    here, and the non-streamed path is the openai SDK's (test_clients_python.py)."""
    upstream.clear()
    return run_aider(gateway, upstream, tmp_path_factory.mktemp("aider") / "run", "aider-stream-3f1c")


def test_aider_edits_the_file_with_claudes_answer(run: Run) -> None:
    assert run.returncode == 0, run.output
    assert not re.search(r"litellm\.\w*Error|OpenAIException|APIError", run.output), run.output
    assert "Model: openai/sonnet with whole edit format" in run.output, run.output
    assert "I changed the greeting." in run.output, run.output
    assert "Applied edit to greet.py" in run.output, run.output
    assert run.file_after == EDITED, run.output


def test_claude_got_aiders_request_once_with_the_file(run: Run) -> None:
    """One streamed completion (no retry after a refusal), carrying the file and the instruction."""
    (request,) = run.upstream
    text = user_text(request)
    assert ORIGINAL.strip() in text and "Change the greeting to French." in text
    assert request["tool_names"] == []  # aider's edits are text: Claude is offered no tool
    (line,) = run.log_lines
    assert line["status"] == "200" and line["model"] == "sonnet"
    assert line["stream"] == "true"
    # aider's temperature 0 is served, not applied, and named (also in x-claude-code-not-applied).
    assert "temperature" in line.get("not_applied", "").split(","), line
