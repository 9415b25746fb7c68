"""An answer that starts with thinking, on every endpoint the gateway serves, through the real proxy.

Claude's adaptive thinking puts a thinking block first in most answers; the fake upstream does the
same when a prompt scripts ``thinking`` (its stream opens with the thinking block, then the text).
A streamed piece of thinking is a chunk the provider builds itself, and LiteLLM builds the final
response of a stream (for ``/v1/responses``, its logging and its usage) from the stream's first
chunk: a first chunk without ``model`` ended Codex's streams in ``response.failed`` ("Error building
chunks for logging/streaming usage calculation"). Each test reads what the client got, in order, and
checks the proxy logged no such error. The official SDKs talk to the generated project's gateway
with a person's key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.provider.conftest import Gateway
from tests.support.upstream import user_text

pytestmark = pytest.mark.integration

THINKING = "first the units, then the sum"
ANSWER = "the total is 12"
CHUNK_ERRORS = ("Error building chunks", "KeyError: 'model'")


@pytest.fixture
def log_from(gateway: Gateway) -> Iterator[int]:
    """Where the proxy's log stands before the test: the test reads only what it added."""
    yield len(gateway.proxy.log_text())


def added_log(gateway: Gateway, start: int) -> str:
    return gateway.proxy.log_text()[start:]


def prompt(marker: str) -> str:
    return f"add them {marker} " + directive(thinking=THINKING, text=ANSWER)


def upstream_one(fake: FakeAnthropicServer, marker: str) -> dict[str, Any]:
    """The one upstream request of the test (no retry of a failed stream, by the CLI or anyone)."""
    (request,) = [r for r in fake.messages_requests() if marker in user_text(r)]
    assert request["body"]["thinking"]["type"] in ("adaptive", "enabled")
    return request


def openai_client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0, timeout=120)


def test_chat_completions_streamed(gateway: Gateway, fake: FakeAnthropicServer, log_from: int) -> None:
    stream = openai_client(gateway).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": prompt("c7a1")}], stream=True
    )
    chunks = list(stream)
    order = []
    for chunk in chunks:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and (delta.model_extra or {}).get("reasoning_content"):
            order.append(("reasoning", delta.model_extra["reasoning_content"]))  # type: ignore[index]
        if delta is not None and delta.content:
            order.append(("text", delta.content))
    assert order[0][0] == "reasoning", order
    assert "".join(v for k, v in order if k == "reasoning") == THINKING
    assert "".join(v for k, v in order if k == "text") == ANSWER
    kinds = [k for k, _ in order]
    assert kinds == ["reasoning"] * kinds.count("reasoning") + ["text"] * kinds.count("text")
    # Every chunk names the model and the one response, the first (a piece of thinking) included.
    assert {chunk.model for chunk in chunks} == {"sonnet"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[-1].choices[0].finish_reason == "stop" if chunks[-1].choices else True
    upstream_one(fake, "c7a1")
    assert not any(marker in added_log(gateway, log_from) for marker in CHUNK_ERRORS)


def test_chat_completions_not_streamed(gateway: Gateway, fake: FakeAnthropicServer, log_from: int) -> None:
    response = openai_client(gateway).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": prompt("c7a2")}]
    )
    message = response.choices[0].message
    assert message.content == ANSWER
    assert (message.model_extra or {}).get("reasoning_content") == THINKING
    assert response.model == "sonnet" and response.choices[0].finish_reason == "stop"
    upstream_one(fake, "c7a2")
    assert not any(marker in added_log(gateway, log_from) for marker in CHUNK_ERRORS)


def test_anthropic_messages_streamed(gateway: Gateway, fake: FakeAnthropicServer, log_from: int) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0, timeout=120)
    kinds: list[str] = []
    with client.messages.stream(
        model="sonnet", max_tokens=1024, messages=[{"role": "user", "content": prompt("c7a3")}]
    ) as stream:
        for event in stream:
            if event.type == "content_block_start":
                kinds.append(event.content_block.type)
        final = stream.get_final_message()
    assert kinds[:1] == ["thinking"] and "text" in kinds, kinds
    thinking = "".join(b.thinking for b in final.content if b.type == "thinking")
    text = "".join(b.text for b in final.content if b.type == "text")
    assert (thinking, text) == (THINKING, ANSWER)
    assert final.stop_reason == "end_turn"
    upstream_one(fake, "c7a3")
    assert not any(marker in added_log(gateway, log_from) for marker in CHUNK_ERRORS)


def reasoning_and_text(output: list[Any]) -> tuple[list[str], str, str]:
    """The item types of a Responses API output, its reasoning and its message text.

    LiteLLM's bridge puts the reasoning of a finished response in the item's ``content`` (the
    stream's deltas are summary deltas); either is read.
    """
    types = [item.type for item in output]
    summary = "".join(
        part.text for item in output if item.type == "reasoning" for part in (item.summary or item.content or [])
    )
    text = "".join(
        part.text for item in output if item.type == "message" for part in item.content if part.type == "output_text"
    )
    return types, summary, text


def test_responses_streamed(gateway: Gateway, fake: FakeAnthropicServer, log_from: int) -> None:
    events = list(
        openai_client(gateway).responses.create(
            model="sonnet", input=prompt("c7a4"), stream=True, reasoning={"summary": "auto"}
        )
    )
    kinds = [event.type for event in events]
    assert kinds[-1] == "response.completed", json.dumps(kinds)
    assert "response.failed" not in kinds and "error" not in kinds
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert deltas == THINKING
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.status == "completed" and completed.model == "sonnet"
    assert reasoning_and_text(completed.output) == (["reasoning", "message"], THINKING, ANSWER)
    upstream_one(fake, "c7a4")
    assert not any(marker in added_log(gateway, log_from) for marker in CHUNK_ERRORS)


def test_responses_not_streamed(gateway: Gateway, fake: FakeAnthropicServer, log_from: int) -> None:
    response = openai_client(gateway).responses.create(
        model="sonnet", input=prompt("c7a5"), reasoning={"summary": "auto"}
    )
    assert response.status == "completed"
    assert reasoning_and_text(response.output) == (["reasoning", "message"], THINKING, ANSWER)
    assert response.output_text == ANSWER
    upstream_one(fake, "c7a5")
    assert not any(marker in added_log(gateway, log_from) for marker in CHUNK_ERRORS)
