"""The whole chain through a real ``litellm --config examples/proxy_config.yaml`` process.

An HTTP client (the official ``openai`` package, or ``httpx`` where the raw wire matters)
talks to the LiteLLM proxy; the proxy runs the provider, the provider runs the bundled
Claude Code CLI, and the CLI talks to the fake Anthropic API, which every test scripts
through a directive in the prompt (docs/testing.md). Nothing of the stack is mocked.

Every assertion is on something observed: HTTP statuses, headers and bodies, chunk arrival
times, the fake upstream's request log, the proxy's process table and its log file.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.proxy_http import HTTP_TIMEOUT, assert_no_traceback, error_message, log_lines, post, user
from tests.support.stack import (
    EXAMPLES,
    MASTER_KEY,
    UPSTREAM_KEY,
    Proxy,
    process_environ,
    start_proxy,
    stop_proxy,
    wait_until,
    zombies,
)

pytestmark = pytest.mark.integration

# What the session `proxy` fixture configures (tests/provider/conftest.py).
MAX_CONCURRENCY = 2
WARM_MAX = 1
QUEUE_TIMEOUT = 1.0
# How long the processes get to settle after a test (two shared cores: generous).
SETTLE = 15.0


# --------------------------------------------------------------------------- helpers


class RawStream:
    """One streamed request read line by line, with each SSE data line's arrival time."""

    def __init__(self, status: int, headers: httpx.Headers, body: str, events: list[tuple[float, str]]) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.events = events  # (seconds since the request was sent, data payload)

    @property
    def payloads(self) -> list[str]:
        return [data for _, data in self.events]

    @property
    def done(self) -> bool:
        return "[DONE]" in self.payloads

    def json_events(self) -> list[dict[str, Any]]:
        return [json.loads(data) for data in self.payloads if data != "[DONE]"]

    def errors(self) -> list[dict[str, Any]]:
        return [event["error"] for event in self.json_events() if "error" in event]

    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or ""
            for event in self.json_events()
            for choice in event.get("choices", [])
            if "delta" in choice
        )


def stream_raw(proxy: Proxy, body: dict[str, Any]) -> RawStream:
    started = time.monotonic()
    events: list[tuple[float, str]] = []
    with httpx.stream(
        "POST",
        proxy.base_url + "/v1/chat/completions",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=HTTP_TIMEOUT,
    ) as response:
        if response.status_code != 200:
            return RawStream(response.status_code, response.headers, response.read().decode(), [])
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append((time.monotonic() - started, line[5:].strip()))
        return RawStream(200, response.headers, "", events)


def upstream_requests(fake: FakeAnthropicServer, marker: str) -> list[dict[str, Any]]:
    """The upstream /v1/messages requests whose prompt carries ``marker``."""
    return [request for request in fake.messages_requests() if marker in json.dumps(request["messages"])]


def cli_process_sending(proxy: Proxy, fake: FakeAnthropicServer, marker: str) -> list[psutil.Process]:
    """The proxy's CLI processes holding the connection that sent the upstream request with ``marker``.

    The fake records each request's peer address; the process owning that TCP connection sent it.
    """
    peers = {request["peer"] for request in upstream_requests(fake, marker)}
    found = []
    for proc in proxy.claude_processes():
        with contextlib.suppress(psutil.Error):
            local = {f"{c.laddr.ip}:{c.laddr.port}" for c in proc.net_connections(kind="tcp") if c.laddr}
            if local & peers:
                found.append(proc)
    return found


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def processes_within_caps(proxy: Proxy) -> Iterator[None]:
    """After each test no request is running: only idle warm processes may remain, within the caps."""
    yield
    settled = wait_until(lambda: len(proxy.claude_processes()) <= WARM_MAX, SETTLE, interval=0.2)
    left = [(p.pid, p.status()) for p in proxy.claude_processes() if not gone(p)]
    assert settled, f"CLI processes left under the proxy after the test: {left} (at most {WARM_MAX} idle allowed)"
    # A process being stopped is a zombie for the moment before the SDK reaps it; one that stays is a leak.
    parent = psutil.Process(proxy.process.pid)
    assert wait_until(lambda: not zombies(parent), SETTLE, interval=0.2), "the proxy left zombie processes"


