"""What the fake answers: from a chosen scenario and the request body, the plan of one reply
(tokens, tool calls, thinking, usage, stop reason).

Pure functions, no I/O, so the rules that decide a reply are read and tested in one place."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litellm_claude_code.testing._scenario import _TEXT_KEYS, DEFAULT_TOKENS, Scenario, _rate_limit_headers
from litellm_claude_code.testing._structured import TOOL, example, offered_schema


def _message_texts(message: object) -> list[str]:
    """Text pieces of one message: string content or its ``text`` blocks."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        ]
    return []


def _last_user_message(messages: object) -> object:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return message
    return None


def _system_text(system: object) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that keep their whitespace (joined back == text)."""
    tokens = re.findall(r"\s*\S+\s*", text)
    return tokens or ([text] if text else [])


def default_tokens(model: str, count: int) -> list[str]:
    """The deterministic default reply; it names the model so tests see who answered."""
    words = ["fake", "reply", "from", model or "unknown-model"]
    words += [f"tok{i}" for i in range(len(words), count)]
    words = words[:count]
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """A cheap, deterministic stand-in for the tokenizer (about 4 chars per token)."""
    try:
        raw = json.dumps(body.get("messages", []), ensure_ascii=False) + json.dumps(
            body.get("system", ""), ensure_ascii=False
        )
    except (TypeError, ValueError):
        raw = repr(body)
    return max(1, len(raw) // 4)


@dataclass
class _Plan:
    """Everything needed to answer one request, resolved from scenario + body."""

    model: str
    tokens: list[str]
    token_delay: float = 0.0
    delay: float = 0.0
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    error_after: int | None = None
    drop_after: int | None = None
    stream_error: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    thinking: list[str] = field(default_factory=list)


def _offered_name(name: str, tools: object) -> str:
    """The name a scripted call uses: ``name``, or the one offered tool called ``<prefix>__name``.

    Clients such as the Claude Code CLI offer tools under a prefix of their own (an MCP
    server's ``mcp__<server>__``); a test scripts the call by the tool's own name, and the
    call names the tool as it was offered, as Claude would.
    """
    offered = (
        [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
        if isinstance(tools, list)
        else []
    )
    if name in offered:
        return name
    matches = [n for n in offered if n.endswith("__" + name)]
    return matches[0] if len(matches) == 1 else name


def _tool_results_reply(messages: object) -> str | None:
    """When the last user turn holds tool results: a reply quoting each (``name(id) -> content``).

    Lets a test see that Claude received the client's results, paired with its own calls, in order.
    """
    if not isinstance(messages, list):
        return None
    last = _last_user_message(messages)
    content = last.get("content") if isinstance(last, dict) else None
    results = (
        [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )
    if not results:
        return None
    names: dict[str, str] = {}
    for message in messages:
        blocks = message.get("content") if isinstance(message, dict) else None
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                names[str(block.get("id"))] = str(block.get("name"))
    quoted = []
    for block in results:
        inner = block.get("content")
        if isinstance(inner, list):
            inner = "".join(str(p.get("text", "")) for p in inner if isinstance(p, dict))
        call = str(block.get("tool_use_id"))
        quoted.append(f"{names.get(call, '?')}({call}) -> {inner}")
    return "Tool results: " + "; ".join(quoted)


def _merge(default: Scenario, scenario: Scenario) -> Scenario:
    merged = dict(default)
    if any(k in scenario for k in _TEXT_KEYS):
        for key in _TEXT_KEYS:
            merged.pop(key, None)
    merged.update(scenario)
    return {k: v for k, v in merged.items() if v is not None}


def _plan(scenario: Scenario, body: Mapping[str, Any], echo_text: str) -> _Plan:
    model = str(body.get("model") or "")
    if scenario.get("echo"):
        tokens = split_tokens(echo_text)
    elif "text" in scenario:
        tokens = split_tokens(scenario["text"])
    else:
        tokens = default_tokens(model, int(scenario.get("tokens", DEFAULT_TOKENS)))
    raw_tools = scenario.get("tool_use")
    tool_uses: list[dict[str, Any]] = []
    if raw_tools is not None:
        for item in raw_tools if isinstance(raw_tools, list) else [raw_tools]:
            tool_uses.append(
                {
                    "type": "tool_use",
                    "id": item.get("id") or f"toolu_fake{uuid.uuid4().hex[:20]}",
                    "name": _offered_name(item["name"], body.get("tools")),
                    "input": item.get("input", {}),
                }
            )
    structured = offered_schema(body.get("tools"))
    if structured is not None and not tool_uses:
        tool_uses.append(  # what the model does when the CLI asks for structured output (_structured.py)
            {"type": "tool_use", "id": f"toolu_fake{uuid.uuid4().hex[:20]}", "name": TOOL, "input": example(structured)}
        )
    stop_reason = scenario.get("stop_reason") or ("tool_use" if tool_uses else "end_turn")
    stop_sequence = scenario.get("stop_sequence")
    if stop_reason == "stop_sequence" and stop_sequence is None:
        seqs = body.get("stop_sequences")
        stop_sequence = seqs[0] if isinstance(seqs, list) and seqs and isinstance(seqs[0], str) else "STOP"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and 0 < max_tokens < len(tokens):
        # What the real API does when the budget runs out: cut, no tool call.
        tokens, tool_uses, stop_reason, stop_sequence = (
            tokens[:max_tokens],
            [],
            "max_tokens",
            None,
        )
    if stop_reason != "stop_sequence":
        stop_sequence = None
    return _Plan(
        model=model,
        tokens=tokens,
        token_delay=float(scenario.get("token_delay", 0.0)),
        delay=float(scenario.get("delay", 0.0)),
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        tool_uses=tool_uses,
        error=scenario.get("error"),
        error_after=scenario.get("error_after_tokens"),
        drop_after=scenario.get("drop_after_tokens"),
        stream_error={
            "type": "overloaded_error",
            "message": "Overloaded",
            **scenario.get("stream_error", {}),
        },
        usage=dict(scenario.get("usage", {})),
        headers={**_rate_limit_headers(scenario.get("rate_limit") or {}), **scenario.get("headers", {})}
        if scenario.get("rate_limit")
        else dict(scenario.get("headers", {})),
        thinking=_thinking(scenario, body),
    )


def _thinking(scenario: Scenario, body: Mapping[str, Any]) -> list[str]:
    """Thinking blocks answer only a request with thinking on (``enabled`` or ``adaptive``), as the API does."""
    config = body.get("thinking")
    if (
        not scenario.get("thinking")
        or not isinstance(config, dict)
        or config.get("type") not in ("enabled", "adaptive")
    ):
        return []
    return split_tokens(scenario["thinking"])
