"""Client tools: OpenAI ``tools`` offered to Claude, and Claude's calls handed back, never run.

The CLI runs with none of its own tools (``--tools ""``). A request's function tools are given
to its CLI process as the tools of one in-process MCP server (the SDK's ``sdk`` server type):
the CLI lists them and sends them upstream as Claude's only tools, named
``mcp__client__<name>`` (the prefix is the CLI's, stripped again on the way back), with the
client's description and JSON Schema unchanged. When Claude calls one, a ``PreToolUse`` hook
answers ``defer`` for every call: the CLI ends the turn with the calls unexecuted and asks
nothing more upstream, so the client gets them as ``tool_calls`` and the process keeps the turn.
The client's next request (the tool results) is then the next user turn of that process.

A CLI process lists its MCP tools once: re-listing after ``mcp_set_servers`` or ``mcp_toggle``
adds tools but never removes one (CLI 2.1.332), so the tool set is fixed when a process starts,
and a process only serves requests with exactly its tool set (:class:`ToolSet` is part of the
:class:`~.cli.Binding` the pool matches). docs/architecture.md has the evidence.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from claude_agent_sdk import HookMatcher
from claude_agent_sdk.types import HookEvent, McpSdkServerConfig, SyncHookJSONOutput
from mcp.server.lowlevel import Server
from mcp.types import CallToolResult, ListToolsResult, TextContent, Tool

from ._errors import BadRequestError, UpstreamServerError
from ._messages import Block, Conversation, Turn
from ._settings import Limits
from ._structured import canonical, deadline, prepare, verdict

SERVER = "client"
"""The MCP server name the client's tools are listed under."""
PREFIX = f"mcp__{SERVER}__"
"""What the CLI puts before each tool name of that server."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHOICES = ("none", "auto", "required")


@dataclass(frozen=True, slots=True)
class ClientTool:
    """One function tool as the client defined it (the schema kept as canonical JSON)."""

    name: str
    description: str
    schema_json: str
    strict: bool = field(default=False, compare=False)
    """``strict: true``: every call's arguments must validate against the schema (checked here)."""

    @property
    def schema(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.schema_json)
        return value


