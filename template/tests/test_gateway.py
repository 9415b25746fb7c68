"""End to end: the gateway image, the fake Anthropic upstream, the official openai client.

Every request goes client -> LiteLLM proxy (container) -> provider -> real Claude Code CLI ->
fake Anthropic API (container). Nothing is mocked; the upstream's request log shows what
reached "Claude".
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import openai
import pytest
from conftest import (
    FAKE_TOKEN,
    FAKE_TOKEN_ENV,
    FakeUpstream,
    Gateway,
    http_get,
    model_aliases,
)

pytestmark = pytest.mark.docker


def fake(**scenario: Any) -> str:
    """A directive the fake upstream obeys when it appears in the last user message."""
    return f"[[fake:{json.dumps(scenario)}]]"


def upstream_model_matches(requested: str, upstream: str | None) -> bool:
    """`sonnet` reaches Claude as a full id of that family; a full id reaches it as is."""
    if upstream is None:
        return False
    if requested in {"sonnet", "opus", "haiku"}:
        return upstream.startswith("claude-") and requested in upstream
    return upstream == requested or upstream.startswith(requested)


def one_upstream_request(fake_upstream: FakeUpstream, marker: str) -> dict[str, Any]:
    records = fake_upstream.requests_with(marker)
    assert records, f"no upstream request carried {marker}"
    return records[-1]


@pytest.mark.parametrize("alias", sorted(model_aliases()))
def test_each_alias_routes_to_its_claude_model(
    client: Any, fake_upstream: FakeUpstream, marker: str, alias: str
) -> None:
    target = model_aliases()[alias]
    reply = client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": f"which model? {marker}"}]
    )
    assert reply.choices[0].message.content
    record = one_upstream_request(fake_upstream, marker)
    assert upstream_model_matches(target, record["model"]), (alias, target, record["model"])


def test_upstream_gets_the_token_and_no_tools(
    client: Any, fake_upstream: FakeUpstream, marker: str
) -> None:
    alias = sorted(model_aliases())[0]
    client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": f"hello {marker}"}]
    )
    record = one_upstream_request(fake_upstream, marker)
    assert record["auth"] == FAKE_TOKEN
    expected_scheme = "bearer" if FAKE_TOKEN_ENV == "CLAUDE_CODE_OAUTH_TOKEN" else "x-api-key"
    assert record["auth_scheme"] == expected_scheme
    assert record["tool_names"] == []


def test_system_prompt_reaches_upstream(
    client: Any, fake_upstream: FakeUpstream, marker: str
) -> None:
    alias = sorted(model_aliases())[0]
    client.chat.completions.create(
        model=alias,
        messages=[
            {"role": "system", "content": f"You are terse. {marker}-system"},
            {"role": "user", "content": f"hi {marker}"},
        ],
    )
    record = one_upstream_request(fake_upstream, marker)
    assert f"{marker}-system" in record["system_text"]


def test_streaming_is_incremental(client: Any, marker: str) -> None:
    alias = sorted(model_aliases())[0]
    slow = fake(token_delay=0.05, tokens=30)
    started = time.monotonic()
    arrivals: list[float] = []
    text = []
    stream = client.chat.completions.create(
        model=alias,
        messages=[{"role": "user", "content": f"count {marker} {slow}"}],
        stream=True,
    )
    finish_reasons = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                arrivals.append(time.monotonic() - started)
                text.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert len(arrivals) >= 10, f"only {len(arrivals)} content chunks: {text}"
    # 30 tokens 50 ms apart (1.5 s): the first must arrive long before the last, spread over the
    # stream, not in one burst at its end. Half the nominal span: right after its first requests a
    # gateway starts its warm set (one CLI at a time per two CPUs), which on a 2-core host can
    # stall a stream's first tokens for a moment; a buffering gateway would show no span at all.
    assert arrivals[-1] - arrivals[0] >= 0.75, arrivals
    assert len({int(t * 10) for t in arrivals}) >= 5, arrivals
    assert finish_reasons == ["stop"]


def test_stream_include_usage(client: Any, marker: str) -> None:
    alias = sorted(model_aliases())[0]
    stream = client.chat.completions.create(
        model=alias,
        messages=[{"role": "user", "content": f"usage please {marker}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage, "no chunk carried usage"
    usage = with_usage[-1].usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_non_streaming(client: Any, marker: str) -> None:
    alias = sorted(model_aliases())[0]
    reply = client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": f"say something {marker}"}]
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0


def test_concurrent_requests(client: Any, fake_upstream: FakeUpstream, marker: str) -> None:
    alias = sorted(model_aliases())[0]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            reply = client.chat.completions.create(
                model=alias, messages=[{"role": "user", "content": f"n{i} {marker}"}]
            )
            assert reply.choices[0].message.content
        except BaseException as exc:  # collected, re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(fake_upstream.requests_with(marker)) >= 3


def test_wrong_master_key_is_401(gateway: Gateway) -> None:
    from openai import OpenAI

    bad = OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(
            model=sorted(model_aliases())[0], messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401


def test_missing_master_key_is_401(gateway: Gateway) -> None:
    status, _ = http_get(f"{gateway.url}/v1/models")
    assert status == 401


def test_models_endpoint_lists_the_aliases(client: Any) -> None:
    served = {model.id for model in client.models.list()}
    assert set(model_aliases()) <= served


@pytest.mark.parametrize(
    ("upstream_status", "client_statuses"),
    [
        pytest.param(401, {401}, id="401-auth"),
        pytest.param(429, {429}, id="429-rate-limit"),
        pytest.param(500, {500, 502, 503}, id="500-server"),
        pytest.param(529, {503, 529}, id="529-overloaded"),
    ],
)
def test_upstream_faults_map_to_statuses(
    client: Any, marker: str, upstream_status: int, client_statuses: set[int]
) -> None:
    error: dict[str, Any] = {"status": upstream_status}
    if upstream_status == 429:
        error["retry_after"] = 1
    prompt = f"fail please {marker} {fake(error=error, should_retry=False)}"
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=sorted(model_aliases())[0], messages=[{"role": "user", "content": prompt}]
        )
    assert info.value.status_code in client_statuses, info.value


def test_health_endpoints_need_no_key(gateway: Gateway) -> None:
    for path in ("/health/liveliness", "/health/readiness"):
        status, _ = http_get(f"{gateway.url}{path}")
        assert status == 200, path


def test_no_secret_in_gateway_logs(gateway: Gateway, client: Any, marker: str) -> None:
    client.chat.completions.create(
        model=sorted(model_aliases())[0], messages=[{"role": "user", "content": f"hi {marker}"}]
    )
    logs = gateway.logs()
    assert gateway.master_key not in logs
    assert FAKE_TOKEN not in logs


def test_container_runs_as_non_root(gateway: Gateway) -> None:
    result = gateway.container.exec(["id", "-u"])
    assert result.exit_code == 0
    assert result.output.decode().strip() != "0"
