"""Client tools through the real stack: Claude is offered the client's tools and its calls come
back as OpenAI ``tool_calls``; the results go back to Claude as its own tool_use/tool_result turns.

The real LiteLLM proxy (``examples/proxy_config.yaml``), the provider, the SDK and the bundled
CLI run against the fake upstream, which scripts Claude's calls (a directive in the prompt, or
its queue) and, given tool results, answers by quoting them. Every assertion is on what a client
received (the official ``openai`` and ``anthropic`` clients, an OpenAI Agents SDK agent) and on
what reached the upstream (the fake's request log).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.client_tools import PREFIX, TOOLS, TWO_CALLS, WEATHER_SCHEMA, echo
from tests.support.proxy_http import log_fields
from tests.support.stack import MASTER_KEY, Proxy, wait_until
from tests.support.upstream import dialogue, marked, served_by

pytestmark = pytest.mark.integration


# How long a late upstream request is waited for once a request is done: the CLI would send it
# within a few hundred milliseconds of the last one.
LATE = 3.0


@pytest.fixture(autouse=True)
def settled(proxy: Proxy) -> Iterator[None]:
    yield
    assert wait_until(lambda: len(proxy.claude_processes()) <= 1, 15, interval=0.2), "CLI processes left running"


# --------------------------------------------------------------------------- chat completions


def test_tools_reach_claude_as_its_only_tools_and_calls_come_back_as_tool_calls(
    proxy: Proxy, fake: FakeAnthropicServer
) -> None:
    marker = "tools-plain-5e1a"
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[{"role": "user", "content": f"{marker} {directive(text='Let me look.', tool_use=TWO_CALLS)}"}],
        tools=TOOLS,
    )
    response = raw.parse()
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris", "unit": "C"}, {}]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("toolu_") for c in calls)
    (request,) = marked(fake, marker)
    offered = {t["name"]: t for t in request["body"]["tools"]}
    assert sorted(offered) == [PREFIX + "get_time", PREFIX + "get_weather"]  # nothing of Claude Code's own
    assert offered[PREFIX + "get_weather"]["description"] == "Current weather for a city"
    assert offered[PREFIX + "get_weather"]["input_schema"] == WEATHER_SCHEMA
    assert offered[PREFIX + "get_time"]["input_schema"] == {"type": "object", "properties": {}}
    # Nothing ran: the CLI asked the upstream once, and no tool result was sent anywhere. A CLI
    # that ran the calls would ask again after the client got its answer: once the request is
    # done (its log line written), give a late second request time to arrive, then count.
    log_fields(proxy, raw.headers["x-litellm-call-id"])
    assert not wait_until(lambda: len(marked(fake, marker)) > 1, LATE), "the CLI asked the upstream again"
    assert len(marked(fake, marker)) == 1


def test_streamed_tool_calls_assemble_in_the_openai_client(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "tools-stream-77b0"
    calls = [{"name": "get_weather", "input": {"city": 'Zürich, "old town"', "unit": "F"}}, {"name": "get_time"}]
    with proxy.client().chat.completions.stream(
        model="sonnet",
        messages=[{"role": "user", "content": f"{marker} {directive(text='Two calls.', tool_use=calls)}"}],
        tools=TOOLS,
    ) as stream:
        pieces = [event for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Two calls."
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == calls[0]["input"]
    assert json.loads(choice.message.tool_calls[1].function.arguments or "{}") == {}
    assert len(pieces) >= 3, "the arguments did not stream in pieces"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_results_reach_claude_as_its_own_turns_in_order(
    proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    marker = f"tools-follow-{stream}-2c4d"
    client = proxy.client()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"You are a weather bot {marker}."},
        {"role": "user", "content": f"{marker} {directive(tool_use=TWO_CALLS, text='On it.')}"},
    ]
    first = client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    message = first.choices[0].message
    messages.append(echo(message))
    results = ["12 C and raining", "09:41"]
    for call, result in zip(message.tool_calls, results, strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet", messages=messages, tools=TOOLS, stream=stream
    )
    if stream:
        answer = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    else:
        answer = raw.parse().choices[0].message.content
    ids = [c.id for c in message.tool_calls]
    assert answer == (
        f"Tool results: {PREFIX}get_weather({ids[0]}) -> 12 C and raining; {PREFIX}get_time({ids[1]}) -> 09:41"
    )
    before, after = marked(fake, marker)
    assert dialogue(after)[1:] == [
        (
            "assistant",
            [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": ids[0], "name": PREFIX + "get_weather", "input": TWO_CALLS[0]["input"]},
                {"type": "tool_use", "id": ids[1], "name": PREFIX + "get_time", "input": {}},
            ],
        ),
        (
            "user",
            [
                {"type": "tool_result", "tool_use_id": ids[0], "content": results[0]},
                {"type": "tool_result", "tool_use_id": ids[1], "content": results[1]},
            ],
        ),
    ]
    # The process that made the calls kept the turn: the results were its next user turn.
    assert served_by(before) == served_by(after)
    fields = log_fields(proxy, raw.headers["x-litellm-call-id"])
    assert (fields["warm"], fields["conversation"]) == ("true", "continued")


def test_a_request_without_tools_after_one_with_tools_sees_no_tools(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    client = proxy.client()
    # The warm set (WARM_MAX=1) holds one idle process without tools, whatever earlier tests left.
    client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "tools-then-none-0 31f0"}])
    client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "tools-then-none-a 31f0"}], tools=TOOLS
    )
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": "tools-then-none-b 31f0"}]
    )
    assert raw.parse().choices[0].finish_reason == "stop"
    (request,) = marked(fake, "tools-then-none-b 31f0")
    assert request["tool_names"] == [] and not request["body"].get("tools")
    # Cold, and why: the request with tools could not use the tool-less process (a process lists
    # its tools at start), so it started one; when it came back, the warm set was over WARM_MAX and
    # the least recently used, tool-less process was stopped for room. The idle process now has
    # tools, and the pool names the stopped one that would have served this request: ``evicted``
    # (``mismatch`` only when no such process was stopped within the idle timeout).
    assert log_fields(proxy, raw.headers["x-litellm-call-id"])["cold_reason"] == "evicted"


def test_a_warm_process_serves_the_next_request_with_the_same_tools(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    client = proxy.client()
    client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "warm-tools-a 6d2e"}], tools=TOOLS
    )
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": "warm-tools-b 6d2e"}], tools=TOOLS
    )
    assert raw.parse().choices[0].message.content.startswith("fake reply from")
    fields = log_fields(proxy, raw.headers["x-litellm-call-id"])
    assert fields["warm"] == "true"
    (first,) = marked(fake, "warm-tools-a 6d2e")
    (second,) = marked(fake, "warm-tools-b 6d2e")
    assert served_by(first) == served_by(second)
    assert second["tool_names"] == first["tool_names"] == [PREFIX + "get_time", PREFIX + "get_weather"]
    # Another conversation: the first one's turns were cut off, not sent along.
    assert [role for role, _ in dialogue(second)] == ["user"]


def test_tool_choice_none_offers_claude_no_tools(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "choice-none 80a1"}], tools=TOOLS, tool_choice="none"
    )
    assert response.choices[0].finish_reason == "stop"
    (request,) = marked(fake, "choice-none 80a1")
    assert request["tool_names"] == []


def test_tool_choice_auto_offers_the_tools(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "choice-auto 80a1"}], tools=TOOLS, tool_choice="auto"
    )
    (request,) = marked(fake, "choice-auto 80a1")
    assert request["tool_names"] == [PREFIX + "get_time", PREFIX + "get_weather"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param(
            {"tool_choice": "required"},
            "tool_choice 'required' asks for a tool call, but the request has no tools",
            id="required-without-tools",
        ),
        pytest.param(
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_date"}}},
            "tool_choice names 'get_date', which is not among the request's tools",
            id="named-unknown",
        ),
        pytest.param(
            {"functions": [{"name": "get_time", "parameters": {"type": "object", "properties": {}}}]},
            "functions is the deprecated form",
            id="functions",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_a_400(
    proxy: Proxy, fake: FakeAnthropicServer, extra: dict[str, Any], says: str
) -> None:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "refuse 4b19"}], **extra}
    response = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
    assert "Traceback" not in response.text
    assert fake.messages_requests() == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_call_of_a_strict_tool_that_breaks_its_schema_is_an_error(
    proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    strict = [{"type": "function", "function": {**TOOLS[0]["function"], "strict": True}}]
    bad = directive(text="", tool_use={"name": "get_weather", "input": {"town": "Paris"}})
    with pytest.raises(openai.APIError) as caught:
        response = proxy.client().chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": f"strict-7c2a {bad}"}], tools=strict, stream=stream
        )
        if stream:
            for _ in response:  # type: ignore[union-attr]
                pass
    assert "do not match its strict schema" in str(caught.value)
    assert "'city' is a required property" in str(caught.value)
    if not stream:
        assert isinstance(caught.value, openai.APIStatusError) and caught.value.status_code == 502
    # Valid arguments pass.
    good = directive(text="", tool_use={"name": "get_weather", "input": {"city": "Paris"}})
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": f"strict-ok-7c2a {good}"}], tools=strict
    )
    assert response.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'


# --------------------------------------------------------------------------- the other doors


def anthropic_client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "The time now", "input_schema": {"type": "object", "properties": {}}},
]


def test_messages_api_plain_answer(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    message = anthropic_client(proxy).messages.create(
        model="sonnet",
        max_tokens=200,
        system="door system 1a7c",
        messages=[{"role": "user", "content": "door-messages-plain 1a7c"}],
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("fake reply from claude-")
    assert message.usage.output_tokens == 12
    (request,) = marked(fake, "door-messages-plain 1a7c")
    assert "door system 1a7c" in request["system_text"] and request["tool_names"] == []


def test_messages_api_streamed_answer(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    with anthropic_client(proxy).messages.stream(
        model="sonnet", max_tokens=200, messages=[{"role": "user", "content": "door-messages-stream 1a7c"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("fake reply from claude-") and len(text.split()) == 12
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_messages_api_tool_use_and_results(proxy: Proxy, fake: FakeAnthropicServer, stream: bool) -> None:
    marker = f"door-messages-tools-{stream} 1a7c"
    client = anthropic_client(proxy)
    question = {"role": "user", "content": f"{marker} {directive(text='Checking.', tool_use=TWO_CALLS)}"}
    if stream:
        with client.messages.stream(model="sonnet", max_tokens=200, messages=[question], tools=ANTHROPIC_TOOLS) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model="sonnet", max_tokens=200, messages=[question], tools=ANTHROPIC_TOOLS)
    assert first.stop_reason == "tool_use"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [(c["name"], c["input"]) for c in TWO_CALLS]
    assert [b.text for b in first.content if b.type == "text"] == ["Checking."]
    (request,) = marked(fake, marker)
    assert request["tool_names"] == [PREFIX + "get_time", PREFIX + "get_weather"]
    results = [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
        {"type": "tool_result", "tool_use_id": uses[1].id, "content": "noon"},
    ]
    follow = client.messages.create(
        model="sonnet",
        max_tokens=200,
        tools=ANTHROPIC_TOOLS,
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": results}],
    )
    assert follow.stop_reason == "end_turn"
    assert follow.content[0].text == (
        f"Tool results: {PREFIX}get_weather({uses[0].id}) -> sunny; {PREFIX}get_time({uses[1].id}) -> noon"
    )


def test_responses_api_plain_and_streamed(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    client = proxy.client()
    response = client.responses.create(model="sonnet", input="door-responses-plain 9e3b", instructions="be brief 9e3b")
    assert response.output_text.startswith("fake reply from claude-")
    (request,) = marked(fake, "door-responses-plain 9e3b")
    assert "be brief 9e3b" in request["system_text"]
    events = list(client.responses.create(model="sonnet", input="door-responses-stream 9e3b", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith("fake reply from claude-") and len(text.split()) == 12
    assert events[-1].type == "response.completed"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_api_function_calls_and_outputs(proxy: Proxy, fake: FakeAnthropicServer, stream: bool) -> None:
    marker = f"door-responses-tools-{stream} 9e3b"
    client = proxy.client()
    tools: Any = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER_SCHEMA,
        },
        {
            "type": "function",
            "name": "get_time",
            "description": "The time now",
            "parameters": {"type": "object", "properties": {}},
        },
    ]
    question = f"{marker} {directive(tool_use=TWO_CALLS)}"
    if stream:
        events = list(client.responses.create(model="sonnet", input=question, tools=tools, stream=True))
        assert events[-1].type == "response.completed"
        output = events[-1].response.output
    else:
        output = client.responses.create(model="sonnet", input=question, tools=tools).output
    calls = [item for item in output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments or "{}")) for c in calls] == [(t["name"], t["input"]) for t in TWO_CALLS]
    follow_input: Any = [
        {"role": "user", "content": question},
        *[{"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"},
    ]
    follow = client.responses.create(model="sonnet", input=follow_input, tools=tools)
    assert follow.output_text == (
        f"Tool results: {PREFIX}get_weather({calls[0].call_id}) -> sunny; {PREFIX}get_time({calls[1].call_id}) -> noon"
    )


# --------------------------------------------------------------------------- an agent framework


def test_an_openai_agents_sdk_agent_runs_two_tools_then_answers(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    ran: list[tuple[str, str]] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(("get_weather", city))
        return f"18 C in {city}"

    @function_tool
    def get_time(city: str) -> str:
        """Local time in a city."""
        ran.append(("get_time", city))
        return "10:15"

    # Claude's turns: one call, then (given its result) another, then the answer quoting the last result.
    fake.push(
        [
            {"text": "", "tool_use": {"name": "get_weather", "input": {"city": "Oslo"}}},
            {"text": "", "tool_use": {"name": "get_time", "input": {"city": "Oslo"}}},
        ]
    )
    model = OpenAIChatCompletionsModel(
        model="sonnet",
        openai_client=openai.AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key=MASTER_KEY, max_retries=0),
    )
    agent = Agent(
        name="weather", instructions="Answer with the tools. agent-9f1c", model=model, tools=[get_weather, get_time]
    )
    result = Runner.run_sync(agent, "What is the weather and time in Oslo? agent-9f1c", max_turns=5)
    assert ran == [("get_weather", "Oslo"), ("get_time", "Oslo")]  # run by the client, in order
    requests = marked(fake, "agent-9f1c")
    assert len(requests) == 3
    assert result.final_output.startswith(f"Tool results: {PREFIX}get_time(")
    assert result.final_output.endswith(") -> 10:15")
    last = dialogue(requests[-1])
    kinds = [(role, [b["type"] for b in blocks]) for role, blocks in last]
    assert kinds == [
        ("user", ["text"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
    ]
    assert last[2][1][0]["content"] == "18 C in Oslo"
    assert {t for r in requests for t in r["tool_names"]} == {PREFIX + "get_weather", PREFIX + "get_time"}


# --------------------------------------------------------------------------- through litellm.acompletion


@pytest.fixture
async def provider(tmp_path: Any, fake: FakeAnthropicServer) -> Any:
    from tests.support.stack import make_provider, shutdown_provider

    handler = make_provider(tmp_path / "state", "cc-tools", max_concurrency=2, warm_max=1, queue_timeout=60.0)
    try:
        yield handler
    finally:
        await shutdown_provider(handler)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_litellm_acompletion_hands_back_calls_and_rebuilds_a_tool_history(
    provider: Any, fake: FakeAnthropicServer, stream: bool
) -> None:
    import litellm

    marker = f"acompletion-tools-{stream} 0b7e"
    question = {"role": "user", "content": f"{marker} {directive(text='', tool_use=TWO_CALLS)}"}
    response = await litellm.acompletion(
        model="cc-tools/sonnet", messages=[question], tools=TOOLS, stream=stream, timeout=120
    )
    if stream:
        chunks = [chunk async for chunk in response]
        pieces = [tc for chunk in chunks for tc in (chunk.choices[0].delta.tool_calls or [])]
        message = litellm.stream_chunk_builder(chunks).choices[0].message
        assert len(pieces) >= 4 and [p.function.name for p in pieces if p.id] == ["get_weather", "get_time"]
        assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["tool_calls"]
    else:
        message = response.choices[0].message
        assert response.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        (t["name"], t["input"]) for t in TWO_CALLS
    ]
    assert not message.content
    # The history, with the results, given to a process that does not hold it: written as real turns.
    provider.engine().pool.evict_one()
    follow = [
        question,
        echo(message),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "windy"},
        {"role": "tool", "tool_call_id": message.tool_calls[1].id, "content": "noon"},
        {"role": "user", "content": "and in one word?"},
    ]
    answer = await litellm.acompletion(model="cc-tools/sonnet", messages=follow, tools=TOOLS, timeout=120)
    assert answer.choices[0].finish_reason == "stop"
    last = marked(fake, marker)[-1]
    assert [(role, [b["type"] for b in blocks]) for role, blocks in dialogue(last)] == [
        ("user", ["text"]),
        ("assistant", ["tool_use", "tool_use"]),
        ("user", ["tool_result", "tool_result", "text"]),
    ]
    assert served_by(last) != served_by(marked(fake, marker)[0])