@dataclass(frozen=True, slots=True)
class ToolSet:
    """The tools of one request, in the client's order: part of what a CLI process is started for."""

    tools: tuple[ClientTool, ...]

    @property
    def key(self) -> str:
        """Identity of the set (names, descriptions, schemas): equal keys, interchangeable processes."""
        raw = json.dumps([[t.name, t.description, t.schema_json] for t in self.tools], separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """What a request asks about tools: the set Claude is offered (None: none at all), and how.

    ``choice`` is ``auto``, ``none``, ``required`` (a call of any tool) or ``named`` (a call of
    ``name``, then the only tool offered). ``single``: ``parallel_tool_calls: false``, one call
    handed back. ``as_text``: no tools are offered but the history holds tool calls, which the
    conversation gets as text (:func:`to_text`).
    """

    tools: ToolSet | None
    choice: str = "auto"
    name: str | None = None
    single: bool = False
    as_text: bool = False

    @property
    def forced(self) -> bool:
        """``tool_choice`` asks for a call: the answer must hold one (emulated by the engine)."""
        return self.choice in ("required", "named")


def wire_name(name: str) -> str:
    """The name Claude sees (and calls) for the client's tool ``name``."""
    return PREFIX + name


def client_name(name: str) -> str:
    """The client's name for a tool Claude called (the CLI's prefix stripped)."""
    return name[len(PREFIX) :] if name.startswith(PREFIX) else name


# --------------------------------------------------------------------------- the request


def _tool(item: Any, position: int, limits: Limits) -> ClientTool:
    where = f"tools[{position}]"
    if not isinstance(item, Mapping) or item.get("type", "function") != "function":
        kind = item.get("type") if isinstance(item, Mapping) else type(item).__name__
        raise BadRequestError(
            f"{where}: only tools of type 'function' are supported (got {kind!r}); Claude Code's own tools "
            "(web search, code execution) are not offered through this gateway."
        )
    function = item.get("function")
    if not isinstance(function, Mapping):
        raise BadRequestError(f"{where}.function must be an object with a name.")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequestError(
            f"{where}.function.name must be 1 to 64 letters, digits, underscores or hyphens (got {name!r})."
        )
    description = function.get("description") or ""
    if not isinstance(description, str):
        raise BadRequestError(f"{where}.function.description must be a string.")
    schema = function.get("parameters")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise BadRequestError(f"{where}.function.parameters must be a JSON Schema of type 'object'.")
    strict = function.get("strict")
    if strict not in (None, False, True):
        raise BadRequestError(f"{where}.function.strict must be true or false.")
    schema_json = canonical(f"{where}.function.parameters", {"type": "object", **schema})
    size = len(schema_json.encode())
    if size > limits.max_tool_schema_bytes:
        raise BadRequestError(
            f"{where}.function.parameters is {size:,} bytes of JSON, more than the {limits.max_tool_schema_bytes:,} "
            "this gateway accepts for one tool (LITELLM_CLAUDE_CODE_MAX_TOOL_SCHEMA_BYTES)."
        )
    if strict is True:
        # Only a strict tool's schema is checked against (check_strict); refused now if it cannot be.
        prepare(f"{where}.function.parameters", schema_json)
    return ClientTool(name, description, schema_json, strict is True)


def _choice(value: Any) -> tuple[str, str | None]:
    """``tool_choice`` in OpenAI's or Anthropic's form (LiteLLM passes either) as (choice, tool name).

    ``required`` and Anthropic's ``any`` ask for a call of any tool; a named function (OpenAI's
    ``{"type": "function", "function": {"name": ...}}``, the Responses API's ``{"type":
    "function", "name": ...}``, Anthropic's ``{"type": "tool", "name": ...}``) for a call of that one.
    """
    if value is None or value == "auto":
        return "auto", None
    if value == "none":
        return "none", None
    if value == "required":
        return "required", None
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in ("auto", "none"):
            return str(kind), None
        if kind == "any":
            return "required", None
        if kind in ("function", "tool"):
            function = value.get("function")
            name = function.get("name") if isinstance(function, Mapping) else value.get("name")
            if isinstance(name, str) and name:
                return "named", name
            raise BadRequestError(f"tool_choice {json.dumps(value)} names no function.")
    raise BadRequestError(f"tool_choice must be one of {', '.join(_CHOICES)} or a named function (got {value!r}).")


def _single(params: Mapping[str, Any]) -> bool:
    """``parallel_tool_calls: false``, or Anthropic's ``disable_parallel_tool_use`` in ``tool_choice``."""
    choice = params.get("tool_choice")
    disabled = isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use") is True
    return params.get("parallel_tool_calls") is False or disabled


def _has_tool_blocks(conversation: Conversation) -> Turn | None:
    for turn in conversation.turns:
        if any(block.get("type") in ("tool_use", "tool_result") for block in turn.content):
            return turn
    return None


def tool_request(params: Mapping[str, Any], conversation: Conversation, limits: Limits | None = None) -> ToolRequest:
    """Check a request's ``tools``, ``tool_choice``, ``parallel_tool_calls`` and the deprecated
    ``functions``/``function_call``; every problem is a 400 that says what to send instead.

    ``limits``: how many tools and how large a schema (default: as the environment sets them).
    """
    for old in ("functions", "function_call"):
        if params.get(old):
            raise BadRequestError(
                f"{old} is the deprecated form of tool calling and is not accepted; send the functions as "
                "tools (type 'function') and use tool_choice."
            )
    raw = params.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise BadRequestError("tools must be a list of {type: 'function', function: {...}} objects.")
    limits = limits if limits is not None else Limits.from_env()
    if raw is not None and len(raw) > limits.max_tools:
        raise BadRequestError(
            f"tools: {len(raw)} tools, more than the {limits.max_tools} this gateway accepts in one request "
            "(LITELLM_CLAUDE_CODE_MAX_TOOLS)."
        )
    tools = [_tool(item, position, limits) for position, item in enumerate(raw or [])]
    names = [tool.name for tool in tools]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadRequestError(f"tools: each function needs its own name; repeated: {', '.join(duplicates)}.")
    choice, name = _choice(params.get("tool_choice"))
    single = _single(params)
    with_tools = _has_tool_blocks(conversation) is not None
    if choice in ("required", "named") and not tools:
        raise BadRequestError(f"tool_choice {choice!r} asks for a tool call, but the request has no tools.")
    if not tools or choice == "none":
        # Claude is offered no tools, so it calls none; earlier calls reach it as text (to_text).
        return ToolRequest(None, choice, as_text=with_tools)
    if choice == "named":
        named = [tool for tool in tools if tool.name == name]
        if not named:
            raise BadRequestError(
                f"tool_choice names {name!r}, which is not among the request's tools ({', '.join(names)})."
            )
        # Claude is offered only that tool: the call it must make is the only one it can make.
        return ToolRequest(ToolSet((named[0],)), choice, name, single)
    return ToolRequest(ToolSet(tuple(tools)), choice, None, single)


# --------------------------------------------------------------------------- the conversation


def _wire_block(block: Block) -> Block:
    if block.get("type") == "tool_use":
        return {**block, "name": wire_name(str(block["name"]))}
    return block


def to_wire(conversation: Conversation) -> Conversation:
    """The conversation as the CLI holds it: each earlier tool call named as Claude saw it."""
    turns = tuple(replace(turn, content=tuple(_wire_block(b) for b in turn.content)) for turn in conversation.turns)
    return Conversation(conversation.system, turns)


def _text_block(block: Block) -> Block:
    kind = block.get("type")
    if kind == "tool_use":
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False, separators=(",", ":"))
        return {
            "type": "text",
            "text": f"[called the tool {block.get('name')}({arguments}), call id {block.get('id')}]",
        }
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            inner = "".join(str(part.get("text", "")) for part in inner if isinstance(part, Mapping))
        error = " (an error)" if block.get("is_error") else ""
        return {"type": "text", "text": f"[result of call id {block.get('tool_use_id')}{error}: {inner or ''}]"}
    return block


