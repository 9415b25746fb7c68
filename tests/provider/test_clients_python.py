"""The Python clients through the gateway, on their defaults: the ``openai`` and ``anthropic`` SDKs,
pydantic-ai and LangChain, each configured by its docs/clients.md snippet (run as written, with the
test gateway's URL and a person's key in ``GATEWAY_KEY``) and used as its own documentation shows.

The fake upstream scripts Claude's answers (a directive in the prompt); given tool results it
answers by quoting them. Every test asserts on what the library handed back and on what reached
"Claude" (the fake's request log).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive
from pydantic import BaseModel

from tests.provider.conftest import Gateway
from tests.support.docs_snippets import snippet
from tests.support.upstream import texts, user_text

pytestmark = pytest.mark.integration

PREFIX = "mcp__client__"  # how the provider offers a client's tools to Claude


class City(BaseModel):
    """A city, the structured output the frameworks are asked for."""

    name: str
    population: int


PARIS = {"name": "Paris", "population": 2102650}


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny, 21 C in {city}"


@pytest.fixture(scope="module", autouse=True)
def gateway_key(gateway: Gateway) -> Iterator[str]:
    """The person's key where the snippets read it."""
    patch = pytest.MonkeyPatch()
    patch.setenv("GATEWAY_KEY", gateway.key)
    yield gateway.key
    patch.undo()


def run_snippet(name: str, gateway: Gateway) -> dict[str, Any]:
    """Run docs/clients.md's snippet ``name`` against the test gateway; its variables."""
    namespace: dict[str, Any] = {}
    exec(compile(snippet(name, gateway.url), f"docs/clients.md:{name}", "exec"), namespace)
    return namespace


def sent(fake: FakeAnthropicServer, marker: str) -> list[dict[str, Any]]:
    """The upstream requests of one test (its marker is in the prompt)."""
    return [r for r in fake.messages_requests() if marker in user_text(r)]


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user turn of one upstream request."""
    last = [m for m in request["messages"] if m.get("role") == "user"][-1]
    content = last["content"] if isinstance(last["content"], list) else []
    return [b for b in content if b.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    inner = block.get("content")
    if isinstance(inner, list):
        return "".join(str(p.get("text", "")) for p in inner if isinstance(p, dict))
    return str(inner)


# --------------------------------------------------------------------------- openai SDK


def test_openai_snippet_answers(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    answer = run_snippet("openai-python", gateway)["answer"]
    assert answer.choices[0].message.content.startswith("fake reply from claude-")
    assert answer.choices[0].finish_reason == "stop"
    (request,) = [r for r in fake.messages_requests() if "Hello" in user_text(r)]
    assert request["tool_names"] == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_sampling_parameters_are_served_and_named(
    gateway: Gateway, fake: FakeAnthropicServer, stream: bool
) -> None:
    """What agents send by default (aider: ``temperature: 0``) is served, and the header names it."""
    client = run_snippet("openai-python", gateway)["client"]
    marker = f"sampling-{stream}-6c1e"
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[{"role": "user", "content": f"{marker} Hello {directive(text='Hi there.')}"}],
        temperature=0,
        top_p=0.5,
        stream=stream,
    )
    assert sorted(raw.headers["x-claude-code-not-applied"].replace(" ", "").split(",")) == ["temperature", "top_p"]
    answer = raw.parse()
    text = (
        "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        if stream
        else answer.choices[0].message.content
    )
    assert text == "Hi there."
    (request,) = sent(fake, marker)
    assert "temperature" not in request["body"] and "top_p" not in request["body"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_openai_cookbook_tool_follow_up_without_tools(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    """The OpenAI cookbook's function-calling loop: the follow-up with the results sends no ``tools``."""
    client = run_snippet("openai-python", gateway)["client"]
    marker = "cookbook-follow-up-41d7"
    call = directive(text="", tool_use={"name": "get_weather", "input": {"city": "Paris"}})
    messages: list[Any] = [{"role": "user", "content": f"{marker} What is the weather in Paris? {call}"}]
    first = client.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    (tool_call,) = message.tool_calls
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    messages.append(message)  # as the cookbook does: the SDK's message object
    arguments = json.loads(tool_call.function.arguments)
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": get_weather(**arguments)})
    fake.push({"text": "It is sunny in Paris, 21 C."})  # Claude's answer to the follow-up
    follow = client.chat.completions.create(model="sonnet", messages=messages)
    assert follow.choices[0].finish_reason == "stop"
    assert follow.choices[0].message.content == "It is sunny in Paris, 21 C."
    assert not follow.choices[0].message.tool_calls
    first_sent, follow_sent = sent(fake, marker)
    assert first_sent["tool_names"] == [PREFIX + "get_weather"]
    # Without tools, Claude reads the call and its result as text (it can call nothing this turn).
    assert follow_sent["tool_names"] == []
    said = texts(follow_sent)
    assert any(role == "assistant" and "get_weather" in text and tool_call.id in text for role, text in said), said
    assert ("user", f"[result of call id {tool_call.id}: sunny, 21 C in Paris]") in said, said


# --------------------------------------------------------------------------- anthropic SDK

ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
}


