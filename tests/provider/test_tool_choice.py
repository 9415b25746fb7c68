"""What agents send by default, through the real proxy: forced tool_choice, one call per turn,
a tool result sent back without tools, and sampling parameters served and reported.

The official clients talk to ``litellm --config examples/proxy_config.yaml``; the provider runs
the bundled CLI against the fake upstream, which scripts Claude (a directive in the prompt, its
queue for the follow-up turn the gateway writes itself). Assertions are on what the client got
(body and headers) and on what reached the upstream, the next request's history included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.client_tools import PREFIX, TOOLS, TWO_CALLS, echo
from tests.support.proxy_http import log_fields
from tests.support.stack import MASTER_KEY, Proxy, wait_until
from tests.support.upstream import dialogue, marked

pytestmark = pytest.mark.integration

HEADER = "x-claude-code-not-applied"


@pytest.fixture(autouse=True)
def settled(proxy: Proxy) -> Iterator[None]:
    yield
    assert wait_until(lambda: len(proxy.claude_processes()) <= 1, 15, interval=0.2), "CLI processes left running"


def ask(marker: str, **scenario: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{marker} {directive(**scenario)}"}]


# --------------------------------------------------------------------------- tool_choice


def test_required_hands_back_the_call_alone(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "forced-required-3a9e"
    response = proxy.client().chat.completions.create(
        model="sonnet",
        messages=ask(marker, text="Let me check.", tool_use=[TWO_CALLS[0]]),
        tools=TOOLS,
        tool_choice="required",
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None  # held back: a forced call comes alone
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather"]
    (request,) = marked(fake, marker)
    assert request["tool_names"] == [PREFIX + "get_time", PREFIX + "get_weather"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_named_function_is_asked_for_again_and_the_next_request_sees_only_what_the_client_got(
    proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    """LangChain's ``with_structured_output(method="function_calling")`` sends a named tool_choice."""
    marker = f"forced-named-{stream}-5c1d"
    fake.push({"tool_use": [{"name": "get_time", "input": {}}]})  # the answer to the gateway's follow-up
    client = proxy.client()
    messages: list[dict[str, Any]] = ask(marker, text="It is probably noon.")
    choice: Any = {"type": "function", "function": {"name": "get_time"}}
    if stream:
        with client.chat.completions.stream(model="sonnet", messages=messages, tools=TOOLS, tool_choice=choice) as s:
            texts = [e.delta for e in s if e.type == "content.delta"]
            message = s.get_final_completion().choices[0].message
        assert "".join(texts) == ""
    else:
        message = (
            client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS, tool_choice=choice)
            .choices[0]
            .message
        )
    assert not message.content
    assert [c.function.name for c in message.tool_calls] == ["get_time"]
    first, again = fake.messages_requests()[-2:]
    assert marker in json.dumps(first["messages"])
    assert first["tool_names"] == again["tool_names"] == [PREFIX + "get_time"]  # only the named tool
    assert "Call the tool mcp__client__get_time now" in json.dumps(dialogue(again)[-1])
    # The tool result goes back with every tool: the history Claude sees is what the client got.
    messages += [echo(message), {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "noon"}]
    follow = client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert "get_time" in (follow.choices[0].message.content or "")
    last = fake.messages_requests()[-1]
    assert last["tool_names"] == [PREFIX + "get_time", PREFIX + "get_weather"]
    turns = dialogue(last)
    assert [role for role, _ in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1][1]] == ["tool_use"]  # no held-back text, no follow-up turn
    assert "Call the tool" not in json.dumps(last["messages"])


