"""What the provider relies on in the Claude Code CLI, and what it found the CLI cannot do.

None of this is documented behaviour of the CLI, so each piece is pinned here against the
bundled CLI (``_compat.TESTED_CLI_VERSIONS`` lists the versions this file passed on, and the
provider refuses others). A test fails loudly when a new CLI version changes what the provider
depends on, or starts to allow what the provider works around: both are the cue to revisit
``docs/architecture.md``.

Every test starts a real CLI through :class:`~litellm_claude_code._process.CliProcess` (the
provider's own launch path) against the fake upstream and reads what the upstream received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.types import AssistantMessage, ResultMessage, SystemMessage, ToolUseBlock, UserMessage
from litellm_claude_code._cli import Binding, Launch, install_launcher, resolve_cli, working_directory
from litellm_claude_code._compat import TESTED_CLI_VERSIONS, bundled_cli_version
from litellm_claude_code._credentials import resolve_credential
from litellm_claude_code._errors import CLIFailedError
from litellm_claude_code._messages import Conversation, Turn, convert_messages
from litellm_claude_code._process import NO_GUARDED_SWITCH, CliProcess, Plan
from litellm_claude_code._reasoning import Reasoning
from litellm_claude_code._settings import Settings
from litellm_claude_code._tools import PREFIX, ToolSet, mcp_server, to_wire, tool_request
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.upstream import dialogue, texts

pytestmark = pytest.mark.integration

_COUNT = itertools.count()


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


@pytest.fixture
async def start(tmp_path: Path, fake: FakeAnthropicServer) -> AsyncIterator[Any]:
    """``await start(history=(), model="sonnet")``: a started CLI process holding ``history``, closed afterwards."""
    settings = Settings(state_dir=tmp_path, cli_max_retries=0)
    started: list[CliProcess] = []

    async def factory(history: Sequence[Turn] = (), model: str = "sonnet", tools: ToolSet | None = None) -> CliProcess:
        launch = Launch(resolve_credential(), base_url=fake.base_url)
        process = CliProcess(
            settings,
            launch,
            Binding(model, tools=tools),
            cwd=working_directory(tmp_path),
            launcher=install_launcher(tmp_path),
            cli=resolve_cli(settings),
        )
        started.append(process)
        await process.start()
        if history:
            await process.prepare(Plan(0, tuple(history), False), process.binding)
        return process

    try:
        yield factory
    finally:
        for process in started:
            await process.close()


async def turn(process: CliProcess, conversation: Conversation) -> None:
    """Run the conversation's last turn to the CLI's result and record it as held."""
    async for _ in process.run(conversation):
        pass
    assert process.completed


def last_request(fake: FakeAnthropicServer) -> dict[str, Any]:
    return fake.messages_requests()[-1]


def conversation(*messages: str | tuple[str, str], system: str | None = None) -> Conversation:
    items: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for index, message in enumerate(messages):
        role, content = message if isinstance(message, tuple) else ("user" if index % 2 == 0 else "assistant", message)
        items.append({"role": role, "content": content})
    return convert_messages(items)


def test_the_bundled_cli_is_a_tested_version() -> None:
    assert bundled_cli_version() in TESTED_CLI_VERSIONS


# --------------------------------------------------------------------------- what the provider relies on


async def test_earlier_turns_written_to_a_running_process_are_real_turns(start: Any, fake: FakeAnthropicServer) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}
    conv = convert_messages(
        [
            {"role": "user", "content": [text("look at this"), image]},
            {"role": "assistant", "content": "a red dot"},
            {"role": "user", "content": "and now?"},
        ]
    )
    process = await start(history=conv.history)
    await turn(process, conv)
    assert dialogue(last_request(fake)) == [
        (
            "user",
            [
                text("look at this"),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            ],
        ),
        ("assistant", [text("a red dot")]),
        ("user", [text("and now?")]),
    ]


async def test_a_cut_names_the_uuids_the_provider_gave_and_the_turn_before(
    start: Any, fake: FakeAnthropicServer
) -> None:
    conv = conversation("q0", "a0", "q1")
    process = await start(history=conv.history)
    written = [held.uuid for held in process.held]
    await turn(process, conv)
    assert process.commit(Turn("assistant", (text("whatever the fake said"),)))
    # Cut back into the written part (uuids the provider wrote), verified by prepare().
    await process.prepare(Plan(keep=2, append=(), rewind=True), process.binding)
    assert [held.uuid for held in process.held] == written
    await turn(process, conversation("q0", "a0", "q1 rephrased"))
    assert texts(last_request(fake)) == [("user", "q0"), ("assistant", "a0"), ("user", "q1 rephrased")]


async def test_a_user_turn_keeps_the_uuid_given_on_stdin(start: Any) -> None:
    process = await start()
    await turn(process, conversation("q0"))
    assert process.commit(Turn("assistant", (text("x"),)))
    given = process.held[0].uuid  # the uuid the provider wrote with the user turn
    answer = await process.control(
        {"subtype": "rewind_conversation", "target_message_uuid": given, "last_seen_user_message_uuid": given}
    )
    assert answer["rewound"] is True and answer["targetMessageUuid"] == given
    assert answer["precedingAssistantUuid"] is None


async def test_model_system_prompt_and_output_limit_bind_on_an_empty_conversation(
    start: Any, fake: FakeAnthropicServer
) -> None:
    process = await start()
    await process.prepare(Plan(0, (), False), Binding("haiku", "LATE SYSTEM", 77))
    await turn(process, conversation("q0", system="LATE SYSTEM"))
    request = last_request(fake)
    assert "haiku" in request["model"] and request["body"]["max_tokens"] == 77
    assert request["system_text"].endswith("LATE SYSTEM")
    assert texts(request) == [("user", "q0")]
    # The limit can be lifted again, back to the CLI's own.
    await process.prepare(Plan(2, (), False), Binding("haiku", "LATE SYSTEM", None))
    await turn(process, conversation("q0", "x", "q1", system="LATE SYSTEM"))
    assert last_request(fake)["body"]["max_tokens"] > 77


@pytest.mark.parametrize("model", ["sonnet", "opus"])
async def test_a_system_prompt_changes_within_a_conversation_without_a_trace(
    start: Any, fake: FakeAnthropicServer, model: str
) -> None:
    """set_model with the model the session runs, ``only_if_model_is_current`` and a system prompt:
    the prompt changes, nothing else (``haiku``: see the tests below)."""
    process = await start(model=model)
    await process.prepare(Plan(0, (), False), Binding(model, "FIRST SYSTEM"))
    await turn(process, conversation("q0", system="FIRST SYSTEM"))
    assert last_request(fake)["system_text"].endswith("FIRST SYSTEM")
    assert process.commit(Turn("assistant", (text("x"),)))
    await process.prepare(Plan(2, (), False), Binding(model, "SECOND SYSTEM"))
    await turn(process, conversation("q0", "x", "q1", system="SECOND SYSTEM"))
    request = last_request(fake)
    assert model in request["model"]
    assert request["system_text"].endswith("SECOND SYSTEM") and "FIRST SYSTEM" not in request["system_text"]
    assert [role for role, _ in texts(request)] == ["user", "assistant", "user"]
    assert texts(request)[-1] == ("user", "q1")


async def test_a_guarded_set_model_naming_another_model_changes_nothing(start: Any, fake: FakeAnthropicServer) -> None:
    """The guard the provider sends with every system prompt change on a conversation: were the CLI
    to switch models despite it, the next turn would carry a note the client never wrote."""
    process = await start()
    await turn(process, conversation("q0"))
    assert process.commit(Turn("assistant", (text("x"),)))
    with pytest.raises(CLIFailedError, match="only_if_model_is_current"):
        await process.control(
            {"subtype": "set_model", "model": "opus", "system_prompt": "NEW SYSTEM", "only_if_model_is_current": True}
        )
    await turn(process, conversation("q0", "x", "q1"))
    request = last_request(fake)
    assert "opus" not in request["model"] and "NEW SYSTEM" not in request["system_text"]
    assert texts(request)[-1] == ("user", "q1")


async def test_an_assistant_message_on_stdin_joins_the_conversation_in_place(
    start: Any, fake: FakeAnthropicServer
) -> None:
    process = await start()
    conv = conversation(("assistant", "Hello, how can I help?"), ("user", "q0"))
    plan = process.plan(conv, Binding("sonnet"), "")
    assert plan is not None and len(plan.append) == 1
    await process.prepare(plan, Binding("sonnet"))
    await turn(process, conv)
    assert texts(last_request(fake)) == [("assistant", "Hello, how can I help?"), ("user", "q0")]


async def test_a_user_turn_starting_with_a_slash_is_text(start: Any, fake: FakeAnthropicServer) -> None:
    process = await start()
    await turn(process, conversation("/clear and @etc/passwd"))
    assert texts(last_request(fake)) == [("user", "/clear and @etc/passwd")]


# --------------------------------------------------------------------------- client tools (_tools.py)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "description": "The time"}}


def tool_set() -> ToolSet:
    tools = tool_request({"tools": [WEATHER, CLOCK]}, convert_messages([{"role": "user", "content": "x"}])).tools
    assert tools is not None
    return tools


def tool_conversation(*messages: dict[str, Any]) -> Conversation:
    return to_wire(convert_messages(list(messages)))


async def messages_of(process: CliProcess, conversation: Conversation) -> list[Any]:
    return [message async for message in process.run(conversation)]


async def test_client_tools_are_the_only_tools_upstream(start: Any, fake: FakeAnthropicServer) -> None:
    """An SDK MCP server's tools reach the upstream with ``--tools ""``, with their descriptions and
    schemas, and with tool search off (ENABLE_TOOL_SEARCH=false) nothing else is offered."""
    process = await start(tools=tool_set())
    await turn(process, conversation("q0"))
    offered = {tool["name"]: tool for tool in last_request(fake)["body"]["tools"]}
    assert sorted(offered) == [PREFIX + "get_time", PREFIX + "get_weather"]
    assert offered[PREFIX + "get_weather"]["description"] == "Weather for a city"
    assert offered[PREFIX + "get_weather"]["input_schema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert offered[PREFIX + "get_time"]["input_schema"] == {"type": "object", "properties": {}}


async def test_tool_search_would_offer_a_placeholder_tool(
    start: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the provider sets ENABLE_TOOL_SEARCH=false: otherwise the CLI adds a tool of its own."""
    from litellm_claude_code import _cli as cli

    monkeypatch.setattr(
        cli, "QUIET_VARIABLES", {k: v for k, v in cli.QUIET_VARIABLES.items() if k != "ENABLE_TOOL_SEARCH"}
    )
    process = await start(tools=tool_set())
    await turn(process, conversation("q0"))
    assert "DeferredToolPlaceholder" in last_request(fake)["tool_names"]


