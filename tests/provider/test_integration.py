"""The provider through LiteLLM, end to end: the real Claude Code CLI against the fake upstream.

Every test calls ``litellm.completion`` / ``litellm.acompletion`` (or, where the proxy would,
the handler itself) and checks what really happened: the fake Anthropic server's request log
(model, auth, system prompt, content blocks, tools), the live CLI process (environment,
working directory, command line), the response's text, usage and status, and log records.
Lifecycle limits (slots, queue, timeouts, cancellation) are in ``test_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
import pytest_asyncio
from litellm_claude_code._cli import PASSTHROUGH_VARIABLES, QUIET_VARIABLES, SDK_VARIABLES
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import (
    UPSTREAM_KEY,
    async_wait_until,
    claude_processes,
    make_provider,
    process_environ,
    shutdown_provider,
    zombies,
)
from tests.support.upstream import dialogue, retry_after, user_text

PROVIDER = "cc-integration"

# What a CLI process may see: the provider's allow-list, its own settings, and what the shell
# that execs the CLI adds (PWD, SHLVL, _). Nothing else of the service's environment.
ALLOWED_CLI_VARIABLES = {
    *PASSTHROUGH_VARIABLES,
    *QUIET_VARIABLES,
    *SDK_VARIABLES,
    *("HOME", "TMPDIR", "CLAUDE_CODE_TMPDIR", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_MAX_RETRIES", "API_TIMEOUT_MS"),
    *("ANTHROPIC_API_KEY", "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "PWD", "SHLVL", "_"),
}
module_loop = pytest.mark.asyncio(loop_scope="module")
pytestmark = pytest.mark.integration

# A 1x1 transparent PNG.
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def flag_value(cmdline: list[str], flag: str) -> str | None:
    """The value of ``flag`` on a command line (``--flag value`` or ``--flag=value``); None if absent."""
    for index, arg in enumerate(cmdline):
        if arg == flag and index + 1 < len(cmdline):
            return cmdline[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


def model(alias: str) -> str:
    return f"{PROVIDER}/{alias}"


def mark() -> str:
    """A unique word to find this test's request in the upstream log."""
    return "m" + uuid.uuid4().hex[:12]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def upstream_for(fake: FakeAnthropicServer, word: str) -> list[dict[str, Any]]:
    """The upstream /v1/messages requests whose user text carries ``word``."""
    return [r for r in fake.messages_requests() if r.get("body") and word in user_text(r)]


def one_upstream(fake: FakeAnthropicServer, word: str) -> dict[str, Any]:
    found = upstream_for(fake, word)
    assert found, f"no upstream request carried {word!r}: {[r.get('outcome') for r in fake.messages_requests()]}"
    return found[0]


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integration-state")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def provider(claude_env: dict[str, str], state_dir: Path) -> AsyncIterator[Any]:
    """The module's provider (warm processes on, the default), shut down at module end."""
    handler = make_provider(state_dir, PROVIDER)
    yield handler
    await shutdown_provider(handler)
    assert await async_wait_until(lambda: not claude_processes(), 10), claude_processes()
    assert await async_wait_until(lambda: not zombies(), 5), zombies()


@pytest.fixture
def provider_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog attached to the provider's logger itself (it may not propagate), at DEBUG."""
    logger = logging.getLogger("litellm_claude_code")
    old_level, old_propagate = logger.level, logger.propagate
    logger.propagate = False  # caplog also listens at the root: each record once
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.DEBUG)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


# --------------------------------------------------------------------------- the four methods


