"""Client tools, unit by unit: the request's tools and tool_choice, the conversation as the CLI
holds it, tool calls out of the CLI's stream, and a process's tool set in the pool's matching.

No CLI runs here; ``test_client_tools.py`` drives the same paths through the real stack and
``test_compat_cli.py`` pins what they rely on in the bundled CLI.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from claude_agent_sdk.types import Message, StreamEvent
from litellm_claude_code._cli import Binding
from litellm_claude_code._errors import BadRequestError, UpstreamServerError
from litellm_claude_code._messages import chain_of, convert_messages
from litellm_claude_code._process import HeldTurn, plan_for
from litellm_claude_code._provider import ClaudeCodeProvider
from litellm_claude_code._settings import Settings
from litellm_claude_code._streaming import Delta, Outcome, ToolCallDelta, deltas
from litellm_claude_code._tools import (
    PREFIX,
    ToolCall,
    answer_turn,
    check_strict,
    client_name,
    defer_every_call,
    to_wire,
    tool_request,
)

from tests.support.sdk_messages import TIME, WEATHER, event, tool_turn


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def with_calls() -> list[dict[str, Any]]:
    return [
        *user("weather?"),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]


def request_for(messages: list[dict[str, Any]], **params: Any) -> Any:
    return tool_request(params, convert_messages(messages))


# --------------------------------------------------------------------------- the request


def test_function_tools_keep_their_names_descriptions_and_schemas() -> None:
    tools = request_for(user("hi"), tools=[WEATHER, TIME]).tools
    assert tools is not None
    assert tools.names() == ["get_weather", "get_time"]
    weather, clock = tools.tools
    assert weather.description == "Weather for a city"
    assert weather.schema == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert clock.description == ""
    assert clock.schema == {"type": "object", "properties": {}}


def test_the_tool_set_key_changes_with_any_part_of_a_tool() -> None:
    base = request_for(user("hi"), tools=[WEATHER]).tools
    renamed = request_for(user("hi"), tools=[{"type": "function", "function": {**WEATHER["function"], "name": "w"}}])  # type: ignore[dict-item]
    described = request_for(
        user("hi"),
        tools=[{"type": "function", "function": {**WEATHER["function"], "description": "other"}}],  # type: ignore[dict-item]
    )
    assert base is not None and renamed.tools is not None and described.tools is not None
    assert len({base.key, renamed.tools.key, described.tools.key}) == 3
    assert request_for(user("hi"), tools=[WEATHER]).tools == base


@pytest.mark.parametrize("choice", [None, "auto"])
def test_tool_choice_auto_offers_the_tools(choice: str | None) -> None:
    assert request_for(user("hi"), tools=[WEATHER], tool_choice=choice).tools is not None


def test_tool_choice_none_offers_no_tools() -> None:
    assert request_for(user("hi"), tools=[WEATHER], tool_choice="none").tools is None


@pytest.mark.parametrize(
    ("choice", "forced", "name", "offered"),
    [
        ("required", "required", None, ["get_weather", "get_time"]),
        ({"type": "any"}, "required", None, ["get_weather", "get_time"]),
        ({"type": "function", "function": {"name": "get_time"}}, "named", "get_time", ["get_time"]),
        ({"type": "function", "name": "get_time"}, "named", "get_time", ["get_time"]),  # the Responses API's form
        ({"type": "tool", "name": "get_time"}, "named", "get_time", ["get_time"]),  # Anthropic's
        ({"type": "auto"}, "auto", None, ["get_weather", "get_time"]),
    ],
)
def test_a_forced_tool_choice_is_emulated_and_a_named_one_offers_only_that_tool(
    choice: Any, forced: str, name: str | None, offered: list[str]
) -> None:
    asked = request_for(user("hi"), tools=[WEATHER, TIME], tool_choice=choice)
    assert (asked.choice, asked.name, asked.forced) == (forced, name, forced != "auto")
    assert asked.tools is not None and asked.tools.names() == offered


def test_parallel_tool_calls_false_asks_for_one_call() -> None:
    assert request_for(user("hi"), tools=[WEATHER], parallel_tool_calls=False).single
    assert not request_for(user("hi"), tools=[WEATHER], parallel_tool_calls=True).single
    anthropic_form = {"type": "auto", "disable_parallel_tool_use": True}
    assert request_for(user("hi"), tools=[WEATHER], tool_choice=anthropic_form).single


@pytest.mark.parametrize("params", [{}, {"tools": [WEATHER], "tool_choice": "none"}], ids=["no-tools", "none"])
def test_a_history_with_tool_calls_and_no_tools_offered_reaches_claude_as_text(
    tmp_path: Any, params: dict[str, Any]
) -> None:
    """The OpenAI cookbook sends the tool result back without ``tools``: served, the calls as text."""
    asked = request_for(with_calls(), **params)
    assert asked.tools is None and asked.as_text
    provider = ClaudeCodeProvider(Settings(state_dir=tmp_path))
    request = provider.build_request("sonnet", with_calls(), params, None, stream=False)
    assert request.tools is None
    turns = request.conversation.turns
    assert [b["type"] for t in turns for b in t.content] == ["text", "text", "text", "text"]
    assert turns[1].content[1]["text"] == '[called the tool get_weather({"city":"Paris"}), call id c1]'
    assert turns[2].content[0]["text"] == "[result of call id c1: sunny]"


@pytest.mark.parametrize(
    ("params", "messages", "says"),
    [
        ({"tool_choice": "required"}, None, "tool_choice 'required' asks for a tool call, but the request has no"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            None,
            "tool_choice names 'get_time', which is not among the request's tools (get_weather)",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool"}}, None, "names no function"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, None, "tool_choice must be one of"),
        ({"tools": [{"type": "web_search"}]}, None, "only tools of type 'function'"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, None, "function.name must be"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
            None,
            "type 'object'",
        ),
        ({"tools": [WEATHER, WEATHER]}, None, "repeated: get_weather"),
        ({"tools": {"get_weather": {}}}, None, "tools must be a list"),
        ({"functions": [{"name": "f"}]}, None, "functions is the deprecated form"),
        ({"function_call": "auto"}, None, "function_call is the deprecated form"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_that_says_why(
    params: dict[str, Any], messages: str | None, says: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        request_for(with_calls() if messages else user("hi"), **params)
    assert caught.value.status_code == 400
    assert says in caught.value.message


def test_the_provider_refuses_before_anything_starts(tmp_path: Any) -> None:
    provider = ClaudeCodeProvider(Settings(state_dir=tmp_path))
    with pytest.raises(BadRequestError, match="tool_choice names 'get_time'"):
        provider.build_request(
            "sonnet",
            user("hi"),
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            None,
            stream=False,
        )
    request = provider.build_request("sonnet", with_calls(), {"tools": [WEATHER]}, None, stream=True)
    assert request.tools is not None and request.binding.tools == request.tools
    assert request.conversation.turns[1].content[1]["name"] == PREFIX + "get_weather"


# --------------------------------------------------------------------------- the conversation


def test_earlier_calls_are_named_as_claude_saw_them_and_the_answer_turn_matches_the_echo() -> None:
    conversation = to_wire(convert_messages(with_calls()))
    assistant = conversation.turns[1]
    assert assistant.content == (
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": PREFIX + "get_weather", "input": {"city": "Paris"}},
    )
    # What the process records after answering with these calls is what the client sends back.
    recorded = answer_turn("Checking.", [ToolCall("c1", PREFIX + "get_weather", '{"city":"Paris"}')])
    assert recorded.fingerprint == assistant.fingerprint
    assert answer_turn("", []).content == ()


def test_client_names_lose_only_the_cli_prefix() -> None:
    assert client_name(PREFIX + "get_weather") == "get_weather"
    assert client_name("mcp__other__x") == "mcp__other__x"


async def test_the_hook_defers_every_call() -> None:
    answer = await defer_every_call({"tool_name": PREFIX + "x"}, "toolu_1", None)
    assert answer["hookSpecificOutput"]["permissionDecision"] == "defer"  # type: ignore[typeddict-item]


# --------------------------------------------------------------------------- the pool


def test_a_process_serves_only_requests_with_exactly_its_tools() -> None:
    conversation = convert_messages(user("hi"))
    with_tools = request_for(user("hi"), tools=[WEATHER]).tools
    other = request_for(user("hi"), tools=[WEATHER, TIME]).tools
    held: list[HeldTurn] = []
    tooled = Binding("sonnet", tools=with_tools)
    assert plan_for(held, tooled, None, conversation, Binding("sonnet", tools=with_tools), "") is not None
    assert plan_for(held, tooled, None, conversation, Binding("sonnet", tools=other), "") is None
    assert plan_for(held, tooled, None, conversation, Binding("sonnet"), "") is None  # no tools: never one with tools
    assert plan_for(held, Binding("sonnet"), None, conversation, tooled, "") is None
    chains = chain_of(conversation.turns)
    assert chains  # the conversation itself does not decide: the tool set does


# --------------------------------------------------------------------------- tool calls out of the stream


async def run(messages: list[Message], *, client_tools: bool) -> tuple[list[Delta], Outcome]:
    async def source() -> Any:
        for message in messages:
            yield message

    outcome = Outcome()
    got = [d async for d in deltas(source(), outcome, token_setting="X", client_tools=client_tools)]
    return got, outcome


async def test_tool_calls_stream_as_openai_pieces_and_end_with_tool_calls() -> None:
    got, outcome = await run(tool_turn(), client_tools=True)
    assert [d.text for d in got if d.text] == ["Checking."]
    assert [d.tool_call for d in got if d.tool_call] == [
        ToolCallDelta(0, id="t1", name=PREFIX + "get_weather"),
        ToolCallDelta(0, arguments='{"ci'),
        ToolCallDelta(0, arguments='ty":"P"}'),
        ToolCallDelta(1, id="t2", name=PREFIX + "get_time"),
    ]
    assert outcome.finish_reason == "tool_calls"
    assert outcome.tool_calls == [
        ToolCall("t1", PREFIX + "get_weather", '{"city":"P"}'),
        ToolCall("t2", PREFIX + "get_time", "{}"),
    ]
    assert json.loads(outcome.tool_calls[0].arguments) == {"city": "P"}
    assert outcome.usage.output_tokens == 9


async def test_without_client_tools_a_tool_use_ends_the_answer_as_text() -> None:
    got, outcome = await run(tool_turn(), client_tools=False)
    assert [d.tool_call for d in got if d.tool_call] == []
    assert outcome.text == "Checking."
    assert outcome.finish_reason == "stop"
    assert outcome.tool_calls == []


async def test_a_call_without_stream_events_comes_whole() -> None:
    messages = [m for m in tool_turn() if not (isinstance(m, StreamEvent) and "tool_use" in json.dumps(m.event))]
    messages = [m for m in messages if not (isinstance(m, StreamEvent) and "input_json" in json.dumps(m.event))]
    got, outcome = await run(messages, client_tools=True)
    calls = [d.tool_call for d in got if d.tool_call]
    assert calls[0] == ToolCallDelta(0, id="t1", name=PREFIX + "get_weather")
    assert calls[1] == ToolCallDelta(0, arguments='{"city":"P"}')
    assert [c.id for c in outcome.tool_calls] == ["t1", "t2"]


async def test_a_retry_after_tool_calls_were_sent_is_an_error() -> None:
    messages = tool_turn()
    with pytest.raises(UpstreamServerError, match="changed after a retry"):
        await run([*messages[:9], messages[0], *messages[9:]], client_tools=True)


# --------------------------------------------------------------------------- strict


def test_strict_tools_have_their_calls_checked_against_the_schema() -> None:
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}  # type: ignore[dict-item]
    tools = request_for(user("hi"), tools=[strict, TIME]).tools
    assert tools is not None and tools == request_for(user("hi"), tools=[WEATHER, TIME]).tools  # same process spec
    check_strict(tools, [ToolCall("t1", PREFIX + "get_weather", '{"city": "Oslo"}')])
    check_strict(tools, [ToolCall("t2", PREFIX + "get_time", '{"anything": 1}')])  # not strict: not checked
    with pytest.raises(UpstreamServerError) as caught:
        check_strict(tools, [ToolCall("t1", PREFIX + "get_weather", '{"town": "Oslo"}')])
    assert caught.value.status_code == 502
    assert "get_weather" in caught.value.message and "'city' is a required property" in caught.value.message
    with pytest.raises(BadRequestError, match="strict must be true or false"):
        request_for(user("hi"), tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}])


async def test_an_answer_cut_by_the_output_limit_mid_call_ends_at_once() -> None:
    """After max_tokens the CLI would ask again by itself: the answer ends there, the cut call unreported."""
    messages = tool_turn()[:8]
    messages += [
        event({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
        event({"type": "message_stop"}),
        event({"type": "message_start", "message": {"model": "m", "usage": {}}}),  # never read
    ]
    got, outcome = await run(messages, client_tools=True)
    assert outcome.finish_reason == "length"
    assert outcome.tool_calls == []
    assert [d.tool_call.id for d in got if d.tool_call and d.tool_call.id] == ["t1"]