def test_no_call_even_when_asked_again_is_a_502(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "forced-none-8f2b"
    fake.push({"text": "Still no call."})
    with pytest.raises(openai.APIStatusError) as info:
        proxy.client().chat.completions.create(
            model="sonnet", messages=ask(marker, text="No call."), tools=TOOLS, tool_choice="required"
        )
    assert info.value.status_code == 502
    assert "tool_choice asks for a tool call, but Claude ended its answer without one" in str(info.value)


def test_anthropic_tool_choice_any_through_the_messages_api(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "forced-any-2d7e"
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    tools: Any = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    answer = client.messages.create(
        model="sonnet",
        max_tokens=200,
        messages=ask(marker, text="Checking.", tool_use=[TWO_CALLS[0]]),  # type: ignore[arg-type]
        tools=tools,
        tool_choice={"type": "any"},
    )
    assert answer.stop_reason == "tool_use"
    assert [b.type for b in answer.content] == ["tool_use"]


# --------------------------------------------------------------------------- parallel_tool_calls


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_parallel_tool_calls_false_hands_back_the_first_call(
    proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    marker = f"single-call-{stream}-6b3f"
    client = proxy.client()
    messages: list[dict[str, Any]] = ask(marker, text="Two things.", tool_use=TWO_CALLS)
    if stream:
        with client.chat.completions.stream(
            model="sonnet", messages=messages, tools=TOOLS, parallel_tool_calls=False
        ) as s:
            message = s.get_final_completion().choices[0].message
    else:
        message = (
            client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS, parallel_tool_calls=False)
            .choices[0]
            .message
        )
    assert message.content == "Two things."
    assert [c.function.name for c in message.tool_calls] == ["get_weather"]
    messages += [echo(message), {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "rain"}]
    client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS, parallel_tool_calls=False)
    turns = dialogue(marked(fake, marker)[-1])
    assert [b["type"] for b in turns[1][1]] == ["text", "tool_use"]  # the second call is not in Claude's history


# --------------------------------------------------------------------------- a tool result without tools


def test_a_tool_result_sent_back_without_tools_is_answered(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    """The OpenAI cookbook's follow-up: the results go back without ``tools``."""
    marker = "no-tools-follow-4e8a"
    client = proxy.client()
    messages: list[dict[str, Any]] = ask(marker, tool_use=[TWO_CALLS[0]])
    first = client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS).choices[0].message
    call = first.tool_calls[0]
    messages += [echo(first), {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
    answer = client.chat.completions.create(model="sonnet", messages=messages)
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content
    last = marked(fake, marker)[-1]
    assert not [name for name in last.get("tool_names") or [] if name.startswith(PREFIX)]
    said = json.dumps(dialogue(last))
    assert f'[called the tool get_weather({{\\"city\\":\\"Paris\\",\\"unit\\":\\"C\\"}}), call id {call.id}]' in said
    assert f"[result of call id {call.id}: 18 C and sunny]" in said


# --------------------------------------------------------------------------- parameters not applied


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_sampling_parameters_are_served_and_named_in_a_header(
    proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    """aider sends temperature 0 with every (streamed) request; the cookbook adds seed."""
    marker = f"not-applied-{stream}-1f6c"
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="sonnet", messages=ask(marker, text="fine"), temperature=0, seed=7, stream=stream
    )
    assert raw.headers[HEADER] == "seed, temperature"
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    else:
        text = raw.parse().choices[0].message.content
    assert text == "fine"
    assert log_fields(proxy, raw.headers["x-litellm-call-id"])["not_applied"] == "seed,temperature"
    assert "temperature" not in json.dumps(marked(fake, marker)[0].get("body", {}))
    plain = proxy.client().chat.completions.with_raw_response.create(
        model="sonnet", messages=ask(marker + "b", text="x")
    )
    assert HEADER not in plain.headers


def test_the_other_doors_report_them_too(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    raw = client.messages.with_raw_response.create(
        model="sonnet",
        max_tokens=50,
        messages=ask("door-not-applied 7a1b", text="ok"),  # type: ignore[arg-type]
        extra_body={"temperature": 0.3, "top_k": 5},  # this anthropic client has no keyword for them
    )
    assert raw.headers[HEADER] == "temperature, top_k"
    with client.messages.with_streaming_response.create(
        model="sonnet",
        max_tokens=50,
        stream=True,
        messages=ask("door-stream 7a1b", text="ok"),  # type: ignore[arg-type]
        extra_body={"temperature": 0.3},
    ) as streamed:
        assert streamed.headers[HEADER] == "temperature"
    responses = proxy.client().responses.with_raw_response.create(
        model="sonnet", input="door-responses 7a1b", temperature=0.5, top_p=0.9
    )
    assert responses.headers[HEADER] == "temperature, top_p"


def test_a_parameter_whose_absence_would_mislead_is_refused_with_why(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        proxy.client().chat.completions.create(model="sonnet", messages=ask("logprobs 2b8e", text="x"), logprobs=True)
    assert "logprobs: not available through Claude Code (Claude returns no log probabilities" in str(info.value)
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="sonnet", messages=ask("dropped 2b8e", text="x"), logprobs=True, extra_body={"drop_params": True}
    )
    assert raw.headers[HEADER] == "logprobs"
    assert not marked(fake, "logprobs 2b8e")


# --------------------------------------------------------------------------- the generated project


def test_each_shape_on_the_generated_projects_defaults(gateway: Any, fake: FakeAnthropicServer) -> None:
    """One request of each shape the agents send, on the template's config: aider's streamed
    ``temperature: 0``, pydantic-ai's ``tool_choice: required``, LangChain's named function with
    ``parallel_tool_calls: false``, the cookbook's tool result without tools (with ``seed``)."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0, timeout=120)
    aider = client.chat.completions.with_raw_response.create(
        model="sonnet", messages=ask("shape-aider 9c2e", text="ok"), temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in aider.parse() if c.choices) == "ok"
    assert aider.headers[HEADER] == "temperature"
    pydantic = client.chat.completions.create(
        model="sonnet",
        messages=ask("shape-pydantic 9c2e", tool_use=[TWO_CALLS[0]]),
        tools=TOOLS,
        tool_choice="required",
    )
    assert [c.function.name for c in pydantic.choices[0].message.tool_calls] == ["get_weather"]
    langchain = client.chat.completions.create(
        model="sonnet",
        messages=ask("shape-langchain 9c2e", tool_use=[TWO_CALLS[1]]),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
    )
    assert [c.function.name for c in langchain.choices[0].message.tool_calls] == ["get_time"]
    messages: list[dict[str, Any]] = ask("shape-cookbook 9c2e", tool_use=[TWO_CALLS[0]])
    first = client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS, temperature=0.2, seed=1)
    call = first.choices[0].message.tool_calls[0]
    messages += [echo(first.choices[0].message), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    cookbook = client.chat.completions.with_raw_response.create(model="sonnet", messages=messages, seed=1)
    assert cookbook.parse().choices[0].message.content
    assert cookbook.headers[HEADER] == "seed"
