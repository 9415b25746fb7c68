"""A protocol-faithful fake of the Anthropic Messages API.

Why this exists: the provider runs the real Claude Code CLI, and the CLI talks to
``$ANTHROPIC_BASE_URL/v1/messages``.  Tests must never reach the real API (cost,
flakiness, secrets), yet they should exercise the real CLI binary end to end.  This
server speaks enough of the Messages API (SSE streaming event order, error JSON,
headers) that the CLI accepts it, and it lets a test *script* each reply: slow
responses, HTTP errors, in-band stream errors, dropped connections, tool calls.

Operators use the same server to smoke-test a deployment without spending tokens::

    python -m litellm_claude_code.testing.fake_anthropic --host 127.0.0.1 --port 8787

How a request picks its behaviour (first match wins):

1. a directive ``[[fake:{...json...}]]`` in the text of the last user message
   (the last occurrence wins; see :func:`directive`);
2. the next scenario of the FIFO queue (``POST /_fake/scenarios`` or
   :meth:`FakeAnthropicServer.push`);
3. when the last user turn holds ``tool_result`` blocks: a reply quoting them,
   ``Tool results: <tool name>(<tool_use_id>) -> <content>; ...``;
4. the server default (:meth:`FakeAnthropicServer.set_default`).

A scripted ``tool_use`` may name a tool by its own name: when the request offers exactly
one tool whose name ends with ``__<name>`` (the CLI's ``mcp__<server>__`` prefix), the call
names that one, as Claude would.

A request that offers the CLI's ``StructuredOutput`` tool (structured output) and scripts no
``tool_use`` is answered with a call of it whose input is generated from its schema
(:mod:`._structured`); a scripted ``tool_use`` of it gives any other input.

The chosen scenario is layered over the server default, so a default
``token_delay`` also applies to a directive that only sets ``text``.

Prompt caching is simulated (see :mod:`litellm_claude_code.testing._cache`): blocks up to
a ``cache_control`` breakpoint are cached per credential and model, and the usage
reports ``cache_creation_input_tokens`` / ``cache_read_input_tokens`` as the real API
would.  A system text block starting with ``x-anthropic-billing-header:`` (the Claude
Code CLI's per-request billing header) is ignored by the cache, as the real API does,
so it does not break every cache hit.  Turn it off with ``cache=False`` / ``--no-cache``;
a scenario's explicit ``usage`` still overrides the simulated figures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from litellm_claude_code.testing._cache import (
    DEFAULT_MIN_TOKENS,
    CacheControlError,
    CacheUsage,
    Prompt,
    PromptCache,
    analyze,
)

from ._structured import TOOL, example, offered_schema

__all__ = [
    "DIRECTIVE_PREFIX",
    "DIRECTIVE_SUFFIX",
    "FakeAnthropicServer",
    "Scenario",
    "ScenarioError",
    "build_app",
    "directive",
    "main",
    "validate_scenario",
]

LOG = logging.getLogger(__name__)

#: A scenario is plain JSON so it can travel in a prompt, an HTTP body or a CLI flag.
Scenario = dict[str, Any]

DIRECTIVE_PREFIX = "[[fake:"
DIRECTIVE_SUFFIX = "]]"

DEFAULT_TOKENS = 12
DEFAULT_PORT = 8787

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_REASONS: dict[int, str] = {529: "Overloaded"}
_TEXT_KEYS = ("text", "tokens", "echo")
_USAGE_KEYS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
)
_KNOWN_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})


class ScenarioError(ValueError):
    """A scenario or directive is malformed.

    Raised eagerly (at push time, or as a 400 for a directive) because a silently
    ignored typo would make a test pass for the wrong reason.
    """


# --------------------------------------------------------------------------- scenarios


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tool_use(value: object) -> None:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ScenarioError("tool_use: empty list")
    for item in items:
        if not isinstance(item, dict):
            raise ScenarioError("tool_use: expected an object or a list of objects")
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise ScenarioError("tool_use.name: expected a non-empty string")
        if not isinstance(item.get("input", {}), dict):
            raise ScenarioError("tool_use.input: expected an object")
        if "id" in item and not isinstance(item["id"], str):
            raise ScenarioError("tool_use.id: expected a string")


def _check_error(value: object) -> None:
    if not isinstance(value, dict):
        raise ScenarioError("error: expected an object")
    status = value.get("status", 500)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ScenarioError("error.status: expected an HTTP error status (400-599)")
    for key in ("type", "message"):
        if key in value and not isinstance(value[key], str):
            raise ScenarioError(f"error.{key}: expected a string")
    if "retry_after" in value and not (_is_number(value["retry_after"]) or isinstance(value["retry_after"], str)):
        raise ScenarioError("error.retry_after: expected seconds")


def _check_stream_error(value: object) -> None:
    if not isinstance(value, dict) or not all(isinstance(value.get(k, ""), str) for k in ("type", "message")):
        raise ScenarioError("stream_error: expected {type: str, message: str}")


_CHECKS: dict[str, Any] = {
    "text": lambda v: isinstance(v, str),
    "tokens": _is_count,
    "echo": lambda v: isinstance(v, bool),
    "token_delay": lambda v: _is_number(v) and v >= 0,
    "delay": lambda v: _is_number(v) and v >= 0,
    "stop_reason": lambda v: isinstance(v, str) and bool(v),
    "stop_sequence": lambda v: isinstance(v, str),
    "tool_use": _check_tool_use,
    "error": _check_error,
    "error_after_tokens": _is_count,
    "drop_after_tokens": _is_count,
    "stream_error": _check_stream_error,
    "usage": lambda v: isinstance(v, dict) and set(v) <= _USAGE_KEYS and all(_is_count(n) for n in v.values()),
    "headers": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
    "should_retry": lambda v: isinstance(v, bool),
    "thinking": lambda v: isinstance(v, str) and bool(v),
    "rate_limit": lambda v: _check_rate_limit(v),
}


def _check_rate_limit(value: object) -> None:
    if not isinstance(value, dict) or set(value) - {"window", "utilization", "status", "reset_in"}:
        raise ScenarioError("rate_limit: expected {window, utilization, status, reset_in}")
    if value.get("window", "five_hour") not in _RATE_LIMIT_WINDOWS:
        raise ScenarioError(f"rate_limit.window: one of {', '.join(_RATE_LIMIT_WINDOWS)}")
    if value.get("status", "allowed") not in ("allowed", "allowed_warning", "rejected"):
        raise ScenarioError("rate_limit.status: allowed, allowed_warning or rejected")
    if not _is_number(value.get("utilization", 0)) or not _is_number(value.get("reset_in", 3600)):
        raise ScenarioError("rate_limit.utilization and reset_in: numbers")


# The subscription windows of the ``anthropic-ratelimit-unified-*`` headers, and their short names.
_RATE_LIMIT_WINDOWS = {"five_hour": "5h", "seven_day": "7d"}


def _rate_limit_headers(value: Mapping[str, Any]) -> dict[str, str]:
    """What the real API sends a subscription token on every answer (429 included)."""
    window = value.get("window", "five_hour")
    status = value.get("status", "allowed")
    reset = str(int(time.time() + float(value.get("reset_in", 3600))))
    short = _RATE_LIMIT_WINDOWS[window]
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": window,
        f"anthropic-ratelimit-unified-{short}-status": status,
        f"anthropic-ratelimit-unified-{short}-reset": reset,
        f"anthropic-ratelimit-unified-{short}-utilization": str(value.get("utilization", 0)),
    }


def validate_scenario(scenario: object) -> Scenario:
    """Check a scenario and return a copy of it.

    Unknown keys are rejected (typos must not pass silently).  ``None`` is allowed
    for every key: it removes that key from the server default for this request.
    """
    if not isinstance(scenario, dict):
        raise ScenarioError(f"scenario must be a JSON object, got {type(scenario).__name__}")
    for key, value in scenario.items():
        check = _CHECKS.get(key)
        if check is None:
            raise ScenarioError(f"unknown scenario key {key!r} (known: {', '.join(sorted(_CHECKS))})")
        if value is None:
            continue
        ok = check(value)
        if ok is False:
            raise ScenarioError(f"{key}: invalid value {value!r}")
    return copy.deepcopy(scenario)


def directive(**scenario: Any) -> str:
    """Return the ``[[fake:{...}]]`` string that scripts the reply to a prompt.

    Embedding the scenario in the prompt lets a test drive the fake through layers it
    cannot otherwise reach (LiteLLM -> provider -> CLI -> HTTP), with no shared state.
    """
    validate_scenario(scenario)
    return DIRECTIVE_PREFIX + json.dumps(scenario, separators=(",", ":")) + DIRECTIVE_SUFFIX


def _find_directives(text: str) -> tuple[list[Any], str]:
    """Return the directives found in ``text`` and the text with them removed."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    kept: list[str] = []
    pos = 0
    while (start := text.find(DIRECTIVE_PREFIX, pos)) >= 0:
        body = start + len(DIRECTIVE_PREFIX)
        while body < len(text) and text[body].isspace():
            body += 1
        try:
            obj, end = decoder.raw_decode(text, body)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"bad fake directive at offset {start}: {exc.msg}") from None
        while end < len(text) and text[end].isspace():
            end += 1
        if not text.startswith(DIRECTIVE_SUFFIX, end):
            raise ScenarioError(f"fake directive at offset {start} is not closed with ']]'")
        found.append(obj)
        kept.append(text[pos:start])
        pos = end + len(DIRECTIVE_SUFFIX)
    kept.append(text[pos:])
    return found, "".join(kept)


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