def test_anthropic_snippet_answers_and_streams(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    namespace = run_snippet("anthropic-python", gateway)
    message = namespace["message"]
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("fake reply from claude-")
    marker = "anthropic-stream-0b6e"
    with namespace["client"].messages.stream(
        model="sonnet", max_tokens=1024, messages=[{"role": "user", "content": f"{marker} Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("fake reply from claude-") and len(text.split()) == 12
    assert final.stop_reason == "end_turn" and final.content[0].text == text
    (request,) = sent(fake, marker)
    assert request["tool_names"] == []


def test_anthropic_tool_round_trip(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    client = run_snippet("anthropic-python", gateway)["client"]
    marker = "anthropic-tools-5a90"
    call = directive(text="Checking.", tool_use={"name": "get_weather", "input": {"city": "Paris"}})
    question = {"role": "user", "content": f"{marker} Weather in Paris? {call}"}
    first = client.messages.create(model="sonnet", max_tokens=1024, messages=[question], tools=[ANTHROPIC_WEATHER])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    result = {"type": "tool_result", "tool_use_id": use.id, "content": get_weather(**use.input)}
    follow = client.messages.create(
        model="sonnet",
        max_tokens=1024,
        tools=[ANTHROPIC_WEATHER],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
    )
    assert follow.stop_reason == "end_turn"
    assert follow.content[0].text == f"Tool results: {PREFIX}get_weather({use.id}) -> sunny, 21 C in Paris"
    first_sent, follow_sent = sent(fake, marker)
    assert first_sent["tool_names"] == [PREFIX + "get_weather"]
    (block,) = tool_results(follow_sent)
    assert block["tool_use_id"] == use.id and result_text(block) == "sunny, 21 C in Paris"


# --------------------------------------------------------------------------- pydantic-ai


def test_pydantic_ai_structured_output_on_its_default_tool(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    """pydantic-ai's default output mode: a ``final_result`` tool with ``tool_choice: required``."""
    from pydantic_ai import Agent

    model = run_snippet("pydantic-ai", gateway)["model"]
    agent = Agent(model, output_type=City)
    marker = "pydantic-output-7e21"
    call = directive(text="", tool_use={"name": "final_result", "input": PARIS})
    result = agent.run_sync(f"{marker} The largest city of France? {call}")
    assert result.output == City(**PARIS)
    (request,) = sent(fake, marker)
    assert request["tool_names"] == [PREFIX + "final_result"]
    offered = request["body"]["tools"][0]["input_schema"]
    assert set(offered["properties"]) == {"name", "population"}


def test_pydantic_ai_agent_runs_a_tool_and_answers(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    from pydantic_ai import Agent

    model = run_snippet("pydantic-ai", gateway)["model"]
    ran: list[str] = []

    def weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(city)
        return get_weather(city)

    agent = Agent(model, tools=[weather])
    marker = "pydantic-tools-c3f8"
    call = directive(text="", tool_use={"name": "weather", "input": {"city": "Paris"}})
    result = agent.run_sync(f"{marker} Weather in Paris? {call}")
    assert ran == ["Paris"]
    first_sent, follow_sent = sent(fake, marker)
    assert first_sent["tool_names"] == [PREFIX + "weather"]
    (block,) = tool_results(follow_sent)
    assert result_text(block) == "sunny, 21 C in Paris"
    assert result.output == f"Tool results: {PREFIX}weather({block['tool_use_id']}) -> sunny, 21 C in Paris"


# --------------------------------------------------------------------------- LangChain


def test_langchain_bind_tools_returns_tool_calls(gateway: Gateway, fake: FakeAnthropicServer) -> None:
    llm = run_snippet("langchain", gateway)["llm"]
    marker = "langchain-tools-9d04"
    call = directive(text="", tool_use={"name": "get_weather", "input": {"city": "Paris"}})
    message = llm.bind_tools([get_weather]).invoke(f"{marker} Weather in Paris? {call}")
    (tool_call,) = message.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("get_weather", {"city": "Paris"})
    assert tool_call["id"].startswith("toolu_")
    (request,) = sent(fake, marker)
    assert request["tool_names"] == [PREFIX + "get_weather"]


#: Claude's answer for each method: a call of the schema's tool (function_calling), or of the
#: CLI's structured-output tool, through which the provider serves ``response_format``.
STRUCTURED_ANSWERS = {
    "function_calling": {"text": "", "tool_use": {"name": "City", "input": PARIS}},
    "json_schema": {"text": "", "tool_use": {"name": "StructuredOutput", "input": PARIS}},
    "json_mode": {"text": "", "tool_use": {"name": "StructuredOutput", "input": PARIS}},
}


@pytest.mark.parametrize("method", list(STRUCTURED_ANSWERS))
def test_langchain_with_structured_output(gateway: Gateway, fake: FakeAnthropicServer, method: str) -> None:
    llm = run_snippet("langchain", gateway)["llm"]
    marker = f"langchain-structured-{method}-2b7a"
    answer = directive(**STRUCTURED_ANSWERS[method])
    prompt = f"{marker} The largest city of France, as JSON with name and population. {answer}"
    structured = llm.with_structured_output(City, method=method)
    assert structured.invoke(prompt) == City(**PARIS)
    (request,) = sent(fake, marker)
    if method == "function_calling":
        assert request["tool_names"] == [PREFIX + "City"]
    else:
        assert request["tool_names"] == ["StructuredOutput"]
    if method != "json_mode":  # json_mode sends no schema: LangChain parses whatever JSON comes back
        schema = request["body"]["tools"][0]["input_schema"]
        assert set(schema["properties"]) == {"name", "population"}