def to_text(conversation: Conversation) -> Conversation:
    """The conversation with its tool calls and results written as text, for a request without tools.

    OpenAI answers a tool result sent back without ``tools`` (the OpenAI cookbook's follow-up
    does this); Claude reads ``tool_use`` and ``tool_result`` blocks only with tool definitions,
    and the CLI offers none here. So each call becomes a text line of the assistant turn
    (``[called the tool get_weather({"city":"Paris"}), call id call_1]``) and each result one of
    the user turn (``[result of call id call_1: 18 C]``): Claude reads what was called and what
    came back, and can call nothing in this request.
    """
    turns = tuple(replace(turn, content=tuple(_text_block(b) for b in turn.content)) for turn in conversation.turns)
    return Conversation(conversation.system, turns)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call Claude made, as the CLI named it; ``arguments`` is the JSON text Claude streamed."""

    id: str
    name: str
    arguments: str

    def input(self) -> dict[str, Any]:
        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def check_strict(tools: ToolSet | None, calls: list[ToolCall]) -> None:
    """``strict`` emulated: a call of a strict tool whose arguments do not match its schema is an error.

    Claude is given the schema but the CLI has no constrained decoding to offer, so the
    guarantee a client asked for is checked on the answer instead of silently assumed. The
    calls of one answer share one deadline (``_structured.CHECK_SECONDS``), so the event loop is
    held no longer whatever the schemas and the arguments (why: ``_structured``).
    """
    if tools is None:
        return
    strict = {t.name: t for t in tools.tools if t.strict}
    when = deadline()
    for call in calls:
        tool = strict.get(client_name(call.name))
        if tool is None:
            continue
        failure = verdict(call.arguments, tool.schema_json, when, f"the strict schema of {tool.name}")
        if failure is None:
            continue
        if failure.kind in ("json", "mismatch"):
            raise UpstreamServerError(
                f"Claude called {tool.name} with arguments that do not match its strict schema ({failure.detail}); "
                "the call was not handed back. Retry the request, or drop strict to receive such calls."
            )
        raise UpstreamServerError(
            f"Claude's call of {tool.name} could not be checked against its strict schema: {failure.detail}; "
            "the call was not handed back."
        )


def answer_turn(text: str, calls: list[ToolCall]) -> Turn:
    """The assistant turn a client sends back after receiving ``text`` and ``calls``.

    Built the way :func:`.messages.convert_messages` reads the client's echo (content, then
    ``tool_calls`` with their parsed arguments) and named as in :func:`to_wire`, so the process
    that answered recognises the client's next request as the continuation of its conversation.
    """
    blocks: list[Block] = [{"type": "text", "text": text}] if text else []
    blocks += [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input()} for call in calls]
    return Turn("assistant", tuple(blocks))


# --------------------------------------------------------------------------- the CLI side


def mcp_server(tools: ToolSet) -> McpSdkServerConfig:
    """The in-process MCP server that lists the client's tools to one CLI process.

    Listing is all it is for: a call is deferred by :func:`defer_every_call` before it could
    reach the server, and the server would refuse one anyway (nothing runs on the gateway).
    """
    listed = [Tool(name=t.name, description=t.description or None, input_schema=t.schema) for t in tools.tools]

    async def on_list_tools(ctx: Any, params: Any) -> ListToolsResult:
        return ListToolsResult(tools=listed)

    async def on_call_tool(ctx: Any, params: Any) -> CallToolResult:
        return CallToolResult(
            content=[TextContent(type="text", text="Tools are run by the client, never on the gateway.")],
            is_error=True,
        )

    server = Server(SERVER, version="1", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    return McpSdkServerConfig(type="sdk", name=SERVER, instance=server)


async def defer_every_call(hook_input: Any, tool_use_id: str | None, context: Any) -> SyncHookJSONOutput:
    """PreToolUse: defer the call. The CLI ends the turn with it unexecuted and asks nothing more."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "defer",
            "permissionDecisionReason": "the client runs its own tools",
        }
    }


def hooks() -> dict[HookEvent, list[HookMatcher]]:
    return {"PreToolUse": [HookMatcher(matcher=None, hooks=[defer_every_call])]}
