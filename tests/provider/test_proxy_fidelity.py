"""The client's output limit and the finish reason, end to end through the real proxy.

The openai client talks to ``litellm --config examples/proxy_config.yaml`` (the session
``proxy`` fixture); the provider runs the bundled CLI against the fake Messages API. The fake
cuts a reply at the request's ``max_tokens`` and answers ``stop_reason: max_tokens`` (as the
real API does), so these tests fail if ``max_tokens`` is dropped or changed on the way, if the
CLI's own continuation after a cut leaks more text to the client, or if the finish reason is
hard-coded either way (``stop`` or ``length``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import Proxy

pytestmark = pytest.mark.integration

REPLY = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def upstream_requests(fake: FakeAnthropicServer, marker: str) -> list[dict[str, Any]]:
    return [request for request in fake.messages_requests() if marker in json.dumps(request["messages"])]


def streamed(proxy: Proxy, **kwargs: Any) -> tuple[str, list[str]]:
    """The text and the finish reasons of one streamed completion."""
    text, reasons = [], []
    for chunk in proxy.client().chat.completions.create(model="sonnet", stream=True, **kwargs):
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    return "".join(text), reasons


@pytest.mark.parametrize("limit_param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_reaches_upstream_and_a_cut_reply_is_length(
    proxy: Proxy, fake: FakeAnthropicServer, limit_param: str
) -> None:
    marker = f"fidelity-length-{limit_param}-3c1d"
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=user(f"{marker} {directive(text=REPLY)}"), **{limit_param: 3}
    )
    requests = upstream_requests(fake, marker)
    assert requests, "the request never reached the upstream"
    # The client's limit is what Claude got (on every call the CLI made for this request).
    assert [r["body"]["max_tokens"] for r in requests] == [3] * len(requests)
    choice = response.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "alpha bravo charlie "
    assert response.usage is not None
    assert response.usage.completion_tokens == 3


def test_streamed_cut_reply_is_length_with_only_the_text_sent(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "fidelity-length-stream-77ab"
    text, reasons = streamed(proxy, messages=user(f"{marker} {directive(text=REPLY)}"), max_tokens=4)
    requests = upstream_requests(fake, marker)
    assert requests
    assert [r["body"]["max_tokens"] for r in requests] == [4] * len(requests)
    assert reasons == ["length"]
    assert text == "alpha bravo charlie delta "


def test_a_scripted_max_tokens_stop_is_length(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    """The fake says ``max_tokens`` on its own (the reply fits the limit): only the upstream's word counts."""
    marker = "fidelity-scripted-length-0e5f"
    prompt = f"{marker} {directive(text='short answer', stop_reason='max_tokens')}"
    response = proxy.client().chat.completions.create(model="sonnet", messages=user(prompt), max_tokens=100)
    (request, *_) = upstream_requests(fake, marker)
    assert request["body"]["max_tokens"] == 100
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content == "short answer"
    text, reasons = streamed(proxy, messages=user(prompt.replace(marker, marker + "-s")), max_tokens=100)
    assert reasons == ["length"]
    assert text == "short answer"


def test_a_whole_answer_under_the_limit_is_stop(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "fidelity-stop-9a21"
    prompt = f"{marker} {directive(text=REPLY)}"
    response = proxy.client().chat.completions.create(model="sonnet", messages=user(prompt), max_tokens=50)
    (request,) = upstream_requests(fake, marker)
    assert request["body"]["max_tokens"] == 50
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content == REPLY
    text, reasons = streamed(proxy, messages=user(prompt.replace(marker, marker + "-s")), max_tokens=50)
    assert reasons == ["stop"]
    assert text == REPLY