# --------------------------------------------------------------------------- auth and health


def test_health_endpoints_answer_without_a_key(proxy: Proxy) -> None:
    live = httpx.get(proxy.base_url + "/health/liveliness", timeout=HTTP_TIMEOUT)
    ready = httpx.get(proxy.base_url + "/health/readiness", timeout=HTTP_TIMEOUT)
    assert live.status_code == 200, live.text
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "healthy"
    # The same proxy does check keys elsewhere: the open paths are the exception.
    models = httpx.get(proxy.base_url + "/v1/models", timeout=HTTP_TIMEOUT)
    assert models.status_code == 401, models.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer sk-not-the-master-key"}, id="wrong-bearer"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-without-key"),
        pytest.param({"x-api-key": "sk-not-the-master-key"}, id="wrong-x-api-key"),
        pytest.param({"Authorization": f"Bearer {MASTER_KEY}x"}, id="master-key-prefix"),
    ],
)
def test_wrong_or_missing_master_key_is_401(proxy: Proxy, fake: FakeAnthropicServer, headers: dict[str, str]) -> None:
    response = post(proxy, {"model": "sonnet", "messages": user("auth check")}, headers=headers)
    assert response.status_code == 401, response.text
    assert "key" in error_message(response).lower()
    assert_no_traceback(response.text)
    assert fake.messages_requests() == [], "an unauthenticated request reached the upstream"


