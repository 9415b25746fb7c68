"""Each response's cost, as LiteLLM reports it, comes from the CLI's own ``total_cost_usd``.

Through the real proxy (the session ``proxy`` fixture) against the fake upstream, whose usage
the CLI prices. Without the provider reporting it, LiteLLM prices this provider at 0. The
per-request share of a warm process's running total (``_cost.request_cost``) is unit-tested below.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import pytest
from litellm_claude_code import _cost
from litellm_claude_code._cost import request_cost
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.proxy_http import log_fields
from tests.support.stack import MASTER_KEY, Proxy
from tests.support.upstream import marked, served_by

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


def ask(proxy: Proxy, text: str, *, history: list[dict[str, Any]] | None = None, **extra: Any) -> httpx.Response:
    body = {"model": "sonnet", "messages": [*(history or []), {"role": "user", "content": text}], **extra}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, headers=HEADERS, timeout=60)


@pytest.mark.integration
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
    # It continues the first's conversation, so the pool gives it the process holding that chat.
    answer = first.json()["choices"][0]["message"]["content"]
    second = ask(
        proxy,
        "what does this cost, again",
        history=[{"role": "user", "content": "what does this cost, first"}, {"role": "assistant", "content": answer}],
    )
    assert second.status_code == 200, second.text
    # On another process the running-sum bug could not show: the claim needs the same process.
    fields = log_fields(proxy, second.headers["x-litellm-call-id"])
    assert (fields["warm"], fields["conversation"]) == ("true", "continued"), fields
    sent = fake.messages_requests()
    (sent_first,) = [r for r in sent if "cost, first" in json.dumps(r["messages"]) and "again" not in json.dumps(r)]
    (sent_second,) = marked(fake, "what does this cost, again")
    assert served_by(sent_second) == served_by(sent_first), "the second request ran on another CLI process"
    again = float(second.headers["x-litellm-response-cost"])
    assert 0 < again <= cost * 1.2, (cost, again)


@pytest.mark.integration
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


# --------------------------------------------------------------------------- request_cost


class _Process:
    """Stands for a CLI process: ``request_cost`` only keys on it (weakly)."""


def test_request_cost_is_the_growth_of_each_process_session_total() -> None:
    """Each process's running total is split into per-request costs; processes never mix."""
    one, two = _Process(), _Process()
    assert request_cost(one, 0.0008) == pytest.approx(0.0008)  # a fresh process: all of it
    assert request_cost(one, 0.0018) == pytest.approx(0.0010)  # the growth, not the running sum
    assert request_cost(two, 0.0005) == pytest.approx(0.0005)  # another process starts from zero
    assert request_cost(one, 0.0030) == pytest.approx(0.0012)
    assert request_cost(two, 0.0009) == pytest.approx(0.0004)


def test_request_cost_without_a_total_is_unknown_and_keeps_the_last_total() -> None:
    """A result without ``total_cost_usd`` reports no cost (not 0) and does not reset the count."""
    process = _Process()
    assert request_cost(process, 0.002) == pytest.approx(0.002)
    assert request_cost(process, None) is None
    assert request_cost(process, 0.003) == pytest.approx(0.001)


def test_request_cost_never_goes_negative() -> None:
    """A total lower than the last one (a counter the CLI restarted) is a cost of 0, never a credit."""
    process = _Process()
    request_cost(process, 0.005)
    assert request_cost(process, 0.001) == 0.0
    assert request_cost(process, 0.0015) == pytest.approx(0.0005)


def test_a_stopped_process_total_is_forgotten() -> None:
    """The totals are weakly keyed: a stopped process leaves nothing behind."""
    process = _Process()
    request_cost(process, 0.001)
    assert process in _cost._totals
    del process
    gc.collect()
    assert not [key for key in _cost._totals if isinstance(key, _Process)]