# --------------------------------------------------------------------------- state


class _State:
    """Request log, scenario queue and defaults, shared between the server loop
    thread and test threads (hence one lock for everything).  The prompt cache
    (``None``: caching disabled) has its own lock, see :class:`PromptCache`."""

    def __init__(self, default: Scenario, accept_keys: Iterable[str] | None, cache: PromptCache | None = None) -> None:
        self.cache = cache
        self.cond = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.queue: deque[Scenario] = deque()
        self.default: Scenario = validate_scenario(default)
        self.accept_keys: frozenset[str] | None = frozenset(accept_keys) if accept_keys is not None else None
        self.ids = itertools.count(1)

    def log(self, record: dict[str, Any]) -> None:
        with self.cond:
            self.requests.append(record)
            self.cond.notify_all()

    def update(self, record: dict[str, Any], **changes: Any) -> None:
        with self.cond:
            record.update(changes)
            self.cond.notify_all()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.cond:
            return copy.deepcopy(self.requests)

    def push(self, scenarios: object) -> int:
        items = scenarios if isinstance(scenarios, list) else [scenarios]
        checked = [validate_scenario(s) for s in items]
        with self.cond:
            self.queue.extend(checked)
            return len(self.queue)

    def pop(self) -> Scenario | None:
        with self.cond:
            return self.queue.popleft() if self.queue else None