def test_wrong_key_through_the_openai_client(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        proxy.client(api_key="sk-wrong").chat.completions.create(model="sonnet", messages=user("auth check"))
    assert caught.value.status_code == 401
    assert fake.messages_requests() == []


# --------------------------------------------------------------------------- answers


def test_completion_goes_through_the_cli_without_tools(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "proxy-plain-7f3a"
    response = proxy.client().chat.completions.create(
        model="sonnet",
        messages=[{"role": "system", "content": f"system {marker}"}, *user(f"hello {marker}")],
    )
    (request,) = upstream_requests(fake, marker)
    upstream_model = request["model"]
    words = ["fake", "reply", "from", upstream_model] + [f"tok{i}" for i in range(4, 12)]
    assert response.choices[0].message.content == " ".join(words)
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "sonnet"
    usage = response.usage
    assert usage is not None
    assert usage.completion_tokens == 12
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # What reached the upstream: our credential, our system prompt, no tool definitions.
    assert request["auth"] == UPSTREAM_KEY
    assert f"system {marker}" in request["system_text"]
    assert request["tool_names"] == []
    assert not request["body"].get("tools")
    assert request["stream"] is True


@pytest.mark.parametrize("alias", ["sonnet", "opus", "haiku"])
def test_model_alias_reaches_the_matching_upstream_model(proxy: Proxy, fake: FakeAnthropicServer, alias: str) -> None:
    marker = f"alias-{alias}-41c2"
    response = proxy.client().chat.completions.create(model=alias, messages=user(marker))
    (request,) = upstream_requests(fake, marker)
    assert request["model"].startswith("claude-"), request["model"]
    assert alias in request["model"], request["model"]
    for other in {"sonnet", "opus", "haiku"} - {alias}:
        assert other not in request["model"]
    assert response.model == alias
    assert response.choices[0].message.content.startswith(f"fake reply from {request['model']} ")


def test_stream_arrives_incrementally_with_usage(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    delay = 0.25
    marker = "stream-incremental-90be"
    arrivals: list[tuple[float, str]] = []
    usage_chunks = []
    finish_reasons = []
    started = time.monotonic()
    stream = proxy.client().chat.completions.create(
        model="sonnet",
        messages=user(f"{marker} {directive(token_delay=delay)}"),
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage_chunks.append(chunk.usage)
        for choice in chunk.choices:
            if choice.delta.content:
                arrivals.append((time.monotonic() - started, choice.delta.content))
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    (request,) = upstream_requests(fake, marker)
    text = "".join(piece for _, piece in arrivals)
    assert text == "fake reply from " + request["model"] + " " + " ".join(f"tok{i}" for i in range(4, 12))
    assert finish_reasons == ["stop"]
    # Incremental: the upstream spends 12 x delay on the reply; the first words arrive long
    # before the last ones, at many distinct moments (not one burst at the end).
    times = [t for t, _ in arrivals]
    assert times[-1] - times[0] >= 0.5 * 11 * delay, times
    distinct = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] >= delay / 3]
    assert len(distinct) >= 6, times
    # include_usage: the usage rides one chunk with no choices, after the text.
    assert len(usage_chunks) == 1, usage_chunks
    usage = usage_chunks[0]
    assert usage.completion_tokens == 12
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_raw_stream_ends_with_done(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    stream = stream_raw(proxy, {"model": "haiku", "messages": user("raw stream 5d1e")})
    assert stream.status == 200
    assert stream.payloads[-1] == "[DONE]"
    assert stream.errors() == []
    assert stream.text().startswith("fake reply from claude-")


# --------------------------------------------------------------------------- upstream faults


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("upstream_status", "status", "words"),
    [
        (401, 401, "ANTHROPIC_API_KEY"),
        (429, 429, "rate limit"),
        (500, 502, "500"),
        (529, 503, "overloaded"),
    ],
)
def test_upstream_error_status_is_mapped(
    proxy: Proxy, fake: FakeAnthropicServer, upstream_status: int, status: int, words: str, stream: bool
) -> None:
    marker = f"fault-{upstream_status}-{stream}-a0c9"
    scenario = directive(error={"status": upstream_status, "retry_after": 7})
    with pytest.raises(openai.APIStatusError) as caught:
        response = proxy.client().chat.completions.create(
            model="sonnet", messages=user(f"{marker} {scenario}"), stream=stream
        )
        if stream:
            for _ in response:  # type: ignore[union-attr]
                pass
    error = caught.value
    assert error.status_code == status, error.response.text
    assert words.lower() in error.response.text.lower()
    assert_no_traceback(error.response.text)
    if status in (429, 503):
        retry_after = error.response.headers.get("retry-after")
        assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, error.response.headers
    # One upstream call: the provider runs the CLI without retries here.
    requests = upstream_requests(fake, marker)
    assert len(requests) == 1
    assert requests[0]["status"] == upstream_status
    assert UPSTREAM_KEY not in error.response.text


def test_error_mid_stream_ends_the_stream_with_an_error(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "midstream-raw-3b8e"
    stream = stream_raw(
        proxy, {"model": "sonnet", "messages": user(f"{marker} {directive(error_after_tokens=3, token_delay=0.05)}")}
    )
    assert stream.status == 200
    assert stream.text() == "fake reply from ", stream.payloads
    errors = stream.errors()
    assert len(errors) == 1, stream.payloads
    assert "overloaded" in errors[0]["message"].lower()
    assert not stream.done, "a failed stream must not end with [DONE]"
    assert stream.payloads[-1] != "[DONE]"
    assert "error" in json.loads(stream.payloads[-1])
    outcomes = [request["outcome"] for request in upstream_requests(fake, marker)]
    assert outcomes[0] == "stream_error", outcomes

    # The official client raises instead of returning a truncated answer as complete.
    received = []
    stream_api = proxy.client().chat.completions.create(
        model="sonnet",
        messages=user(f"midstream-client-3b8e {directive(error_after_tokens=3, token_delay=0.05)}"),
        stream=True,
    )
    with pytest.raises(openai.APIError):
        for chunk in stream_api:
            received.extend(choice.delta.content or "" for choice in chunk.choices)
    assert "".join(received) == "fake reply from "


@pytest.mark.parametrize("drop_after", [0, 3], ids=["before-first-token", "after-3-tokens"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_dropped_upstream_connection_is_an_error_never_a_hang(
    proxy: Proxy, fake: FakeAnthropicServer, drop_after: int, stream: bool
) -> None:
    marker = f"drop-{drop_after}-{stream}-77d0"
    body = {"model": "sonnet", "messages": user(f"{marker} {directive(drop_after_tokens=drop_after)}")}
    started = time.monotonic()
    if stream:
        result = stream_raw(proxy, body)
        if result.status == 200:
            assert result.errors(), result.payloads
            assert not result.done
        else:
            assert result.status >= 500, result.body
            assert_no_traceback(result.body)
    else:
        response = post(proxy, body)
        assert response.status_code >= 500, response.text
        assert "connection" in error_message(response).lower()
        assert_no_traceback(response.text)
    assert time.monotonic() - started < HTTP_TIMEOUT
    outcomes = {request["outcome"] for request in upstream_requests(fake, marker)}
    assert outcomes == {"dropped"}, outcomes


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        pytest.param({"messages": []}, "non-empty", id="empty-messages"),
        pytest.param({"messages": [{"role": "wizard", "content": "hi"}]}, "role 'wizard'", id="unknown-role"),
        pytest.param(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        ],
                    }
                ]
            },
            "data: url",
            id="remote-image-url",
        ),
        pytest.param(
            {
                "messages": user("use the tool"),
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
                    }
                ],
                "tool_choice": {"type": "function", "function": {"name": "get_date"}},
            },
            "tool_choice names 'get_date', which is not among the request's tools",
            id="unknown-named-tool",
        ),
    ],
)
def test_bad_input_is_400_with_a_clear_message(
    proxy: Proxy, fake: FakeAnthropicServer, extra: dict[str, Any], phrase: str
) -> None:
    response = post(proxy, {"model": "sonnet", **extra})
    assert response.status_code == 400, response.text
    assert phrase in error_message(response).lower()
    assert_no_traceback(response.text)
    assert fake.messages_requests() == [], "a refused request reached the upstream"


