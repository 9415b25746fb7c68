"""The examples in ``examples/`` run as a user would run them, against the fake upstream.

Each example is started as a subprocess with a deployment's environment (a credential and
``ANTHROPIC_BASE_URL``), so it goes through the real provider, the real SDK and the real
Claude Code CLI. The tests check what the example printed and what reached the upstream,
so an example that silently stops working fails here.
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.upstream import user_text

pytestmark = pytest.mark.integration

# The session fixtures (`upstream`, `fake`, `claude_env`, `proxy`) come from this directory's
# conftest.py; nothing is imported from it by name, so collection does not depend on which
# conftest module Python last imported under the name "conftest".
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PYTHON_EXAMPLES = ("basic_completion.py", "streaming.py", "async_completion.py", "openai_client.py")
CREDENTIAL_NAMES = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
RUN_TIMEOUT = 240.0


def base_env() -> dict[str, str]:
    """This process's environment without any Claude credential or provider setting."""
    dropped = {*CREDENTIAL_NAMES, *(n + "_FILE" for n in CREDENTIAL_NAMES), "CREDENTIALS_DIRECTORY"}
    dropped |= {"LITELLM_MASTER_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "STATE_DIRECTORY"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("LITELLM_CLAUDE_CODE_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def upstream_key(claude_env: dict[str, str]) -> str:
    """The API key the session's deployments use towards the fake upstream."""
    return claude_env["ANTHROPIC_API_KEY"]


@pytest.fixture
def master_key(proxy: Any) -> str:
    """The master key the session's proxy was started with (read from its environment)."""
    return psutil.Process(proxy.process.pid).environ()["LITELLM_MASTER_KEY"]


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


@pytest.fixture
def example_env(fake: FakeAnthropicServer, upstream_key: str, tmp_path: Path) -> dict[str, str]:
    """What a deployment sets for a script using the provider: upstream, key, state directory."""
    env = base_env()
    env.update(
        {
            "ANTHROPIC_BASE_URL": fake.base_url,
            "ANTHROPIC_API_KEY": upstream_key,
            "LITELLM_CLAUDE_CODE_STATE_DIR": str(tmp_path / "state"),
            "LITELLM_CLAUDE_CODE_CLI_MAX_RETRIES": "0",
        }
    )
    return env


def run_example(name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def processes_under(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside ``directory`` (a CLI's workspace)."""
    found = []
    prefix = str(directory.resolve()) + os.sep
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and (proc.cwd() + os.sep).startswith(prefix):
                found.append(proc)
    return found


def assert_cleaned_up(state_dir: Path) -> None:
    """The example left no CLI process and no request workspace behind."""
    assert state_dir.is_dir(), "the example never used its state directory"
    assert wait_until(lambda: not processes_under(state_dir), timeout=15), [
        p.info for p in psutil.process_iter(["pid", "name", "cmdline"]) if p in processes_under(state_dir)
    ]
    run_dir = state_dir / "run"
    leftovers = list(run_dir.iterdir()) if run_dir.is_dir() else []
    assert leftovers == [], f"workspaces left behind: {leftovers}"


def assert_sonnet(request: dict[str, Any]) -> None:
    model = request["model"]
    assert model.startswith("claude-") and "sonnet" in model, model


# --------------------------------------------------------------------------- every example


@pytest.mark.parametrize("name", PYTHON_EXAMPLES)
def test_example_has_run_instructions(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert f"python examples/{name}" in docstring, f"{name}: the docstring must say how to run it"


@pytest.mark.parametrize("name", PYTHON_EXAMPLES)
def test_example_refuses_to_run_without_credentials(name: str, fake: FakeAnthropicServer, tmp_path: Path) -> None:
    env = base_env()
    env["ANTHROPIC_BASE_URL"] = fake.base_url
    env["LITELLM_CLAUDE_CODE_STATE_DIR"] = str(tmp_path / "state")
    proc = run_example(name, ["hello"], env)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    assert proc.stdout == ""
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ")
    expected = ("LITELLM_MASTER_KEY", "OPENAI_BASE_URL") if name == "openai_client.py" else CREDENTIAL_NAMES
    for variable in expected:
        assert variable in message, message
    assert "Traceback" not in proc.stderr
    assert fake.requests() == []


# --------------------------------------------------------------------------- basic_completion.py


@pytest.mark.parametrize(
    ("variable", "scheme"), [("ANTHROPIC_API_KEY", "x-api-key"), ("CLAUDE_CODE_OAUTH_TOKEN", "bearer")]
)
def test_basic_completion(
    variable: str,
    scheme: str,
    fake: FakeAnthropicServer,
    example_env: dict[str, str],
    upstream_key: str,
    tmp_path: Path,
) -> None:
    token = "sk-ant-oat01-example-test-token" if variable == "CLAUDE_CODE_OAUTH_TOKEN" else upstream_key
    env = {k: v for k, v in example_env.items() if k != "ANTHROPIC_API_KEY"}
    env[variable] = token
    scenario = {
        "text": "Paris is the capital of France.",
        "usage": {"input_tokens": 1000, "output_tokens": 6, "cache_read_input_tokens": 50},
    }
    prompt = "What is the capital of France? " + directive(**scenario)
    proc = run_example("basic_completion.py", [prompt], env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    (request,) = fake.messages_requests()
    assert_sonnet(request)
    assert request["auth"] == token and request["auth_scheme"] == scheme
    assert "What is the capital of France?" in user_text(request)
    assert "You are a concise assistant." in request["system_text"]

    lines = proc.stdout.splitlines()
    assert lines == [
        "Paris is the capital of France.",
        f"model: {request['model']}",
        "finish_reason: stop",
        # prompt tokens count the cached ones too (OpenAI's convention)
        "usage: prompt_tokens=1050 completion_tokens=6 total_tokens=1056",
    ]
    assert token not in proc.stdout + proc.stderr
    assert_cleaned_up(tmp_path / "state")


# --------------------------------------------------------------------------- streaming.py


def test_streaming_prints_tokens_as_they_arrive(
    fake: FakeAnthropicServer, example_env: dict[str, str], tmp_path: Path
) -> None:
    words = [f"word{i}" for i in range(1, 9)]
    delay = 0.4
    prompt = "Stream something. " + directive(text=" ".join(words), token_delay=delay)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "streaming.py"), prompt],
        env=example_env,
        cwd=EXAMPLES.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    chunks: list[tuple[float, bytes]] = []
    stderr: list[bytes] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while data := os.read(fd, 4096):
            chunks.append((time.monotonic(), data))

    def read_stderr() -> None:
        assert process.stderr is not None
        stderr.append(process.stderr.read())

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        returncode = process.wait(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    for reader in readers:
        reader.join(timeout=10)
    output = b"".join(data for _, data in chunks).decode()
    assert returncode == 0, b"".join(stderr).decode()[-3000:]

    def arrival(word: str) -> float:
        seen = b""
        for when, data in chunks:
            seen += data
            if word.encode() in seen:
                return when
        raise AssertionError(f"{word} never printed: {output!r}")

    # The fake sleeps `delay` before each word, so a client that gets them as they stream sees
    # the first and the last word at least (n - 1) * delay apart; a buffered one sees them together.
    spread = arrival(words[-1]) - arrival(words[0])
    assert spread >= 0.5 * (len(words) - 1) * delay, f"tokens arrived together ({spread:.2f} s): not streamed"

    lines = output.splitlines()
    assert lines[0] == " ".join(words)
    assert lines[1] == "finish_reason: stop"
    assert lines[2].startswith("usage: prompt_tokens=") and f"completion_tokens={len(words)} " in lines[2]

    (request,) = fake.messages_requests()
    assert_sonnet(request)
    assert request["stream"] is True and request["outcome"] == "ok"
    assert "Stream something." in user_text(request)
    assert_cleaned_up(tmp_path / "state")


# --------------------------------------------------------------------------- async_completion.py


def test_async_completion_runs_requests_concurrently(
    fake: FakeAnthropicServer, example_env: dict[str, str], tmp_path: Path
) -> None:
    count, tokens, delay = 3, 10, 0.6
    prompts = [
        f"Question number {i}. " + directive(text=" ".join([f"answer{i}"] * tokens), token_delay=delay)
        for i in range(count)
    ]
    proc = run_example("async_completion.py", prompts, example_env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = proc.stdout.splitlines()
    for i in range(count):
        assert f"[{i}] " + " ".join([f"answer{i}"] * tokens) in lines, proc.stdout
        assert any(line.startswith(f"[{i}] usage: ") and f"completion_tokens={tokens}" in line for line in lines)
    assert lines[-1].startswith(f"{count} requests in ")

    requests = fake.messages_requests()
    assert len(requests) == count
    for request in requests:
        assert_sonnet(request)
        assert request["outcome"] == "ok"
    asked = sorted(next(i for i in range(count) if f"Question number {i}." in user_text(r)) for r in requests)
    assert asked == list(range(count))
    # Each answer streams for at least tokens * delay seconds upstream. Had the requests run one
    # after another, each would have reached the upstream only after the previous one ended.
    starts = sorted(r["time"] for r in requests)
    assert starts[-1] - starts[0] < tokens * delay, f"requests did not overlap: {starts}"
    assert_cleaned_up(tmp_path / "state")


# --------------------------------------------------------------------------- openai_client.py


def test_openai_client_streams_through_the_proxy(
    proxy: Any, fake: FakeAnthropicServer, master_key: str, upstream_key: str
) -> None:
    env = base_env()  # no Claude credential: the proxy holds it
    env.update({"OPENAI_BASE_URL": proxy.base_url + "/v1", "LITELLM_MASTER_KEY": master_key})
    text = "The sky scatters blue light the most."
    scenario = {"text": text, "usage": {"input_tokens": 200, "output_tokens": 7}}
    proc = run_example("openai_client.py", ["Why is the sky blue? " + directive(**scenario)], env)
    assert proc.returncode == 0, proc.stderr[-3000:] + proxy.log_text()[-3000:]
    assert proc.stdout.splitlines() == [
        text,
        "finish_reason: stop",
        "usage: prompt_tokens=200 completion_tokens=7 total_tokens=207",
    ]
    (request,) = fake.messages_requests()
    assert_sonnet(request)
    assert request["auth"] == upstream_key  # the proxy's credential, not the client's key
    assert request["stream"] is True
    assert "Why is the sky blue?" in user_text(request)


def test_openai_client_reports_a_wrong_key(proxy: Any, fake: FakeAnthropicServer) -> None:
    env = base_env()
    env.update({"OPENAI_BASE_URL": proxy.base_url + "/v1", "LITELLM_MASTER_KEY": "sk-not-the-master-key"})
    proc = run_example("openai_client.py", ["hello"], env)
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-3000:])
    assert "HTTP 401" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fake.messages_requests() == []