async def test_a_deferred_call_ends_the_turn_unrun_and_the_results_are_the_next_turn(
    start: Any, fake: FakeAnthropicServer
) -> None:
    """The PreToolUse hook's ``defer`` for every call: the turn ends with a success result
    (stop_reason ``tool_deferred``), nothing runs, nothing more is asked upstream; the tool
    results written as the next user turn answer the calls the process holds."""
    calls = [{"name": "get_weather", "input": {"city": "Paris"}}, {"name": "get_time"}]
    question = {"role": "user", "content": "weather " + directive(text="Checking.", tool_use=calls)}
    process = await start(tools=tool_set())
    first = await messages_of(process, tool_conversation(question))
    result = first[-1]
    assert isinstance(result, ResultMessage) and not result.is_error
    assert (result.subtype, result.stop_reason, result.num_turns) == ("success", "tool_deferred", 1)
    assert result.deferred_tool_use is not None and result.deferred_tool_use.name == PREFIX + "get_time"
    assert not any(isinstance(m, UserMessage) for m in first), "the CLI wrote a tool result of its own"
    assert len(fake.messages_requests()) == 1
    ids = [
        block.id
        for m in first
        if isinstance(m, AssistantMessage)
        for block in m.content
        if isinstance(block, ToolUseBlock)
    ]
    assert len(ids) == 2
    answer = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": ids[0], "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": ids[1], "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    }
    results = [{"role": "tool", "tool_call_id": i, "content": f"result {n}"} for n, i in enumerate(ids)]
    await turn(process, tool_conversation(question, answer, *results))
    assert dialogue(last_request(fake))[1:] == [
        (
            "assistant",
            [
                text("Checking."),
                {"type": "tool_use", "id": ids[0], "name": PREFIX + "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": ids[1], "name": PREFIX + "get_time", "input": {}},
            ],
        ),
        (
            "user",
            [
                {"type": "tool_result", "tool_use_id": ids[0], "content": "result 0"},
                {"type": "tool_result", "tool_use_id": ids[1], "content": "result 1"},
            ],
        ),
    ]