def test_bad_input_through_the_openai_client(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(model="sonnet", messages=[{"role": "wizard", "content": "hi"}])
    assert caught.value.status_code == 400
    assert "role" in str(caught.value)
    assert fake.messages_requests() == []


# --------------------------------------------------------------------------- limits and lifecycle


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_queue_full_is_429_with_retry_after(proxy: Proxy, fake: FakeAnthropicServer, stream: bool) -> None:
    marker = f"busy-{stream}-c61f"
    results: list[httpx.Response | BaseException] = []

    def busy(index: int) -> None:
        try:
            scenario = directive(token_delay=0.5, tokens=10)
            results.append(post(proxy, {"model": "sonnet", "messages": user(f"{marker} {index} {scenario}")}))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=busy, args=(i,), daemon=True) for i in range(MAX_CONCURRENCY)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(upstream_requests(fake, marker)) == MAX_CONCURRENCY, 45), (
            "the busy requests did not reach the upstream"
        )
        assert len(proxy.claude_processes()) <= MAX_CONCURRENCY
        started = time.monotonic()
        third = {"model": "sonnet", "messages": user("over-capacity-c61f")}
        if stream:
            result = stream_raw(proxy, third)
            status, headers, body = result.status, result.headers, result.body
        else:
            response = post(proxy, third)
            status, headers, body = response.status_code, response.headers, response.text
        waited = time.monotonic() - started
        assert len(proxy.claude_processes()) <= MAX_CONCURRENCY
    finally:
        for thread in threads:
            thread.join(HTTP_TIMEOUT)
    assert status == 429, body
    retry_after = headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, dict(headers)
    assert "slots" in body
    assert_no_traceback(body)
    assert waited >= QUEUE_TIMEOUT * 0.9, "the request was refused without waiting for a slot"
    assert upstream_requests(fake, "over-capacity-c61f") == []
    # The requests that held the slots were not disturbed.
    assert len(results) == MAX_CONCURRENCY
    for result in results:
        assert isinstance(result, httpx.Response), result
        assert result.status_code == 200, result.text


