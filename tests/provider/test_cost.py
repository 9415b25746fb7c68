"""Each response's cost, as LiteLLM reports it, comes from the CLI's own ``total_cost_usd``.

Through the real proxy (the session ``proxy`` fixture) against the fake upstream, whose usage
the CLI prices. Without the provider reporting it, LiteLLM prices this provider at 0.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import MASTER_KEY, Proxy

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


def ask(proxy: Proxy, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, headers=HEADERS, timeout=60)


def test_response_cost_header_is_the_cli_cost_of_this_request(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    first = ask(proxy, "what does this cost, first")
    assert first.status_code == 200, first.text
    cost = float(first.headers["x-litellm-response-cost"])
    assert cost > 0, "LiteLLM reported no cost"
    usage = first.json()["usage"]
    assert usage["cost"] == pytest.approx(cost)
    # The CLI prices the fake's token counts: a few hundred tokens cost well under a cent.
    assert cost < (usage["prompt_tokens"] + usage["completion_tokens"]) * 100e-6
    # The second request runs on the same warm process, whose session total includes the first:
    # its own cost is about the same (a cached prefix makes it cheaper), never the running sum.
    second = ask(proxy, "what does this cost, again")
    assert second.status_code == 200, second.text
    again = float(second.headers["x-litellm-response-cost"])
    assert 0 < again <= cost * 1.2, (cost, again)


def test_streamed_cost_rides_the_usage_chunk(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    usage: dict[str, Any] = {}
    with httpx.stream(
        "POST",
        proxy.base_url + "/v1/chat/completions",
        json={
            "model": "sonnet",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "streamed cost"}],
        },
        headers=HEADERS,
        timeout=60,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                event = json.loads(line[5:])
                usage = event.get("usage") or usage
    assert usage.get("cost", 0) > 0, usage
    assert usage["cost"] < (usage["prompt_tokens"] + usage["completion_tokens"]) * 100e-6