STATE_KEY = web.AppKey("fake_anthropic_state", _State)


# --------------------------------------------------------------------------- HTTP


def _fingerprint(secret: str | None) -> str:
    """Short, non-reversible tag for logs: never print credentials."""
    if not secret:
        return "-"
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def _error_body(err_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": err_type, "message": message}}


def _error_response(
    status: int,
    err_type: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> web.Response:
    err_type = err_type or _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    hdrs = dict(headers or {})
    if request_id:
        hdrs.setdefault("request-id", request_id)
    return web.json_response(
        _error_body(err_type, message or f"fake {err_type}"),
        status=status,
        reason=_REASONS.get(status),
        headers=hdrs,
    )


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _auth(request: web.Request) -> tuple[str | None, str | None]:
    key = request.headers.get("x-api-key")
    if key:
        return key, "x-api-key"
    authz = request.headers.get("authorization", "")
    scheme, _, value = authz.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    return None, None


def _headers_dict(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _peer(request: web.Request) -> str | None:
    """``host:port`` of the client's end of the connection: tells a test which process sent it."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else None


async def _new_record(request: web.Request, state: _State) -> tuple[dict[str, Any], Any]:
    """Read the body and log the request before anything can fail, so tests can
    inspect even rejected or dropped requests."""
    raw = await request.read()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
    auth, scheme = _auth(request)
    obj = body if isinstance(body, dict) else {}
    tools = obj.get("tools")
    record: dict[str, Any] = {
        "id": f"req_fake{next(state.ids):06d}",
        "time": time.time(),
        "peer": _peer(request),
        "path": request.path,
        "query": dict(request.query),
        "method": request.method,
        "headers": _headers_dict(request),
        "auth": auth,
        "auth_scheme": scheme,
        "body": body,
        "body_bytes": len(raw),
        "model": obj.get("model") if isinstance(obj.get("model"), str) else None,
        "system_text": _system_text(obj.get("system")),
        "messages": obj.get("messages") if isinstance(obj.get("messages"), list) else [],
        "tool_names": [
            t["name"]
            for t in (tools if isinstance(tools, list) else [])
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        ],
        "stream": obj.get("stream") is True,
        "scenario": None,
        "scenario_source": None,
        "cache": None,
        "status": None,
        "outcome": None,
    }
    state.log(record)
    return record, body


def _check_auth(state: _State, record: dict[str, Any]) -> web.Response | None:
    auth = record["auth"]
    if auth is None:
        return _error_response(401, message="x-api-key header is required", request_id=record["id"])
    with state.cond:
        accepted = state.accept_keys
    if accepted is not None and auth not in accepted:
        return _error_response(401, message="invalid x-api-key", request_id=record["id"])
    return None


def _validate_body(body: Any, *, need_max_tokens: bool) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("messages"), list):
        return "messages: Field required"
    if need_max_tokens:
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            return "max_tokens: Field required (a positive integer)"
    return None


def _choose(state: _State, body: Mapping[str, Any]) -> tuple[Scenario, str, str]:
    """Pick the scenario (directive > queue > default) and the echo text."""
    found: list[Any] = []
    pieces: list[str] = []
    for text in _message_texts(_last_user_message(body.get("messages"))):
        hits, rest = _find_directives(text)
        found.extend(hits)
        pieces.append(rest)
    echo_text = "\n".join(p.strip() for p in pieces if p.strip())
    with state.cond:
        default = copy.deepcopy(state.default)
    if found:
        return _merge(default, validate_scenario(found[-1])), "directive", echo_text
    queued = state.pop()
    if queued is not None:
        return _merge(default, queued), "queue", echo_text
    quoted = _tool_results_reply(body.get("messages"))
    if quoted is not None and not any(k in default for k in ("echo", "text")):
        return _merge(default, {"text": quoted}), "tool_results", echo_text
    return _merge(default, {}), "default", echo_text


def _simulate_cache(
    state: _State, record: dict[str, Any], body: Mapping[str, Any], prompt: Prompt | None
) -> CacheUsage:
    """Apply the request to the prompt cache (once, when the reply is about to start,
    as the real API does: a rejected request writes nothing) and log the figures.

    The total stays :func:`estimate_input_tokens` unless the blocks weigh more (tool
    definitions, which the estimator ignores, or a bare system string, which weighs as a
    text block): then the blocks' sum is used, so cached tokens never exceed the total.
    """
    total = estimate_input_tokens(body)
    if state.cache is None or prompt is None:
        return CacheUsage.uncached(total)
    namespace = (_fingerprint(record["auth"]), str(body.get("model") or ""))
    usage = state.cache.use(namespace, prompt, max(total, prompt.total_tokens))
    state.update(record, cache=usage.record())
    return usage


def _usage(plan: _Plan, cache: CacheUsage) -> dict[str, int]:
    out_tokens = (
        len(plan.thinking) + len(plan.tokens) + sum(max(1, len(json.dumps(t["input"])) // 4) for t in plan.tool_uses)
    )
    usage = {
        "input_tokens": cache.input,
        "cache_creation_input_tokens": cache.creation,
        "cache_read_input_tokens": cache.read,
        "output_tokens": out_tokens,
    }
    usage.update(plan.usage)
    return usage


def _json_chunks(value: Any, size: int = 12) -> list[str]:
    raw = json.dumps(value, separators=(",", ":"))
    return [""] + [raw[i : i + size] for i in range(0, len(raw), size)]


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _stream(
    request: web.Request, plan: _Plan, cache: CacheUsage, record: dict[str, Any]
) -> tuple[web.StreamResponse, str]:
    """Write the SSE events one by one, flushing each (true incremental streaming)."""
    usage = _usage(plan, cache)
    resp = web.StreamResponse(
        status=200,
        headers={
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": record["id"],
            **plan.headers,
        },
    )
    if plan.drop_after is not None:
        resp.force_close()
    msg_id = f"msg_fake{uuid.uuid4().hex[:24]}"
    start_usage = dict(usage, output_tokens=min(1, usage["output_tokens"]))
    sent = 0

    async def interrupt() -> str | None:
        if plan.drop_after is not None and sent >= plan.drop_after:
            _abort(request)
            return "dropped"
        if plan.error_after is not None and sent >= plan.error_after:
            await resp.write(
                _sse(
                    "error",
                    _error_body(plan.stream_error["type"], plan.stream_error["message"]),
                )
            )
            return "stream_error"
        return None

    try:
        await resp.prepare(request)
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": plan.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        )
        index = 0
        pinged = False
        if plan.thinking:
            await _stream_thinking(resp, plan)
            index = 1
        if plan.tokens or plan.error_after is not None or plan.drop_after is not None:
            await resp.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            await resp.write(_sse("ping", {"type": "ping"}))
            pinged = True
            for token in plan.tokens:
                if outcome := await interrupt():
                    return resp, outcome
                await _sleep(plan.token_delay)
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": token},
                        },
                    )
                )
                sent += 1
            if outcome := await interrupt():
                return resp, outcome
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if not pinged:
            await resp.write(_sse("ping", {"type": "ping"}))
        for tool in plan.tool_uses:
            await resp.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool["id"],
                            "name": tool["name"],
                            "input": {},
                        },
                    },
                )
            )
            for chunk in _json_chunks(tool["input"]):
                await _sleep(plan.token_delay)
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {
                                "type": "input_json_delta",
                                "partial_json": chunk,
                            },
                        },
                    )
                )
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": plan.stop_reason,
                        "stop_sequence": plan.stop_sequence,
                    },
                    "usage": usage,
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
    except ConnectionError:
        # The client went away mid-stream: normal life for a server, not a crash.
        return resp, "client_disconnected"
    return resp, "ok"


async def _stream_thinking(resp: web.StreamResponse, plan: _Plan) -> None:
    """A thinking block at index 0: its text in ``thinking_delta`` pieces, then its signature."""
    start = {"type": "thinking", "thinking": "", "signature": ""}
    await resp.write(_sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}))
    for token in plan.thinking:
        await _sleep(plan.token_delay)
        delta = {"type": "thinking_delta", "thinking": token}
        await resp.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    delta = {"type": "signature_delta", "signature": _signature(plan.thinking)}
    await resp.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))


def _signature(thinking: list[str]) -> str:
    return "fakesig" + hashlib.sha256("".join(thinking).encode()).hexdigest()[:32]


def _message_json(plan: _Plan, cache: CacheUsage) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.thinking:
        content.append({"type": "thinking", "thinking": "".join(plan.thinking), "signature": _signature(plan.thinking)})
    if plan.tokens:
        content.append({"type": "text", "text": "".join(plan.tokens)})
    content.extend(plan.tool_uses)
    return {
        "id": f"msg_fake{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": _usage(plan, cache),
    }


async def _messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    record, body = await _new_record(request, state)
    resp, outcome = await _answer(request, state, record, body)
    state.update(record, status=resp.status, outcome=outcome)
    LOG.info(
        "%s %s model=%s stream=%s auth=%s:%s scenario=%s status=%s outcome=%s",
        request.method,
        request.path_qs,
        record["model"],
        record["stream"],
        record["auth_scheme"] or "none",
        _fingerprint(record["auth"]),
        record["scenario_source"],
        resp.status,
        outcome,
    )
    return resp


async def _answer(
    request: web.Request, state: _State, record: dict[str, Any], body: Any
) -> tuple[web.StreamResponse, str]:
    if denied := _check_auth(state, record):
        return denied, "unauthenticated"
    count_only = request.path.endswith("/count_tokens")
    if problem := _validate_body(body, need_max_tokens=not count_only):
        return _error_response(400, message=problem, request_id=record["id"]), "invalid_request"
    if count_only:
        return web.json_response({"input_tokens": estimate_input_tokens(body)}), "ok"
    try:
        # Validated only when caching is on: ``--no-cache`` keeps the old, lenient fake.
        prompt = analyze(body) if state.cache is not None else None
    except CacheControlError as exc:
        return _error_response(400, message=str(exc), request_id=record["id"]), "invalid_request"
    try:
        scenario, source, echo_text = _choose(state, body)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc), request_id=record["id"]), "bad_directive"
    state.update(record, scenario=scenario, scenario_source=source)
    plan = _plan(scenario, body, echo_text)
    await _sleep(plan.delay)
    if plan.error is not None:
        err = plan.error
        status = int(err.get("status", 500))
        headers = dict(plan.headers)
        if "retry_after" in err:
            ra = err["retry_after"]
            headers["retry-after"] = str(int(ra)) if _is_number(ra) and float(ra).is_integer() else str(ra)
        resp = _error_response(status, err.get("type"), err.get("message"), headers, record["id"])
        _apply_should_retry(resp, scenario)
        return resp, "error"
    cache = _simulate_cache(state, record, body, prompt)
    if body.get("stream") is True:
        return await _stream(request, plan, cache, record)
    if plan.drop_after is not None:
        await _sleep(plan.token_delay * plan.drop_after)
        _abort(request)
        resp = web.Response(status=200)
        resp.force_close()
        return resp, "dropped"
    if plan.error_after is not None:
        await _sleep(plan.token_delay * plan.error_after)
        # Without a stream there is no in-band error: the same failure as a 529.
        resp = _error_response(
            529,
            plan.stream_error.get("type"),
            plan.stream_error.get("message"),
            request_id=record["id"],
        )
        return resp, "error"
    await _sleep(plan.token_delay * len(plan.tokens))
    resp = web.json_response(_message_json(plan, cache), headers={"request-id": record["id"], **plan.headers})
    return resp, "ok"


def _apply_should_retry(resp: web.StreamResponse, scenario: Scenario) -> None:
    if "should_retry" in scenario:
        resp.headers["x-should-retry"] = "true" if scenario["should_retry"] else "false"


async def _unknown(request: web.Request) -> web.StreamResponse:
    """Unknown paths are logged too: a 404 is often the first hint that a client
    (or a new CLI version) calls an endpoint the fake does not implement."""
    state = request.app[STATE_KEY]
    record, _ = await _new_record(request, state)
    if request.path in _KNOWN_PATHS:
        resp = _error_response(
            405,
            "invalid_request_error",
            f"method {request.method} not allowed",
            request_id=record["id"],
        )
    else:
        resp = _error_response(
            404,
            "not_found_error",
            f"fake server: no route for {request.method} {request.path}",
            request_id=record["id"],
        )
    state.update(record, status=resp.status, outcome="not_found")
    LOG.info("%s %s status=%s", request.method, request.path_qs, resp.status)
    return resp


async def _ctl_requests_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


async def _ctl_requests_delete(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        n = len(state.requests)
        state.requests.clear()
    return web.json_response({"ok": True, "cleared": n})


async def _read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps(_error_body("invalid_request_error", f"invalid JSON: {exc}")),
            content_type="application/json",
        ) from None


async def _ctl_cache_delete(request: web.Request) -> web.Response:
    cache = request.app[STATE_KEY].cache
    return web.json_response({"ok": True, "cleared": cache.clear() if cache is not None else 0})


async def _ctl_scenarios_post(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        queued = request.app[STATE_KEY].push(data)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc))
    return web.json_response({"ok": True, "queued": queued})


async def _ctl_scenarios_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        return web.json_response(list(state.queue))


async def _ctl_scenarios_delete(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        n = len(state.queue)
        state.queue.clear()
    return web.json_response({"ok": True, "cleared": n})


async def _ctl_default_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        return web.json_response(state.default)


async def _ctl_default_put(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        checked = validate_scenario(data)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc))
    state = request.app[STATE_KEY]
    with state.cond:
        state.default = checked
    return web.json_response({"ok": True, "default": checked})


async def _ctl_health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn any bug or odd input into an Anthropic-shaped 500 instead of a dead
    connection, so one bad request never takes the fake down for the next test."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except ConnectionError:
        raise
    except Exception as exc:  # the point is to survive anything
        LOG.exception("fake server error on %s %s", request.method, request.path)
        return _error_response(500, "api_error", f"fake server error: {exc!r}")


def build_app(
    *,
    tokens: int = DEFAULT_TOKENS,
    token_delay: float = 0.0,
    accept_keys: Iterable[str] | None = None,
    default: Scenario | None = None,
    cache: bool = True,
    cache_min_tokens: int = DEFAULT_MIN_TOKENS,
) -> web.Application:
    """Build the aiohttp application (for embedding in an existing aiohttp test)."""
    base: Scenario = {"tokens": tokens, "token_delay": token_delay}
    base.update(default or {})
    return _make_app(_State(base, accept_keys, PromptCache(cache_min_tokens) if cache else None))


def _make_app(state: _State) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app.router.add_post("/v1/messages", _messages)
    app.router.add_post("/v1/messages/count_tokens", _messages)
    app.router.add_get("/_fake/requests", _ctl_requests_get)
    app.router.add_delete("/_fake/requests", _ctl_requests_delete)
    app.router.add_get("/_fake/scenarios", _ctl_scenarios_get)
    app.router.add_post("/_fake/scenarios", _ctl_scenarios_post)
    app.router.add_delete("/_fake/scenarios", _ctl_scenarios_delete)
    app.router.add_get("/_fake/default", _ctl_default_get)
    app.router.add_put("/_fake/default", _ctl_default_put)
    app.router.add_delete("/_fake/cache", _ctl_cache_delete)
    app.router.add_get("/_fake/health", _ctl_health)
    app.router.add_route("*", "/{tail:.*}", _unknown)
    return app


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------- Python API


class FakeAnthropicServer:
    """The fake server running on its own event loop in a background thread.

    A thread (rather than the test's loop) makes the same object usable from sync
    tests, async tests and while a blocking subprocess (the CLI) runs::

        with FakeAnthropicServer() as fake:
            env["ANTHROPIC_BASE_URL"] = fake.base_url
            ...
            assert fake.requests()[0]["model"].startswith("claude-")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: int = DEFAULT_TOKENS,
        token_delay: float = 0.0,
        accept_keys: Iterable[str] | None = None,
        default: Scenario | None = None,
        cache: bool = True,
        cache_min_tokens: int = DEFAULT_MIN_TOKENS,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``cache=False`` turns the prompt-cache simulation off (all input uncached);
        ``cache_min_tokens`` is the shortest cacheable prefix; ``cache_clock`` (a
        monotonic clock in seconds) lets a test expire entries without sleeping."""
        base: Scenario = {"tokens": tokens, "token_delay": token_delay}
        base.update(default or {})
        prompt_cache = PromptCache(cache_min_tokens, cache_clock) if cache else None
        self._state = _State(base, accept_keys, prompt_cache)
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(f"fake Anthropic server failed to start: {self._startup_error}") from (
                self._startup_error
            )
        if self._port is None:
            raise RuntimeError("fake Anthropic server did not start within 30 s")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight streams are cut after ~0.5 s)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._thread = None
        self._loop = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = web.AppRunner(_make_app(self._state), access_log=None, shutdown_timeout=0.25)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self._host, self._requested_port)
            loop.run_until_complete(site.start())
            self._port = int(runner.addresses[0][1])
        except OSError as exc:  # e.g. address in use: reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # addresses ---------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to put in ``ANTHROPIC_BASE_URL`` (no trailing slash, no /v1)."""
        return f"http://{_url_host(self._host)}:{self.port}"

    # inspection and scripting --------------------------------------------------

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """A deep copy of the request log, optionally only one path."""
        records = self._state.snapshot()
        return [r for r in records if path is None or r["path"] == path]

    def messages_requests(self) -> list[dict[str, Any]]:
        """Only the ``POST /v1/messages`` requests (what most tests assert on)."""
        return [r for r in self.requests("/v1/messages") if r["method"] == "POST"]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` requests were logged (for other threads)."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while len(self._state.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} requests, got {len(self._state.requests)}")
                self._state.cond.wait(left)
        return self.requests()

    def clear(self) -> None:
        """Forget logged requests and queued scenarios (not the default)."""
        with self._state.cond:
            self._state.requests.clear()
            self._state.queue.clear()

    def clear_cache(self) -> int:
        """Forget every cached prompt prefix (all credentials and models); returns how
        many entries were live.  Safe from any thread (the cache has its own lock)."""
        cache = self._state.cache
        return cache.clear() if cache is not None else 0

    def push(self, scenario: Scenario | Sequence[Scenario]) -> int:
        """Queue one scenario or a list; each /v1/messages request without a
        directive consumes one, FIFO.  Returns the queue length."""
        return self._state.push(list(scenario) if isinstance(scenario, list | tuple) else scenario)

    def pending_scenarios(self) -> list[Scenario]:
        with self._state.cond:
            return copy.deepcopy(list(self._state.queue))

    def set_default(self, **kwargs: Any) -> None:
        """Merge keys into the default scenario (``None`` removes a key); e.g.
        ``set_default(token_delay=0.05)`` or ``set_default(error={"status": 529})``."""
        with self._state.cond:
            merged = _merge(self._state.default, kwargs)
            if not any(k in merged for k in _TEXT_KEYS):
                merged["tokens"] = DEFAULT_TOKENS
            self._state.default = validate_scenario(merged)

    def set_accept_keys(self, keys: Iterable[str] | None) -> None:
        """Change which credentials are accepted (``None``: any non-empty key)."""
        with self._state.cond:
            self._state.accept_keys = frozenset(keys) if keys is not None else None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<FakeAnthropicServer {where}>"


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m litellm_claude_code.testing.fake_anthropic",
        description="Fake Anthropic Messages API for tests and token-free smoke tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help="default reply length")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument(
        "--accept-key",
        action="append",
        default=[],
        help="accept only these keys (repeatable; also FAKE_ANTHROPIC_ACCEPT_KEYS=a,b)",
    )
    parser.add_argument(
        "--default-scenario",
        default=None,
        help="JSON scenario layered into the default",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="do not simulate prompt caching (all input reported as uncached)",
    )
    parser.add_argument(
        "--cache-min-tokens",
        type=int,
        default=DEFAULT_MIN_TOKENS,
        help="shortest cacheable prefix in (estimated) tokens",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser.parse_args(argv)


async def _serve(state: _State, host: str, port: int) -> None:
    runner = web.AppRunner(_make_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    print(
        f"fake-anthropic listening on http://{_url_host(host)}:{bound}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (
            NotImplementedError,
            RuntimeError,
        ):  # pragma: no cover - non-main thread
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s fake-anthropic %(message)s",
        force=True,  # an import may have configured logging already; --quiet must still hold
    )
    LOG.setLevel(logging.WARNING if args.quiet else logging.INFO)
    keys = list(args.accept_key)
    env_keys = os.environ.get("FAKE_ANTHROPIC_ACCEPT_KEYS", "")
    keys += [k.strip() for k in env_keys.split(",") if k.strip()]
    default: Scenario = {"tokens": args.tokens, "token_delay": args.token_delay}
    try:
        if args.default_scenario:
            default = _merge(default, validate_scenario(json.loads(args.default_scenario)))
        state = _State(default, keys or None)
    except (ValueError, ScenarioError) as exc:
        print(f"fake-anthropic: bad --default-scenario: {exc}", file=sys.stderr)
        return 2
    if args.cache_min_tokens < 1:
        print("fake-anthropic: --cache-min-tokens must be at least 1", file=sys.stderr)
        return 2
    state.cache = PromptCache(args.cache_min_tokens) if args.cache else None
    try:
        asyncio.run(_serve(state, args.host, args.port))
    except OSError as exc:
        print(
            f"fake-anthropic: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