def test_abandoned_stream_stops_its_cli_process(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    # The fake records the peer of each upstream request: that names the CLI process serving it.
    system_prompt = "abandon-test system prompt 19ae"
    stream = proxy.client().chat.completions.create(
        model="sonnet",
        messages=[
            {"role": "system", "content": system_prompt},
            *user(f"abandon-19ae {directive(token_delay=0.3, tokens=60)}"),
        ],
        stream=True,
    )
    received = 0
    for chunk in stream:
        received += sum(1 for choice in chunk.choices if choice.delta.content)
        if received >= 3:
            break
    serving = cli_process_sending(proxy, fake, "abandon-19ae")
    assert len(serving) == 1, serving
    assert len(proxy.claude_processes()) <= MAX_CONCURRENCY
    closed_at = time.monotonic()
    stream.close()
    # The request did not finish, so its process cannot be reset and reused: it must stop.
    assert wait_until(lambda: gone(serving[0]), 5.0), "the CLI process outlived the abandoned request"
    stopped_after = time.monotonic() - closed_at
    (request,) = upstream_requests(fake, "abandon-19ae")
    assert wait_until(lambda: upstream_requests(fake, "abandon-19ae")[0]["outcome"] == "client_disconnected", 5.0)
    assert request["scenario"]["tokens"] == 60
    assert cli_process_sending(proxy, fake, "abandon-19ae") == []
    assert wait_until(lambda: any("status=499" in line for line in proxy.log_text().splitlines()[-50:]), 5.0)
    assert stopped_after < 5.0


def test_request_log_line_and_no_upstream_key_in_the_log(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = post(proxy, {"model": "haiku", "messages": user("log line 0e42")})
    assert response.status_code == 200, response.text
    call_id = response.headers["x-litellm-call-id"]
    assert wait_until(lambda: bool(log_lines(proxy, call_id)), 10)
    (line,) = log_lines(proxy, call_id)
    fields = dict(re.findall(r"(\w+)=(\S+)", line.split("claude_code_request ", 1)[1]))
    assert fields["model"] == "haiku"
    assert fields["status"] == "200"
    assert fields["stream"] == "false"
    assert fields["completion_tokens"] == "12"
    assert fields["finish_reason"] == "stop"
    assert int(fields["prompt_tokens"]) == response.json()["usage"]["prompt_tokens"]
    # By now this proxy served successes, upstream 401s and other failures: the upstream key
    # was in every CLI environment, and never reached its log.
    log = proxy.log_text()
    assert "claude_code_request " in log
    assert UPSTREAM_KEY not in log
    assert UPSTREAM_KEY[8:24] not in log


# --------------------------------------------------------------------------- a proxy with a short request timeout

REQUEST_TIMEOUT = 4.0


@pytest.fixture(scope="module")
def short_proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A second proxy from the same example config, with a short request timeout."""
    workdir = tmp_path_factory.mktemp("short-proxy")
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        workdir,
        upstream,
        {
            "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "2",
            "LITELLM_CLAUDE_CODE_WARM_MAX": "1",
            # A clean process ready from start-up on (as the generated project's provider.env has
            # it): the short request timeout is spent on the request, not on a CLI start-up that
            # takes seconds on a loaded host.
            "LITELLM_WORKER_STARTUP_HOOKS": "litellm_claude_code.proxy_hooks:warm_up",
            "LITELLM_CLAUDE_CODE_WARM_FLOOR": "1",
        },
    )
    yield proxy
    stop_proxy(proxy)


class Background:
    """Run ``function`` on a thread; ``result()`` joins it (bounded) and returns or re-raises."""

    def __init__(self, function: Any) -> None:
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(function,), daemon=True)
        self._thread.start()

    def _run(self, function: Any) -> None:
        try:
            self._outcome.append((True, function()))
        except BaseException as exc:  # re-raised in result()
            self._outcome.append((False, exc))

    def result(self, timeout: float = HTTP_TIMEOUT + 10) -> Any:
        self._thread.join(timeout)
        assert self._outcome, "the request did not finish"
        ok, value = self._outcome[0]
        if not ok:
            raise value
        return value


def test_slow_first_byte_past_the_request_timeout_is_504(short_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    system_prompt = "slow first byte 6a21"
    body = {
        "model": "sonnet",
        "messages": [
            {"role": "system", "content": system_prompt},
            *user(f"slow-first-byte-6a21 {directive(delay=45)}"),
        ],
    }
    started = time.monotonic()
    call = Background(lambda: post(short_proxy, body))
    assert wait_until(lambda: bool(upstream_requests(fake, "slow-first-byte-6a21")), 30)
    serving = cli_process_sending(short_proxy, fake, "slow-first-byte-6a21")
    assert len(serving) == 1, serving
    response = call.result()
    elapsed = time.monotonic() - started
    assert response.status_code in (504, 408), response.text
    assert "timeout" in error_message(response).lower()
    assert_no_traceback(response.text)
    assert REQUEST_TIMEOUT * 0.9 <= elapsed < 30, elapsed
    # The request's CLI process was stopped, not left waiting for the 45 s upstream delay.
    assert wait_until(lambda: gone(serving[0]), 5.0), "the timed-out request's CLI process is still running"
    assert wait_until(lambda: len(short_proxy.claude_processes()) <= WARM_MAX, SETTLE)


def test_slow_stream_past_the_request_timeout_ends_with_an_error(short_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    system_prompt = "slow tokens 6a21"
    marker = "slow-tokens-6a21"
    body = {
        "model": "sonnet",
        "messages": [
            {"role": "system", "content": system_prompt},
            *user(f"{marker} {directive(token_delay=1.0, tokens=40)}"),
        ],
    }
    started = time.monotonic()
    call = Background(lambda: stream_raw(short_proxy, body))
    assert wait_until(lambda: bool(upstream_requests(fake, marker)), 30)
    serving = cli_process_sending(short_proxy, fake, marker)
    assert len(serving) == 1, serving
    stream = call.result()
    elapsed = time.monotonic() - started
    # The whole reply would take 40 s; the request timeout ends it much earlier.
    assert elapsed < 25, elapsed
    if stream.status == 200:
        errors = stream.errors()
        assert len(errors) == 1, stream.payloads
        assert "did not finish within" in errors[0]["message"]
        assert not stream.done
        assert stream.text().startswith("fake ")
    else:
        assert stream.status in (504, 408), stream.body
    assert wait_until(lambda: gone(serving[0]), 5.0), "the timed-out stream's CLI process is still running"
    assert wait_until(lambda: upstream_requests(fake, marker)[0]["outcome"] == "client_disconnected", 10)
    assert wait_until(lambda: len(short_proxy.claude_processes()) <= WARM_MAX, SETTLE)


def test_no_cli_process_outlives_the_proxy(short_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = post(short_proxy, {"model": "sonnet", "messages": user("before stop 2c7d")})
    assert response.status_code == 200, response.text
    # A finished request leaves (at most WARM_MAX) warm processes behind, ready for the next one.
    assert wait_until(lambda: len(short_proxy.claude_processes()) >= 1, SETTLE)
    # The floor's clean process and, until it is evicted for the floor, the chat's.
    assert wait_until(lambda: len(short_proxy.claude_processes()) <= WARM_MAX, SETTLE)
    pids = [proc.pid for proc in short_proxy.claude_processes()]
    state_dir = short_proxy.state_dir
    stop_proxy(short_proxy)

    def leftovers() -> list[int]:
        found = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                if not gone(psutil.Process(pid)):
                    found.append(pid)
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if str(state_dir) in process_environ(proc.pid).get("HOME", "") and not gone(proc):
                    found.append(proc.pid)
        return found

    assert wait_until(lambda: not leftovers(), 10), f"CLI processes outlived the proxy: {leftovers()}"


def test_a_bad_setting_stops_the_proxy_at_start(upstream: FakeAnthropicServer, tmp_path: Path) -> None:
    """A proxy that would fail every request must not start and report itself healthy."""
    with pytest.raises(RuntimeError) as failed:
        start_proxy(EXAMPLES / "proxy_config.yaml", tmp_path, upstream, {"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "many"})
    message = str(failed.value)
    assert "the proxy exited" in message, message[-2000:]
    assert "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY='many' is not a whole number" in message, message[-2000:]
