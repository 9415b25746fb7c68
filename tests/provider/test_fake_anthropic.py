"""Tests of the fake Anthropic Messages API server.

The plain HTTP tests pin the wire protocol; the ``integration`` tests prove that the
real, bundled Claude Code CLI accepts the fake (the whole point of shipping it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import litellm_claude_code.testing as testing_pkg
import pytest
from litellm_claude_code.testing import (
    FakeAnthropicServer,
    ScenarioError,
    directive,
    validate_scenario,
)

MODEL = "claude-test-1"
KEY = "sk-ant-test-key"


def body(prompt: str | list[dict[str, Any]] = "hi", **extra: Any) -> dict[str, Any]:
    """A minimal valid Messages API request body."""
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def post(
    fake: FakeAnthropicServer,
    payload: Any,
    *,
    headers: dict[str, str] | None = None,
    path: str = "/v1/messages?beta=true",
) -> httpx.Response:
    hdrs = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    hdrs.update(headers or {})
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(fake.base_url + path, content=data, headers=hdrs, timeout=10)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any], float]]:
    """Yield (event name, data, arrival time) for each SSE event."""
    event, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and event:
            yield event, json.loads(data), time.monotonic()
            event, data = "", ""


def stream(fake: FakeAnthropicServer, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with httpx.stream(
        "POST",
        fake.base_url + "/v1/messages?beta=true",
        json={**payload, "stream": True},
        headers={"x-api-key": KEY},
        timeout=10,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for name, data, _ in parse_sse(resp.iter_lines()):
            events.append((name, data))
    return events


def text_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        d["delta"]["text"] for n, d in events if n == "content_block_delta" and d["delta"]["type"] == "text_delta"
    )


# --------------------------------------------------------------------------- streaming


def test_streaming_event_order_and_content(fake_anthropic: FakeAnthropicServer) -> None:
    events = stream(fake_anthropic, body())
    names = [n for n, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 12,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(d["type"] == n for n, d in events)  # event: line matches data.type
    start = events[0][1]["message"]
    assert start["model"] == MODEL
    assert start["id"].startswith("msg_")
    assert start["role"] == "assistant" and start["content"] == []
    assert set(start["usage"]) == {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    }
    assert start["usage"]["input_tokens"] >= 1
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert text_of(events) == f"fake reply from {MODEL} " + " ".join(f"tok{i}" for i in range(4, 12))
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 12


def test_streaming_is_incremental(fake_anthropic: FakeAnthropicServer) -> None:
    prompt = "hi " + directive(tokens=5, token_delay=0.15)
    t0 = time.monotonic()
    arrivals = []
    with httpx.stream(
        "POST",
        fake_anthropic.base_url + "/v1/messages",
        json=body(prompt, stream=True),
        headers={"x-api-key": KEY},
        timeout=10,
    ) as resp:
        for name, _, at in parse_sse(resp.iter_lines()):
            if name == "content_block_delta":
                arrivals.append(at - t0)
    assert len(arrivals) == 5
    assert arrivals[0] < 1.0  # the first token did not wait for the last
    assert arrivals[-1] - arrivals[0] >= 0.5  # tokens were spread out, one flush each


def test_non_streaming_message(fake_anthropic: FakeAnthropicServer) -> None:
    resp = post(fake_anthropic, body(directive(text="Hello there, world.")))
    assert resp.status_code == 200
    msg = resp.json()
    assert msg["type"] == "message" and msg["role"] == "assistant"
    assert msg["model"] == MODEL
    assert msg["content"] == [{"type": "text", "text": "Hello there, world."}]
    assert msg["stop_reason"] == "end_turn" and msg["stop_sequence"] is None
    assert msg["usage"]["output_tokens"] == 3
    assert resp.headers["request-id"].startswith("req_")


def test_tool_use_streaming_and_not(fake_anthropic: FakeAnthropicServer) -> None:
    tool = {"name": "get_weather", "input": {"city": "Paris", "days": [1, 2, 3]}}
    events = stream(fake_anthropic, body(directive(text="Let me check.", tool_use=tool)))
    starts = [d for n, d in events if n == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    block = starts[1]["content_block"]
    assert block["name"] == "get_weather" and block["id"].startswith("toolu_")
    assert block["input"] == {} and starts[1]["index"] == 1
    partial = "".join(
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == tool["input"]
    assert [d["index"] for n, d in events if n == "content_block_stop"] == [0, 1]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"

    msg = post(fake_anthropic, body(directive(text="", tool_use=tool))).json()
    assert [b["type"] for b in msg["content"]] == ["tool_use"]
    assert msg["content"][0]["input"] == tool["input"] and msg["stop_reason"] == "tool_use"


def test_stop_reasons_usage_and_max_tokens(fake_anthropic: FakeAnthropicServer) -> None:
    msg = post(
        fake_anthropic,
        body(directive(stop_reason="stop_sequence"), stop_sequences=["###"]),
    ).json()
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", "###")
    msg = post(fake_anthropic, body(directive(stop_reason="refusal", text="No."))).json()
    assert msg["stop_reason"] == "refusal" and msg["content"][0]["text"] == "No."
    # A max_tokens budget smaller than the reply cuts it, like the real API.
    msg = post(fake_anthropic, {**body(directive(tokens=10)), "max_tokens": 3}).json()
    assert msg["stop_reason"] == "max_tokens" and msg["usage"]["output_tokens"] == 3
    events = stream(
        fake_anthropic,
        body(directive(usage={"cache_read_input_tokens": 100, "cache_creation_input_tokens": 7})),
    )
    usage = events[0][1]["message"]["usage"]
    assert usage["cache_read_input_tokens"] == 100
    assert usage["cache_creation_input_tokens"] == 7


def test_echo_and_delay(fake_anthropic: FakeAnthropicServer) -> None:
    t0 = time.monotonic()
    msg = post(fake_anthropic, body(f"say this back {directive(echo=True, delay=0.3)} please")).json()
    assert time.monotonic() - t0 >= 0.3
    assert msg["content"][0]["text"] == "say this back  please"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "err_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_error_status(fake_anthropic: FakeAnthropicServer, status: int, err_type: str, streaming: bool) -> None:
    scenario = {"error": {"status": status, "retry_after": 7, "message": "boom"}}
    resp = post(fake_anthropic, body(directive(**scenario), stream=streaming))
    assert resp.status_code == status
    assert resp.json() == {
        "type": "error",
        "error": {"type": err_type, "message": "boom"},
    }
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["request-id"] == fake_anthropic.requests()[-1]["id"]


def test_error_type_override_and_should_retry(
    fake_anthropic: FakeAnthropicServer,
) -> None:
    scenario = {
        "error": {"status": 503, "type": "overloaded_error"},
        "should_retry": False,
    }
    resp = post(fake_anthropic, body(directive(**scenario)))
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "overloaded_error"
    assert resp.headers["x-should-retry"] == "false"
    assert "retry-after" not in resp.headers


def test_error_mid_stream(fake_anthropic: FakeAnthropicServer) -> None:
    events = stream(fake_anthropic, body(directive(error_after_tokens=3)))
    names = [n for n, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "error",
    ]
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert fake_anthropic.requests()[-1]["outcome"] == "stream_error"
    # Without streaming the same scenario is an HTTP 529.
    assert post(fake_anthropic, body(directive(error_after_tokens=3))).status_code == 529


def test_dropped_connection_then_keeps_serving(
    fake_anthropic: FakeAnthropicServer,
) -> None:
    got: list[str] = []
    with (
        pytest.raises(httpx.TransportError),
        httpx.stream(
            "POST",
            fake_anthropic.base_url + "/v1/messages",
            json=body(directive(drop_after_tokens=2), stream=True),
            headers={"x-api-key": KEY},
            timeout=10,
        ) as resp,
    ):
        for name, data, _ in parse_sse(resp.iter_lines()):
            if name == "content_block_delta":
                got.append(data["delta"]["text"])
    assert got == ["fake ", "reply "]
    with pytest.raises(httpx.TransportError):
        post(fake_anthropic, body(directive(drop_after_tokens=0)))
    assert post(fake_anthropic, body()).status_code == 200
    outcomes = [r["outcome"] for r in fake_anthropic.requests()]
    assert outcomes == ["dropped", "dropped", "ok"]


def test_client_disconnect_mid_stream(fake_anthropic: FakeAnthropicServer) -> None:
    with httpx.stream(
        "POST",
        fake_anthropic.base_url + "/v1/messages",
        json=body(directive(tokens=200, token_delay=0.02), stream=True),
        headers={"x-api-key": KEY},
        timeout=10,
    ) as resp:
        for name, _, _ in parse_sse(resp.iter_lines()):
            if name == "content_block_delta":
                break  # leave mid-stream; closing the response closes the socket
    deadline = time.monotonic() + 5
    while fake_anthropic.requests()[0]["outcome"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_anthropic.requests()[0]["outcome"] == "client_disconnected"
    assert post(fake_anthropic, body()).status_code == 200


# --------------------------------------------------------------------------- scenarios


def test_directive_helper_and_validation() -> None:
    assert directive(text="a") == '[[fake:{"text":"a"}]]'
    with pytest.raises(ScenarioError):
        directive(txet="typo")
    with pytest.raises(ScenarioError):
        validate_scenario({"error": {"status": 200}})
    with pytest.raises(ScenarioError):
        validate_scenario({"tokens": -1})
    assert validate_scenario({"tool_use": [{"name": "a"}, {"name": "b", "input": {}}]})


def test_directive_parsing(fake_anthropic: FakeAnthropicServer) -> None:
    # The last occurrence in the last user message wins; earlier messages are ignored.
    messages = [
        {"role": "user", "content": directive(text="old turn")},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first " + directive(text="loser")},
                {"type": "image", "source": {"type": "base64", "data": "xx"}},
                {
                    "type": "text",
                    "text": '[[fake: {"text": "winner ]] with brackets"} ]] tail',
                },
            ],
        },
        {
            "role": "system",
            "content": "the CLI sends such a message after the user one",
        },
    ]
    msg = post(fake_anthropic, {**body(), "messages": messages}).json()
    assert msg["content"][0]["text"] == "winner ]] with brackets"
    record = fake_anthropic.requests()[-1]
    assert record["scenario_source"] == "directive"

    for bad in ("[[fake:{not json}]]", '[[fake:{"text": "x"}', '[[fake:{"bogus": 1}]]'):
        resp = post(fake_anthropic, body(bad))
        assert resp.status_code == 400, bad
        assert resp.json()["error"]["type"] == "invalid_request_error"


def test_queue_fifo_and_priority(fake_anthropic: FakeAnthropicServer) -> None:
    fake_anthropic.push([{"text": "one"}, {"text": "two"}])
    fake_anthropic.push({"text": "three"})
    assert len(fake_anthropic.pending_scenarios()) == 3

    def reply(prompt: str = "hi") -> str:
        content = post(fake_anthropic, body(prompt)).json()["content"]
        return str(content[0]["text"])

    assert reply() == "one"
    assert reply(directive(text="directive wins")) == "directive wins"  # queue untouched
    assert reply() == "two"
    assert reply() == "three"
    assert reply().startswith(f"fake reply from {MODEL}")
    sources = [r["scenario_source"] for r in fake_anthropic.requests()]
    assert sources == ["queue", "directive", "queue", "queue", "default"]
    with pytest.raises(ScenarioError):
        fake_anthropic.push({"nope": 1})


def test_queue_survives_auth_failure(fake_anthropic: FakeAnthropicServer) -> None:
    fake_anthropic.push({"text": "kept"})
    assert post(fake_anthropic, body(), headers={"x-api-key": ""}).status_code == 401
    assert post(fake_anthropic, body()).json()["content"][0]["text"] == "kept"


def test_control_api(fake_anthropic: FakeAnthropicServer) -> None:
    base = fake_anthropic.base_url
    assert httpx.get(base + "/_fake/health").json() == {"ok": True}
    resp = httpx.post(base + "/_fake/scenarios", json=[{"text": "a"}, {"text": "b"}])
    assert resp.json() == {"ok": True, "queued": 2}
    assert httpx.get(base + "/_fake/scenarios").json() == [{"text": "a"}, {"text": "b"}]
    assert httpx.post(base + "/_fake/scenarios", json={"tokens": "x"}).status_code == 400
    assert httpx.post(base + "/_fake/scenarios", content=b"{oops").status_code == 400
    assert post(fake_anthropic, body()).json()["content"][0]["text"] == "a"
    assert httpx.delete(base + "/_fake/scenarios").json() == {"ok": True, "cleared": 1}
    assert httpx.put(base + "/_fake/default", json={"text": "dflt"}).status_code == 200
    assert post(fake_anthropic, body()).json()["content"][0]["text"] == "dflt"
    logged = httpx.get(base + "/_fake/requests").json()
    assert [r["path"] for r in logged] == [
        "/v1/messages",
        "/v1/messages",
    ]  # control calls not logged
    assert httpx.delete(base + "/_fake/requests").json()["cleared"] == 2
    assert httpx.get(base + "/_fake/requests").json() == []


def test_set_default_layers_under_scenarios(
    fake_anthropic: FakeAnthropicServer,
) -> None:
    fake_anthropic.set_default(tokens=3)
    assert post(fake_anthropic, body()).json()["usage"]["output_tokens"] == 3
    fake_anthropic.set_default(error={"status": 500})
    assert post(fake_anthropic, body()).status_code == 500
    # A scenario can unset a default key with null.
    assert post(fake_anthropic, body(directive(error=None, text="fine"))).status_code == 200
    fake_anthropic.set_default(error=None)
    assert post(fake_anthropic, body()).status_code == 200


# --------------------------------------------------------------------------- log, auth, 404


def test_request_log(fake_anthropic: FakeAnthropicServer) -> None:
    payload = body(
        "what is up",
        system=[
            {"type": "text", "text": "You are A."},
            {"type": "text", "text": "Be B."},
        ],
        tools=[
            {"name": "Read", "input_schema": {}},
            {"name": "Bash", "input_schema": {}},
        ],
        stream=True,
    )
    stream(fake_anthropic, payload)
    post(
        fake_anthropic,
        body(system="plain system"),
        headers={"x-api-key": "", "authorization": "Bearer oat-123", "x-custom": "v"},
    )
    first, second = fake_anthropic.requests()
    assert first["id"] != second["id"]
    assert first["path"] == "/v1/messages" and first["method"] == "POST"
    assert first["query"] == {"beta": "true"}
    assert first["auth"] == KEY and first["auth_scheme"] == "x-api-key"
    assert first["headers"]["x-api-key"] == KEY
    assert first["model"] == MODEL and first["stream"] is True
    assert first["system_text"] == "You are A.\nBe B."
    assert first["tool_names"] == ["Read", "Bash"]
    assert first["messages"] == payload["messages"]
    assert first["body"]["tools"] == payload["tools"]
    assert first["body_bytes"] == int(first["headers"]["content-length"]) > 200
    assert first["status"] == 200 and first["outcome"] == "ok"
    assert isinstance(first["time"], float)
    assert second["auth"] == "oat-123" and second["auth_scheme"] == "bearer"
    assert second["headers"]["authorization"] == "Bearer oat-123"
    assert second["headers"]["x-custom"] == "v"
    assert second["system_text"] == "plain system" and second["tool_names"] == []
    assert second["stream"] is False
    # The log is a copy: mutating it does not touch the server's.
    first["model"] = "mutated"
    assert fake_anthropic.requests()[0]["model"] == MODEL
    fake_anthropic.clear()
    assert fake_anthropic.requests() == []


def test_auth_required_and_accept_keys() -> None:
    with FakeAnthropicServer(accept_keys=["good"]) as fake:
        url = fake.base_url + "/v1/messages"
        resp = httpx.post(url, json=body())
        assert resp.status_code == 401
        assert resp.json()["error"]["type"] == "authentication_error"
        assert httpx.post(url, json=body(), headers={"x-api-key": "bad"}).status_code == 401
        assert httpx.post(url, json=body(), headers={"x-api-key": "good"}).status_code == 200
        ok = httpx.post(url, json=body(), headers={"authorization": "Bearer good"})
        assert ok.status_code == 200
        assert [r["status"] for r in fake.requests()] == [401, 401, 200, 200]
        assert fake.requests()[1]["auth"] == "bad"  # rejected requests are logged too
        fake.set_accept_keys(None)
        assert httpx.post(url, json=body(), headers={"x-api-key": "any"}).status_code == 200


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"messages": [], "max_tokens": 1}).encode(), "model"),
        (json.dumps({"model": "m", "max_tokens": 1}).encode(), "messages"),
        (json.dumps({"model": "m", "messages": []}).encode(), "max_tokens"),
    ],
)
def test_invalid_body(fake_anthropic: FakeAnthropicServer, payload: bytes, fragment: str) -> None:
    resp = post(fake_anthropic, payload)
    assert resp.status_code == 400
    err = resp.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert fragment in err["error"]["message"]


def test_unknown_path_404_and_logged(fake_anthropic: FakeAnthropicServer) -> None:
    resp = httpx.get(fake_anthropic.base_url + "/v1/models?limit=5", headers={"x-api-key": KEY})
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "not_found_error"
    assert httpx.get(fake_anthropic.base_url + "/v1/messages").status_code == 405
    logged = fake_anthropic.requests()
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [
        ("GET", "/v1/models", 404),
        ("GET", "/v1/messages", 405),
    ]
    assert logged[0]["query"] == {"limit": "5"} and logged[0]["auth"] == KEY


def test_count_tokens(fake_anthropic: FakeAnthropicServer) -> None:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 400}]}
    resp = post(fake_anthropic, payload, path="/v1/messages/count_tokens")
    assert resp.status_code == 200 and resp.json()["input_tokens"] > 100


# --------------------------------------------------------------------------- APIs


def test_async_context_manager_and_wait() -> None:
    async def run() -> None:
        async with FakeAnthropicServer(tokens=2, token_delay=0.01) as fake:
            async with httpx.AsyncClient() as client:
                resp = await client.post(
                    fake.base_url + "/v1/messages",
                    json=body(),
                    headers={"x-api-key": KEY},
                )
            assert resp.json()["content"][0]["text"] == "fake reply"
            assert len(await asyncio.to_thread(fake.wait_for_requests, 1, 1.0)) == 1

    asyncio.run(run())


def test_start_failure_is_reported(fake_anthropic: FakeAnthropicServer) -> None:
    with pytest.raises(RuntimeError, match="failed to start"):
        FakeAnthropicServer(port=fake_anthropic.port).start()


def test_public_api_reexported() -> None:
    for name in (
        "FakeAnthropicServer",
        "directive",
        "main",
        "ScenarioError",
        "build_app",
    ):
        assert hasattr(testing_pkg, name)


def test_cli_main_subprocess(tmp_path: Path) -> None:
    src = Path(testing_pkg.__file__).resolve().parents[2]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(src),
        "FAKE_ANTHROPIC_ACCEPT_KEYS": "env-key, other",
    }
    cmd = [sys.executable, "-m", "litellm_claude_code.testing.fake_anthropic"]
    cmd += ["--port", "0", "--accept-key", "flag-key", "--tokens", "4"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # other warnings may come first
            seen.append(line)
            if "listening on http://127.0.0.1:" in line or len(seen) > 20:
                break
        assert "listening on http://127.0.0.1:" in line, seen
        base = line.strip().rsplit(" ", 1)[1]
        url = base + "/v1/messages"
        ok = httpx.post(url, json=body(), headers={"x-api-key": "env-key"}, timeout=5)
        assert ok.json()["usage"]["output_tokens"] == 4
        assert httpx.post(url, json=body(), headers={"x-api-key": "flag-key"}).status_code == 200
        assert httpx.post(url, json=body(), headers={"x-api-key": "nope"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert err.count("POST /v1/messages") == 3
    assert "env-key" not in err and "flag-key" not in err  # credentials never logged


# --------------------------------------------------------------------------- real CLI


def _cli_path() -> Path:
    import claude_agent_sdk

    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def run_cli(
    fake: FakeAnthropicServer,
    tmp_path: Path,
    prompt: str,
    *,
    oauth: str | None = None,
    timeout: float = 60,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], float]:
    """Run the real CLI against the fake in a pristine HOME; return (proc, result, secs)."""
    cli = _cli_path()
    if not cli.exists():
        pytest.fail(f"bundled Claude Code CLI not found at {cli}: install the Linux wheel of claude-agent-sdk")
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "ANTHROPIC_BASE_URL": fake.base_url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    if oauth:
        env["CLAUDE_CODE_OAUTH_TOKEN"] = oauth
    else:
        env["ANTHROPIC_API_KEY"] = KEY
    cmd = [str(cli), "-p", "--output-format", "stream-json", "--verbose", "--tools", ""]
    cmd += ["--model", "sonnet", prompt]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - t0
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    results = [x for x in lines if x.get("type") == "result"]
    assert results, f"no result line; rc={proc.returncode} stderr={proc.stderr[-2000:]}"
    return proc, results[-1], elapsed


@pytest.mark.integration
def test_cli_plain_prompt(fake_anthropic: FakeAnthropicServer, tmp_path: Path) -> None:
    proc, result, _ = run_cli(fake_anthropic, tmp_path, "hello fake")
    assert proc.returncode == 0, proc.stderr
    assert result["is_error"] is False and result["subtype"] == "success"
    (req,) = fake_anthropic.messages_requests()
    model = req["model"]
    assert model.startswith("claude-") and "sonnet" in model  # alias resolved by the CLI
    assert result["result"].startswith(f"fake reply from {model} tok4")
    assert req["query"] == {"beta": "true"} and req["stream"] is True
    assert req["auth_scheme"] == "x-api-key" and req["auth"] == KEY
    assert req["messages"][0] == {"role": "user", "content": "hello fake"}
    assert req["tool_names"] == []  # --tools "" sends none
    assert req["system_text"]  # the preset system prompt
    assert {"model", "messages", "system", "max_tokens", "stream"} <= set(req["body"])
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert req["headers"]["user-agent"].startswith("claude-cli/")
    assert result["usage"]["output_tokens"] == 12


@pytest.mark.integration
def test_cli_401_fails_fast(fake_anthropic: FakeAnthropicServer, tmp_path: Path) -> None:
    prompt = "hi " + directive(error={"status": 401, "message": "bad key"})
    proc, result, elapsed = run_cli(fake_anthropic, tmp_path, prompt)
    assert proc.returncode != 0
    assert result["is_error"] is True and result["api_error_status"] == 401
    assert elapsed < 20
    assert len(fake_anthropic.messages_requests()) == 1  # CLAUDE_CODE_MAX_RETRIES=0
    assistant = [json.loads(x) for x in proc.stdout.splitlines() if '"type":"assistant"' in x]
    assert assistant and assistant[-1]["error"] == "authentication_failed"
    assert "bad key" in json.dumps(assistant[-1]["message"]["content"])


@pytest.mark.integration
def test_cli_oauth_token_arrives_as_bearer(fake_anthropic: FakeAnthropicServer, tmp_path: Path) -> None:
    proc, result, _ = run_cli(
        fake_anthropic,
        tmp_path,
        "hi " + directive(text="oauth ok"),
        oauth="oat-fake-123",
    )
    assert proc.returncode == 0 and result["result"] == "oauth ok"
    (req,) = fake_anthropic.messages_requests()
    assert req["auth_scheme"] == "bearer" and req["auth"] == "oat-fake-123"
    assert "x-api-key" not in req["headers"]
    assert "oauth-2025-04-20" in req["headers"]["anthropic-beta"]


@pytest.mark.integration
def test_cli_stream_error_falls_back_to_non_streaming(fake_anthropic: FakeAnthropicServer, tmp_path: Path) -> None:
    """After a failed stream the CLI retries once WITHOUT streaming (even with
    CLAUDE_CODE_MAX_RETRIES=0); the queue scripts both attempts."""
    fake_anthropic.push([{"error_after_tokens": 2}, {"text": "recovered"}])
    proc, result, _ = run_cli(fake_anthropic, tmp_path, "hello")
    assert proc.returncode == 0 and result["result"] == "recovered"
    first, second = fake_anthropic.messages_requests()
    assert (first["stream"], first["outcome"]) == (True, "stream_error")
    assert (second["stream"], second["outcome"]) == (False, "ok")


@pytest.mark.integration
def test_cli_tool_use_round_trip(fake_anthropic: FakeAnthropicServer, tmp_path: Path) -> None:
    """A tool call makes the CLI send a second request ending in a tool_result;
    that message carries no directive, so it gets the reply quoting the results."""
    prompt = "go " + directive(tool_use={"name": "Bash", "input": {"command": "ls"}})
    proc, result, _ = run_cli(fake_anthropic, tmp_path, prompt)
    assert proc.returncode == 0
    first, second = fake_anthropic.messages_requests()
    assert first["scenario_source"] == "directive"
    assert second["scenario_source"] == "tool_results"
    last = second["messages"][-1]
    assert last["role"] == "user" and last["content"][0]["type"] == "tool_result"
    call = last["content"][0]["tool_use_id"]
    assert result["result"].startswith(f"Tool results: Bash({call}) -> ")


def test_a_scripted_call_names_the_tool_as_offered(fake_anthropic: FakeAnthropicServer) -> None:
    offered = [{"name": "mcp__client__get_weather", "input_schema": {"type": "object"}}, {"name": "other"}]
    calls = [{"name": "get_weather", "input": {"city": "Oslo"}}, {"name": "other"}, {"name": "unknown"}]
    msg = post(fake_anthropic, body(directive(text="", tool_use=calls), tools=offered)).json()
    assert [b["name"] for b in msg["content"]] == ["mcp__client__get_weather", "other", "unknown"]


def test_tool_results_are_answered_by_quoting_them(fake_anthropic: FakeAnthropicServer) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "noon"}]},
            ],
        },
    ]
    msg = post(fake_anthropic, {**body(), "messages": messages}).json()
    assert msg["content"][0]["text"] == "Tool results: get_weather(t1) -> sunny; get_time(t2) -> noon"
    assert fake_anthropic.messages_requests()[-1]["scenario_source"] == "tool_results"
    # A queued scenario still wins.
    fake_anthropic.push({"text": "queued"})
    assert post(fake_anthropic, {**body(), "messages": messages}).json()["content"][0]["text"] == "queued"