@module_loop
async def test_acompletion_returns_the_upstream_reply_and_its_usage(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    usage = {
        "input_tokens": 1111,
        "output_tokens": 22,
        "cache_read_input_tokens": 333,
        "cache_creation_input_tokens": 44,
    }
    response = await litellm.acompletion(
        model=model("sonnet"),
        messages=user(f"say hello {word} " + directive(text=f"Hello there {word}!", usage=usage)),
    )
    assert response.choices[0].message.content == f"Hello there {word}!"
    assert response.choices[0].finish_reason == "stop"
    request = one_upstream(fake, word)
    assert request["model"].startswith("claude-sonnet-")
    assert request["stream"] is True
    # Usage is the upstream's, in OpenAI terms: prompt tokens include cached ones.
    assert response.usage.prompt_tokens == 1111 + 333 + 44
    assert response.usage.completion_tokens == 22
    assert response.usage.total_tokens == 1111 + 333 + 44 + 22
    assert response.usage.prompt_tokens_details.cached_tokens == 333


@module_loop
async def test_astreaming_yields_tokens_as_they_arrive(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    tokens = [f"t{i}{word} " for i in range(6)]
    usage = {"input_tokens": 500, "output_tokens": 6}
    stream = await litellm.acompletion(
        model=model("sonnet"),
        messages=user(f"stream {word} " + directive(text="".join(tokens), token_delay=0.4, usage=usage)),
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[tuple[float, str]] = []
    finish_reasons = []
    usages = []
    async with asyncio.timeout(90):
        async for chunk in stream:
            choice = chunk.choices[0] if chunk.choices else None
            if choice is not None and choice.delta.content:
                arrivals.append((time.monotonic(), choice.delta.content))
            if choice is not None and choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
            if getattr(chunk, "usage", None):
                usages.append(chunk.usage)
    assert "".join(text for _, text in arrivals).strip() == "".join(tokens).strip()
    # One delta per upstream token, spread over the upstream's pace (5 gaps of 0.4 s): the
    # text was passed on as it came, not collected and cut up at the end.
    assert len(arrivals) >= len(tokens)
    assert arrivals[-1][0] - arrivals[0][0] >= 1.0
    assert finish_reasons == ["stop"]
    assert usages, "no usage on the finished stream"
    assert usages[-1].prompt_tokens == 500
    assert usages[-1].completion_tokens == 6


def test_completion_sync(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    response = litellm.completion(
        model=model("haiku"), messages=user(f"sync {word} " + directive(text=f"sync reply {word}"))
    )
    assert response.choices[0].message.content == f"sync reply {word}"
    assert one_upstream(fake, word)["model"].startswith("claude-haiku-")


def test_streaming_sync(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    stream = litellm.completion(
        model=model("haiku"),
        messages=user(f"sync stream {word} " + directive(text=f"one two three {word}", token_delay=0.05)),
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([p for p in pieces if p]) >= 4
    assert "".join(pieces) == f"one two three {word}"
    assert len(upstream_for(fake, word)) == 1


@module_loop
async def test_acompletion_does_not_block_the_event_loop(provider: Any, fake: FakeAnthropicServer) -> None:
    """A ticker keeps running while a request takes seconds: no blocking call on the loop."""
    word = mark()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        # A new system prompt: a cold process start is part of this request.
        response = await litellm.acompletion(
            model=model("sonnet"),
            messages=[
                {"role": "system", "content": f"system {word}"},
                {"role": "user", "content": f"slow {word} " + directive(tokens=6, token_delay=0.4)},
            ],
        )
    finally:
        stop.set()
        await task
    elapsed = time.monotonic() - started
    assert response.choices[0].message.content
    assert elapsed >= 2.0
    # The loop ran all along: the longest stall is a small part of the request.
    assert max(gaps) < min(1.0, elapsed / 2), f"event loop stalled {max(gaps):.2f} s during a {elapsed:.1f} s request"


# --------------------------------------------------------------------------- messages


@module_loop
async def test_system_and_developer_messages_become_the_system_prompt(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    await litellm.acompletion(
        model=model("sonnet"),
        messages=[
            {"role": "system", "content": f"You are terse {word}-S."},
            {"role": "developer", "content": [{"type": "text", "text": f"Answer in French {word}-D."}]},
            {"role": "user", "content": f"hi {word}"},
        ],
    )
    request = one_upstream(fake, word)
    assert f"You are terse {word}-S." in request["system_text"]
    assert f"Answer in French {word}-D." in request["system_text"]
    assert f"{word}-S" not in user_text(request)
    assert request["tool_names"] == []


@module_loop
async def test_multi_turn_history_and_list_content_reach_claude(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    await litellm.acompletion(
        model=model("sonnet"),
        messages=[
            {"role": "user", "content": f"first question {word}-Q1"},
            {"role": "assistant", "content": f"first answer {word}-A1"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"second part one {word}-Q2a"},
                    {"type": "text", "text": f" and part two {word}-Q2b"},
                ],
            },
        ],
    )
    assert dialogue(one_upstream(fake, word)) == [
        ("user", [{"type": "text", "text": f"first question {word}-Q1"}]),
        ("assistant", [{"type": "text", "text": f"first answer {word}-A1"}]),
        (
            "user",
            [
                {"type": "text", "text": f"second part one {word}-Q2a"},
                {"type": "text", "text": f" and part two {word}-Q2b"},
            ],
        ),
    ]


@module_loop
async def test_data_url_image_reaches_claude_as_an_image_block(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    await litellm.acompletion(
        model=model("sonnet"),
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"what is this {word}"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}},
                ],
            }
        ],
    )
    request = one_upstream(fake, word)
    images = [
        block
        for message in request["messages"]
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "image"
    ]
    assert len(images) == 1
    assert images[0]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_1PX}
    assert base64.b64decode(images[0]["source"]["data"]).startswith(b"\x89PNG")


@module_loop
async def test_a_prompt_of_several_megabytes_works(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    # ~2.4 MB. (The CLI itself refuses a turn it estimates past the model's context, about 3 MB
    # of such text, with "Prompt is too long": a 400 through the provider.)
    filler = "lorem ipsum dolor sit amet " * 90_000
    response = await litellm.acompletion(
        model=model("sonnet"),
        messages=user(f"{word} {filler} " + directive(text=f"big ok {word}")),
        timeout=180,
    )
    assert response.choices[0].message.content == f"big ok {word}"
    request = one_upstream(fake, word)
    assert request["body_bytes"] > 2_400_000
    assert filler.strip() in user_text(request)
    assert response.usage.prompt_tokens > 600_000  # the fake's estimate: bytes / 4


# --------------------------------------------------------------------------- models


@module_loop
@pytest.mark.parametrize(
    ("alias", "expected"),
    [("sonnet", "claude-sonnet-"), ("opus", "claude-opus-"), ("haiku", "claude-haiku-")],
)
async def test_model_aliases_reach_upstream_as_that_family(
    provider: Any, fake: FakeAnthropicServer, alias: str, expected: str
) -> None:
    word = mark()
    response = await litellm.acompletion(model=model(alias), messages=user(f"which model {word}"))
    upstream_model = one_upstream(fake, word)["model"]
    assert upstream_model.startswith(expected)
    assert upstream_model in response.choices[0].message.content  # the fake replies with the model it got


@module_loop
async def test_a_full_model_id_reaches_upstream_unchanged(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    await litellm.acompletion(model=model("claude-sonnet-4-5-20250929"), messages=user(f"full id {word}"))
    assert one_upstream(fake, word)["model"] == "claude-sonnet-4-5-20250929"


@module_loop
async def test_the_default_model_applies_when_the_request_names_none(
    claude_env: dict[str, str], fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    handler = make_provider(tmp_path / "state", f"{PROVIDER}-default", default_model="opus", warm_enabled=False)
    word = mark()
    try:
        # What LiteLLM hands the handler for "<provider>/" with no model after the prefix.
        response = await handler.acompletion(model="", messages=user(f"default {word}"), optional_params={})
    finally:
        await shutdown_provider(handler)
    assert one_upstream(fake, word)["model"].startswith("claude-opus-")
    assert response.choices[0].message.content.startswith("fake reply from claude-opus-")


# --------------------------------------------------------------------------- safe by default


@module_loop
async def test_the_cli_runs_isolated_with_an_explicit_environment(
    provider: Any, fake: FakeAnthropicServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Service secrets never reach the CLI; HOME and TMPDIR are private, cwd empty and read-only."""
    master_key = "sk-master-" + uuid.uuid4().hex
    monkeypatch.setenv("LITELLM_MASTER_KEY", master_key)
    monkeypatch.setenv("DATABASE_URL", "postgres://user:secret-db-password@db/litellm")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-" + uuid.uuid4().hex)
    word = mark()
    # Every CLI process this provider starts from here on (spares and the one serving) gets this
    # service environment; each is checked.
    task = asyncio.create_task(
        litellm.acompletion(
            model=model("sonnet"),
            messages=[
                {"role": "user", "content": f"isolation {word}"},
                {"role": "assistant", "content": "noted"},
                {"role": "user", "content": f"slow {word} " + directive(delay=3, text="done")},
            ],
        )
    )
    try:
        assert await async_wait_until(lambda: bool(upstream_for(fake, word)), 60), "the request never reached upstream"
        live = claude_processes()
        assert live, "no live CLI process while the request runs"
        for proc in live:
            env = process_environ(proc.pid)
            assert "LITELLM_MASTER_KEY" not in env
            assert master_key not in "\0".join(env.values())
            assert "DATABASE_URL" not in env
            assert "AWS_SECRET_ACCESS_KEY" not in env
            root = Path(env["HOME"]).parent
            assert root.parent == state_dir / "run"
            assert Path(env["TMPDIR"]).parent == root
            # An environment built from an allow-list: nothing of this test process beyond it.
            assert set(env) <= ALLOWED_CLI_VARIABLES, sorted(set(env) - ALLOWED_CLI_VARIABLES)
            assert env["ANTHROPIC_API_KEY"] == UPSTREAM_KEY
            cwd = Path(proc.cwd())
            assert cwd == (state_dir / "work").resolve()  # one empty, read-only directory for every process
            assert list(cwd.iterdir()) == [] and cwd.stat().st_mode & 0o777 == 0o500
            cmdline = proc.cmdline()
            assert flag_value(cmdline, "--tools") == ""
            assert flag_value(cmdline, "--setting-sources") == ""
            assert "--strict-mcp-config" in cmdline
            assert master_key not in " ".join(cmdline)
            # The conversation lives in the process only: no session file on disk.
            assert not list((root / "home").rglob("*.jsonl"))
    finally:
        response = await asyncio.wait_for(task, 90)
    assert response.choices[0].message.content == "done"
    assert one_upstream(fake, word)["tool_names"] == []


@module_loop
async def test_a_reply_asking_to_run_a_shell_command_runs_nothing(
    provider: Any, fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    word = mark()
    marker = tmp_path / f"pwned-{word}"
    scenario = directive(
        text="Let me create the file.", tool_use={"name": "Bash", "input": {"command": f"touch {marker}"}}
    )
    response = await litellm.acompletion(model=model("sonnet"), messages=user(f"create a file {word} {scenario}"))
    assert response.choices[0].message.content == "Let me create the file."
    assert response.choices[0].finish_reason == "stop"
    request = one_upstream(fake, word)
    assert request["tool_names"] == []
    assert request["scenario"]["tool_use"]["name"] == "Bash"  # the CLI was really asked to run it
    # Give a tool run every chance to happen before looking.
    await asyncio.sleep(2)
    assert not marker.exists()


# --------------------------------------------------------------------------- credentials


@module_loop
@pytest.mark.parametrize(
    ("variable", "via_file", "scheme"),
    [
        ("ANTHROPIC_API_KEY", False, "x-api-key"),
        ("ANTHROPIC_API_KEY", True, "x-api-key"),
        ("CLAUDE_CODE_OAUTH_TOKEN", False, "bearer"),
        ("CLAUDE_CODE_OAUTH_TOKEN", True, "bearer"),
        ("ANTHROPIC_AUTH_TOKEN", False, "bearer"),
        ("ANTHROPIC_AUTH_TOKEN", True, "bearer"),
    ],
)
async def test_each_credential_kind_reaches_upstream(
    provider: Any,
    fake: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    via_file: bool,
    scheme: str,
) -> None:
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    token = f"sk-ant-{variable.lower()}-{uuid.uuid4().hex}"
    if via_file:
        path = tmp_path / "token"
        path.write_text(token + "\n")
        monkeypatch.setenv(variable + "_FILE", str(path))
    else:
        monkeypatch.setenv(variable, token)
    fake.set_accept_keys([token])  # any other credential is a 401
    word = mark()
    response = await litellm.acompletion(model=model("sonnet"), messages=user(f"auth {word}"))
    assert response.choices[0].message.content
    request = one_upstream(fake, word)
    assert request["auth"] == token
    assert request["auth_scheme"] == scheme
    if variable == "CLAUDE_CODE_OAUTH_TOKEN":
        assert "oauth-2025-04-20" in request["headers"].get("anthropic-beta", "")


@module_loop
async def test_a_rotated_token_file_is_used_by_the_next_request(
    provider: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = tmp_path / "api-key"
    old, new = f"sk-ant-old-{uuid.uuid4().hex}", f"sk-ant-new-{uuid.uuid4().hex}"
    path.write_text(old)
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(path))
    first = mark()
    await litellm.acompletion(model=model("sonnet"), messages=user(f"before {first}"))
    assert one_upstream(fake, first)["auth"] == old
    # Rotate in place, as the role does; the old one is now refused upstream.
    path.write_text(new)
    fake.set_accept_keys([new])
    second = mark()
    response = await litellm.acompletion(model=model("sonnet"), messages=user(f"after {second}"))
    assert response.choices[0].message.content
    assert one_upstream(fake, second)["auth"] == new
    assert all(r["auth"] == new for r in upstream_for(fake, second))


# --------------------------------------------------------------------------- errors


@module_loop
@pytest.mark.parametrize(
    ("upstream_status", "status", "exception"),
    [
        (401, 401, litellm.AuthenticationError),
        (429, 429, litellm.RateLimitError),
        (529, 503, litellm.ServiceUnavailableError),
        (500, 502, litellm.BadGatewayError),
    ],
)
async def test_upstream_errors_map_to_statuses(
    provider: Any, fake: FakeAnthropicServer, upstream_status: int, status: int, exception: type[Exception]
) -> None:
    word = mark()
    started = time.monotonic()
    with pytest.raises(exception) as caught:
        await litellm.acompletion(
            model=model("sonnet"), messages=user(f"fail {word} " + directive(error={"status": upstream_status}))
        )
    assert caught.value.status_code == status
    assert time.monotonic() - started < 60
    assert upstream_for(fake, word)[0]["status"] == upstream_status
    if upstream_status == 401:
        assert "ANTHROPIC_API_KEY" in str(caught.value)  # names the token setting to fix
        assert UPSTREAM_KEY not in str(caught.value)


@module_loop
async def test_upstream_429_passes_its_retry_after_on(
    claude_env: dict[str, str], fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    """With the CLI allowed one retry (the default), the upstream's Retry-After reaches the client."""
    handler = make_provider(tmp_path / "state", f"{PROVIDER}-retry", cli_max_retries=1, warm_enabled=False)
    word = mark()
    try:
        with pytest.raises(litellm.RateLimitError) as caught:
            await litellm.acompletion(
                model=f"{PROVIDER}-retry/sonnet",
                messages=user(f"limited {word} " + directive(error={"status": 429, "retry_after": 3})),
            )
    finally:
        await shutdown_provider(handler)
    assert caught.value.status_code == 429
    assert int(retry_after(caught.value) or 0) in (3, 4)
    attempts = upstream_for(fake, word)
    assert len(attempts) >= 2
    assert attempts[-1]["time"] - attempts[0]["time"] >= 2.5  # the CLI waited as told before its retry


@module_loop
async def test_an_error_mid_stream_ends_the_stream_with_an_error(provider: Any, fake: FakeAnthropicServer) -> None:
    word = mark()
    stream = await litellm.acompletion(
        model=model("sonnet"),
        messages=user(f"break {word} " + directive(tokens=10, token_delay=0.05, error_after_tokens=3)),
        stream=True,
    )
    received = []
    with pytest.raises(Exception) as caught:  # LiteLLM wraps it; the status is checked below
        async with asyncio.timeout(90):
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
    assert not isinstance(caught.value, TimeoutError), "the stream hung instead of ending with an error"
    assert getattr(caught.value, "status_code", None) == 503, repr(caught.value)
    assert "".join(received).startswith("fake reply from")
    assert len(received) == 3
    assert upstream_for(fake, word)[0]["outcome"] == "stream_error"


@module_loop
async def test_a_missing_cli_is_a_500_that_says_how_to_install(
    claude_env: dict[str, str], fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "claude"
    handler = make_provider(tmp_path / "state", f"{PROVIDER}-nocli", cli_path=str(missing), warm_enabled=False)
    try:
        with pytest.raises(litellm.InternalServerError) as caught:
            await litellm.acompletion(model=f"{PROVIDER}-nocli/sonnet", messages=user("hello"))
    finally:
        await shutdown_provider(handler)
    assert caught.value.status_code == 500
    message = str(caught.value)
    assert "LITELLM_CLAUDE_CODE_CLI_PATH" in message
    assert str(missing) in message
    assert "pip install claude-agent-sdk" in message
    assert fake.messages_requests() == []


@module_loop
@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        (
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice names 'g'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
                    }
                ]
            },
            "data: URL",
        ),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "no user message"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n:"),
    ],
)
async def test_a_bad_request_is_a_400_before_any_cli_process_starts(
    claude_env: dict[str, str], fake: FakeAnthropicServer, tmp_path: Path, kwargs: dict[str, Any], says: str
) -> None:
    state = tmp_path / "state"
    handler = make_provider(state, f"{PROVIDER}-bad")
    before = {p.pid for p in claude_processes()}
    try:
        with pytest.raises(litellm.BadRequestError) as caught:
            await litellm.acompletion(model=f"{PROVIDER}-bad/sonnet", **kwargs)
        assert caught.value.status_code == 400
        assert says in str(caught.value)
        # Nothing was started: no workspace was ever made, no new CLI process, nothing upstream.
        assert not (state / "run").exists()
        # (Other providers of this session may start spares meanwhile: only this one's count.)
        new = [p for p in claude_processes() if p.pid not in before]
        assert not [p for p in new if str(state) in process_environ(p.pid).get("HOME", "")]
        assert fake.messages_requests() == []
    finally:
        await shutdown_provider(handler)


# --------------------------------------------------------------------------- logging


@module_loop
async def test_one_request_line_per_request_and_no_credential_in_any_record(
    provider: Any, fake: FakeAnthropicServer, provider_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-api03-" + uuid.uuid4().hex + uuid.uuid4().hex
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    ok_word, bad_word = mark(), mark()
    await litellm.acompletion(model=model("sonnet"), messages=user(f"log ok {ok_word}"))
    stream = await litellm.acompletion(model=model("haiku"), messages=user(f"log stream {ok_word}"), stream=True)
    async for _ in stream:
        pass
    with pytest.raises(litellm.AuthenticationError):
        await litellm.acompletion(
            model=model("sonnet"), messages=user(f"log 401 {bad_word} {directive(error={'status': 401})}")
        )
    assert one_upstream(fake, ok_word)["auth"] == secret  # the secret really was in use

    lines = [r for r in provider_logs.records if r.getMessage().startswith("claude_code_request ")]
    assert len(lines) == 3, [r.getMessage() for r in lines]
    assert all(r.levelno == logging.INFO for r in lines)
    fields = [dict(item.split("=", 1) for item in r.getMessage().split(" ")[1:] if "=" in item) for r in lines]
    for entry in fields:
        for key in (
            "request_id",
            "model",
            "stream",
            "status",
            "warm",
            "queue_ms",
            "cli_start_ms",
            "ttft_ms",
            "total_ms",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "finish_reason",
        ):
            assert key in entry, (key, entry)
    assert [(f["model"], f["stream"], f["status"]) for f in fields] == [
        ("sonnet", "false", "200"),
        ("haiku", "true", "200"),
        ("sonnet", "false", "401"),
    ]
    assert int(fields[0]["completion_tokens"]) > 0 and int(fields[0]["prompt_tokens"]) > 0
    assert fields[0]["finish_reason"] == "stop"
    assert provider_logs.records, "nothing was logged"
    for record in provider_logs.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "") + repr(record.__dict__)
        assert secret not in text, f"credential in a log record: {record.getMessage()[:200]}"
    assert secret not in provider_logs.text
    # The process that met the 401 is stopped; it is a zombie only until the SDK reaps it.
    assert await async_wait_until(lambda: not zombies(), 5), zombies()


# --------------------------------------------------------------------------- reasoning through the SDK


@module_loop
async def test_reasoning_through_the_sdk_with_allowed_openai_params(provider: Any, fake: FakeAnthropicServer) -> None:
    """The documented route outside the proxy: LiteLLM's allowed_openai_params names the two parameters."""
    word = mark()
    with pytest.raises(litellm.UnsupportedParamsError):
        await litellm.acompletion(model=model("sonnet"), messages=user("x"), reasoning_effort="high")
    response = await litellm.acompletion(
        model=model("sonnet"),
        messages=user(f"why {word} " + directive(thinking="because", text="so")),
        reasoning_effort="high",
        allowed_openai_params=["reasoning_effort", "thinking"],
    )
    message = response.choices[0].message
    assert message.content == "so" and message.reasoning_content == "because"
    assert one_upstream(fake, word)["body"]["output_config"]["effort"] == "high"