async def test_without_the_hook_a_call_is_denied_not_run_and_nothing_more_is_asked(
    start: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback if the hook ever stopped deferring: no permission prompt can hang (the CLI
    denies in its default mode) and max_turns=1 stops the follow-up request."""
    from litellm_claude_code import _cli as cli

    monkeypatch.setattr(cli, "hooks", lambda: None)
    process = await start(tools=tool_set())
    got = await messages_of(
        process, tool_conversation({"role": "user", "content": directive(tool_use={"name": "get_time"})})
    )
    denied = [m for m in got if isinstance(m, SystemMessage) and m.subtype == "permission_denied"]
    assert len(denied) == 1
    assert isinstance(got[-1], ResultMessage) and got[-1].subtype == "error_max_turns"
    assert len(fake.messages_requests()) == 1


async def test_a_process_keeps_offering_tools_its_mcp_server_no_longer_lists(
    start: Any, fake: FakeAnthropicServer
) -> None:
    """Why the tool set is fixed when a process starts: a server removed (``mcp_set_servers``)
    and added again listing other tools leaves the old tools offered too (``mcp_toggle`` off and
    on does the same, and ``mcp_reconnect`` refuses SDK servers). Re-listing adds tools, never
    removes one, so a process cannot be rebound from one tool set to another."""
    from claude_agent_sdk._internal.sdk_mcp_bridge import SdkMcpBridge

    process = await start(tools=tool_set())
    await turn(process, conversation("q0"))
    assert process.commit(Turn("assistant", (text("x"),)))
    assert (await process.control({"subtype": "mcp_set_servers", "servers": {}})).get("removed") == ["client"]
    clock_only = tool_request({"tools": [CLOCK]}, convert_messages([{"role": "user", "content": "x"}])).tools
    assert clock_only is not None
    query: Any = process._client._query
    query._sdk_mcp_bridges["client"] = SdkMcpBridge("client", mcp_server(clock_only)["instance"])
    answer = await process.control(
        {"subtype": "mcp_set_servers", "servers": {"client": {"type": "sdk", "name": "client"}}}
    )
    assert answer.get("added") == ["client"]
    await turn(process, conversation("q0", "x", "q1"))
    assert sorted(last_request(fake)["tool_names"]) == [PREFIX + "get_time", PREFIX + "get_weather"]


async def test_a_haiku_conversation_takes_a_new_system_prompt_by_being_written_again(
    start: Any, fake: FakeAnthropicServer
) -> None:
    """What the provider does where the guard is refused (:data:`NO_GUARDED_SWITCH`): the plan cuts
    the conversation back to nothing, the system prompt is set on the empty conversation, and the
    earlier turns are written again; the upstream sees the same turns, the new prompt, no note."""
    process = await start(model="haiku")
    await process.prepare(Plan(0, (), False), Binding("haiku", "FIRST SYSTEM"))
    await turn(process, conversation("q0", system="FIRST SYSTEM"))
    assert process.commit(Turn("assistant", (text("x"),)))
    conv = conversation("q0", "x", "q1", system="SECOND SYSTEM")
    plan = process.plan(conv, Binding("haiku", "SECOND SYSTEM"), "")
    assert plan is not None and plan.keep == 0 and plan.rewind and len(plan.append) == 2
    await process.prepare(plan, Binding("haiku", "SECOND SYSTEM"))
    await turn(process, conv)
    request = last_request(fake)
    assert "haiku" in request["model"]
    assert request["system_text"].endswith("SECOND SYSTEM") and "FIRST SYSTEM" not in request["system_text"]
    assert texts(request) == [("user", "q0"), ("assistant", "x"), ("user", "q1")]


# --------------------------------------------------------------------------- allowed by the CLI, unused


async def test_a_credential_and_an_upstream_given_late_are_used_by_the_next_request(
    start: Any, fake: FakeAnthropicServer
) -> None:
    """The CLI takes a new ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` from ``apply_flag_settings``.
    The provider still binds both at spawn, by choice (docs/architecture.md, "What is bound late"):
    a process, its conversation and its HOME never serve two accounts. If this fails, fix that table."""
    process = await start()
    await turn(process, conversation("q0"))
    first_key = last_request(fake)["headers"].get("x-api-key")
    await process.control(
        {"subtype": "apply_flag_settings", "settings": {"env": {"ANTHROPIC_API_KEY": "sk-ant-late-key"}}}
    )
    await turn(process, conversation("q1"))
    assert last_request(fake)["headers"].get("x-api-key") == "sk-ant-late-key" != first_key
    with FakeAnthropicServer() as other:
        await process.control(
            {"subtype": "apply_flag_settings", "settings": {"env": {"ANTHROPIC_BASE_URL": other.base_url}}}
        )
        await turn(process, conversation("q2"))
        assert [texts(r)[-1] for r in other.messages_requests()] == [("user", "q2")]


# --------------------------------------------------------------------------- what the CLI cannot do (yet)


async def test_turn_handoff_is_refused_outside_a_managed_cloud_worker(start: Any) -> None:
    process = await start()
    with pytest.raises(CLIFailedError, match="turn_handoff_disabled"):
        await process.control(
            {
                "subtype": "turn_handoff",
                "messages": [
                    {"type": "user", "uuid": str(uuid.uuid4()), "message": {"role": "user", "content": "q"}},
                    {
                        "type": "assistant",
                        "uuid": str(uuid.uuid4()),
                        "message": {"id": "msg_1", "role": "assistant", "content": [text("a")]},
                    },
                ],
                "tool_use_ids": [],
            }
        )


async def test_a_model_switch_within_a_conversation_adds_a_note_to_the_next_turn(
    start: Any, fake: FakeAnthropicServer
) -> None:
    """Why the provider never switches the model of a conversation it keeps."""
    process = await start()
    await turn(process, conversation("q0"))
    await process.control({"subtype": "set_model", "model": "haiku"})
    await turn(process, conversation("q0", "x", "q1"))
    last_user = texts(last_request(fake))[-1][1]
    assert last_user != "q1", "the CLI no longer notes a model switch in the next turn: it may be bound late"
    assert "/model" in last_user


@pytest.mark.parametrize("model", sorted(NO_GUARDED_SWITCH - {"opusplan[1m]"}))
async def test_a_haiku_session_refuses_every_guarded_set_model(
    start: Any, fake: FakeAnthropicServer, model: str
) -> None:
    """Whatever model is named, alias or resolved id: the CLI maps these settings to another model
    internally and cannot confirm the one named. When this starts to pass, the provider may drop
    :data:`NO_GUARDED_SWITCH` and change their system prompt in place."""
    process = await start(model=model)
    await turn(process, conversation("q0"))
    resolved = last_request(fake)["model"]
    for name in (model, resolved):
        with pytest.raises(CLIFailedError, match="cannot confirm that it runs the model named"):
            await process.control(
                {"subtype": "set_model", "model": name, "system_prompt": "NEW", "only_if_model_is_current": True}
            )


async def test_setting_a_full_model_id_sends_a_probe_upstream(start: Any, fake: FakeAnthropicServer) -> None:
    """Why a haiku session is not switched to its resolved id to make the guard work: set_model with
    a full id validates it with a one-token request upstream (an alias does not)."""
    process = await start(model="haiku")
    answer = await process.control({"subtype": "set_model", "model": "haiku"})
    assert fake.messages_requests() == []
    await process.control({"subtype": "set_model", "model": answer["model"]})
    for _ in range(50):
        if fake.messages_requests():
            break
        await asyncio.sleep(0.1)
    (probe,) = fake.messages_requests()
    assert probe["body"]["max_tokens"] == 1 and probe["model"] == answer["model"]


async def test_a_system_prompt_cannot_be_taken_back(start: Any) -> None:
    process = await start()
    await process.control({"subtype": "set_model", "model": "sonnet", "system_prompt": "some prompt"})
    with pytest.raises(CLIFailedError):
        await process.control({"subtype": "set_model", "model": "sonnet", "system_prompt": ""})


async def test_an_earlier_user_turn_is_recorded_without_an_upstream_request(
    start: Any, fake: FakeAnthropicServer
) -> None:
    process = await start(history=conversation("/clear first", "a0", "q1").history)
    assert fake.messages_requests() == []
    assert [held.role for held in process.held] == ["user", "assistant"]
    await turn(process, conversation("/clear first", "a0", "q1"))
    assert texts(last_request(fake)) == [("user", "/clear first"), ("assistant", "a0"), ("user", "q1")]


BUDGETED_MODEL = "claude-sonnet-4-5-20250929"  # a model with budgeted (not adaptive) thinking


async def test_effort_binds_late_and_adaptive_thinking_stays_on(start: Any, fake: FakeAnthropicServer) -> None:
    """reasoning_effort on today's models: ``apply_flag_settings`` ``effortLevel`` (null: the CLI's default)."""
    process = await start()
    await process.prepare(Plan(0, (), False), Binding("sonnet", reasoning=Reasoning("high", 4096)))
    await turn(process, conversation("q0"))
    body = last_request(fake)["body"]
    assert body["output_config"]["effort"] == "high" and body["thinking"]["type"] == "adaptive"
    # A budget of 0 does not turn adaptive thinking off: the CLI has no way to, on these models.
    await process.prepare(Plan(2, (), False), Binding("sonnet", reasoning=Reasoning("low", 0)))
    await turn(process, conversation("q0", "x", "q1"))
    body = last_request(fake)["body"]
    assert body["output_config"]["effort"] == "low"
    assert body["thinking"]["type"] == "adaptive", "adaptive thinking can be turned off now: honour `none`"
    await process.prepare(Plan(4, (), False), Binding("sonnet", reasoning=Reasoning()))
    await turn(process, conversation("q0", "x", "q1", "y", "q2"))
    assert last_request(fake)["body"]["output_config"]["effort"] == "medium"


async def test_a_thinking_budget_binds_late_on_a_budgeted_model(start: Any, fake: FakeAnthropicServer) -> None:
    """``set_max_thinking_tokens``: N is the budget, 0 turns thinking off, null gives the CLI's default."""
    process = await start(model=BUDGETED_MODEL)
    await process.prepare(Plan(0, (), False), Binding(BUDGETED_MODEL, reasoning=Reasoning("low", 1024)))
    await turn(process, conversation("q0"))
    assert last_request(fake)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024, "display": "updates"}
    await process.prepare(Plan(2, (), False), Binding(BUDGETED_MODEL, reasoning=Reasoning("low", 0)))
    await turn(process, conversation("q0", "x", "q1"))
    assert last_request(fake)["body"]["thinking"] == {"type": "disabled"}
    await process.prepare(Plan(4, (), False), Binding(BUDGETED_MODEL, reasoning=Reasoning()))
    await turn(process, conversation("q0", "x", "q1", "y", "q2"))
    body = last_request(fake)["body"]
    assert body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"] == body["max_tokens"] - 1


async def test_subscription_windows_arrive_as_rate_limit_events(
    start: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI reads the upstream's ``anthropic-ratelimit-unified-*`` headers (subscription token)."""
    from claude_agent_sdk.types import RateLimitEvent

    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-compat")
    process = await start()
    limit = {"window": "seven_day", "utilization": 0.4, "status": "allowed"}
    events = [
        m
        async for m in process.run(conversation("q " + directive(text="ok", rate_limit=limit)))
        if isinstance(m, RateLimitEvent)
    ]
    (event,) = events
    info = event.rate_limit_info
    assert info.status == "allowed" and info.rate_limit_type == "seven_day" and info.resets_at
    assert info.raw["unifiedWindows"]["seven_day"]["utilization"] == 0.4


async def test_a_json_schema_in_initialize_adds_a_structured_output_tool_even_without_tools(
    tmp_path: Path, fake: FakeAnthropicServer
) -> None:
    """What :mod:`.structured` relies on: the schema given in the ``initialize`` request.

    The CLI takes ``jsonSchema`` in ``initialize`` (as well as ``--json-schema``) and, with
    ``--tools ""``, offers Claude a ``StructuredOutput`` tool with the schema as its input
    schema, and answers with a success once Claude calls it. The SDK still sends initialize
    through ``Transport.write`` (else the schema would be missing upstream), and the schema is
    not on the process's command line.
    """
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    settings = Settings(state_dir=tmp_path, cli_max_retries=0)
    process = CliProcess(
        settings,
        Launch(resolve_credential(), base_url=fake.base_url),
        Binding("sonnet", schema=json.dumps(schema)),
        cwd=working_directory(tmp_path),
        launcher=install_launcher(tmp_path),
        cli=resolve_cli(settings),
    )
    try:
        await process.start()
        assert process.pid is not None
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert "json-schema" not in cmdline and '"integer"' not in cmdline
        fake.push({"text": "", "tool_use": {"name": "StructuredOutput", "input": {"a": 1}}})
        results = [m async for m in process.run(conversation("q0")) if isinstance(m, ResultMessage)]
        tools = {t["name"]: t for t in last_request(fake)["body"]["tools"]}
        assert tools["StructuredOutput"]["input_schema"] == schema
        assert results[-1].subtype == "success" and results[-1].structured_output == {"a": 1}
    finally:
        await process.close()


def blocks(body: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The messages of a request as the prompt cache sees them: blocks, without ``cache_control``."""
    out = []
    for message in body["messages"]:
        content = message["content"]
        items = [text(content)] if isinstance(content, str) else content
        out.append((message["role"], [{k: v for k, v in b.items() if k != "cache_control"} for b in items]))
    return out


async def test_a_written_history_is_a_stable_prompt_prefix(start: Any, fake: FakeAnthropicServer) -> None:
    """The next turn's prompt starts with this turn's, so from the turn after a rebuild on the
    prompt cache is read again. (The rebuilt turn itself differs from the prompt the conversation
    had grown to elsewhere: the CLI puts its environment note after the first user turn it sends
    upstream, not after the first it was given. That turn writes the cache anew.)"""
    process = await start(history=conversation("q0", "a0", "q1").history)
    await turn(process, conversation("q0", "a0", "q1"))
    assert process.commit(Turn("assistant", (text("a1"),)))
    first = blocks(last_request(fake)["body"])
    await turn(process, conversation("q0", "a0", "q1", "a1", "q2"))
    second = blocks(last_request(fake)["body"])
    assert second[: len(first)] == first
    assert [role for role, _ in second[len(first) :]] == ["assistant", "user"]
    environment = [i for i, (role, b) in enumerate(first) if role == "system" and b and "Environment" in b[0]["text"]]
    assert environment == [len(first) - 1], "the CLI moved its environment note: review the cache figures"
