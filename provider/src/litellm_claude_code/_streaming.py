"""The CLI's messages to text deltas and one final outcome (finish reason, usage, error).

Text is taken from the partial-message stream events (``content_block_delta`` /
``text_delta``) as the CLI receives them from the API, so a client sees tokens as they
arrive, never whole blocks cut into pieces. A complete assistant message is used only when
no delta of it was seen. Usage comes from the CLI's final result, the only place the
totals are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import AssistantMessage, ResultMessage, SystemMessage, TextBlock, ThinkingBlock, ToolUseBlock
from claude_agent_sdk.types import Message, RateLimitEvent, StreamEvent

from ._errors import (
    BadRequestError,
    ClaudeCodeError,
    CLIFailedError,
    RateLimitedError,
    RequestTimeoutError,
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamServerError,
    from_upstream_status,
)
from ._ratelimits import RateLimitState
from ._structured import TOOL as STRUCTURED_TOOL
from ._tools import ToolCall

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
    "tool_use": "stop",  # no client tools: the text so far is the answer
    "tool_deferred": "tool_calls",  # client tools: the calls are handed back (_tools.py)
    "pause_turn": "stop",
}


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's terms: prompt tokens include cached ones."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    """Of the output tokens, those spent thinking (the CLI's ``output_tokens_details``)."""

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}

        def count(key: str) -> int:
            value = data.get(key)
            return int(value) if isinstance(value, int | float) else 0

        return cls(
            input_tokens=count("input_tokens"),
            output_tokens=count("output_tokens"),
            cache_read_input_tokens=count("cache_read_input_tokens"),
            cache_creation_input_tokens=count("cache_creation_input_tokens"),
            reasoning_tokens=_thinking_tokens(data),
        )

    def __add__(self, other: Usage) -> Usage:
        """Two turns of one request (a follow-up asking for a forced tool call) counted together."""
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def as_openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read_input_tokens},
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


def _thinking_tokens(data: dict[str, Any]) -> int:
    details = data.get("output_tokens_details")
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return int(value) if isinstance(value, int | float) else 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of one tool call of the answer, in OpenAI's streaming terms.

    The first piece of a call carries its ``id`` and ``name``; later pieces carry only more of
    ``arguments`` (JSON text, streamed in fragments). ``index`` is the call's position among the
    answer's tool calls.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of the answer as the client receives it: text, reasoning, or part of a tool call.

    The engine yields these in order; the provider maps each onto a LiteLLM streaming chunk
    (and concatenates them for a non-streamed response).
    """

    text: str = ""
    reasoning: str = ""
    tool_call: ToolCallDelta | None = None


@dataclass(slots=True)
class Outcome:
    """How a request ended: set once the CLI's result arrives."""

    finish_reason: str = "stop"
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    cost_usd: float | None = None
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Claude's calls of client tools, as the CLI named them, in order (set when the answer ends)."""
    reasoning_parts: list[str] = field(default_factory=list)
    rate_limit: RateLimitState | None = None
    """The subscription window the CLI last reported (subscription tokens only)."""
    exact: bool = True
    """The client got all the CLI holds of the turn; False when some was kept from it (held-back text,
    calls beyond the first, a follow-up asking for a call): the engine then cuts the turn off."""

    @property
    def reasoning(self) -> str:
        """The whole thinking as the client received it."""
        return "".join(self.reasoning_parts)

    @property
    def text(self) -> str:
        """The whole answer as the client received it."""
        return "".join(self.parts)


_ASSISTANT_ERRORS: dict[str, type[ClaudeCodeError]] = {
    "authentication_failed": UpstreamAuthError,
    "rate_limit": RateLimitedError,
    "server_error": UpstreamServerError,
    "overloaded": UpstreamOverloadedError,
    "invalid_request": BadRequestError,
}


def _result_error(
    result: ResultMessage,
    assistant_error: str | None,
    token_setting: str,
    retry_after: float | None = None,
    rate_limit: RateLimitState | None = None,
    *,
    cloud: bool = False,
) -> ClaudeCodeError:
    detail = "; ".join(result.errors or []) or (result.result or result.subtype or "unknown error")
    detail = detail[:500]
    limited = result.api_error_status == 429 or assistant_error == "rate_limit"
    if limited and rate_limit is not None and rate_limit.status == "rejected":
        return rate_limit.refusal()  # a subscription window refused it: wait for its reset
    if result.api_error_status:
        return from_upstream_status(
            result.api_error_status, detail, token_setting, retry_after=retry_after, cloud=cloud
        )
    if assistant_error == "rate_limit" and retry_after is not None:
        return from_upstream_status(429, detail, token_setting, retry_after=retry_after, cloud=cloud)
    if assistant_error == "authentication_failed":
        return from_upstream_status(401, detail, token_setting, cloud=cloud)
    if assistant_error in (None, "server_error", "unknown") and _CLI_TIMEOUT.search(detail):
        return RequestTimeoutError(_UPSTREAM_NO_ANSWER)
    if assistant_error in _ASSISTANT_ERRORS:
        return _ASSISTANT_ERRORS[assistant_error](f"Claude Code reported {assistant_error}: {detail}")
    return CLIFailedError(f"Claude Code failed ({result.subtype}): {detail}")


# The CLI's words when an upstream call got no answer within API_TIMEOUT_MS (its last retry
# included): a gateway timeout (504), not a bad gateway. The CLI's own text is not passed on:
# LiteLLM turns any error that says "Request timed out" into a 408, a client's fault.
_CLI_TIMEOUT = re.compile(r"request timed out|\bETIMEDOUT\b", re.IGNORECASE)
_UPSTREAM_NO_ANSWER = (
    "The upstream API did not answer within LITELLM_CLAUDE_CODE_API_TIMEOUT_MS (each of the CLI's attempts, "
    "LITELLM_CLAUDE_CODE_CLI_MAX_RETRIES retries). Check the network to the upstream (ANTHROPIC_BASE_URL, "
    "HTTPS_PROXY), or raise the timeout for a slow one."
)


# Stop reasons after which the CLI would send a follow-up request of its own ("resume",
# a tool result, a safety note): the answer is complete, so the provider stops reading.
_FINAL_WITHOUT_RESULT = ("max_tokens", "refusal", "tool_use", "pause_turn")


class _Transcript:
    """What the client was sent, checked against each upstream attempt's text.

    The CLI may ask the API again inside one request (after a broken stream it fetches the
    answer once more, without streaming). Each attempt's text is compared with what was
    already sent: only a longer, consistent text yields its new tail; a different text is an
    error, never a silently wrong answer.
    """

    def __init__(self) -> None:
        self.sent = ""

    def advance(self, candidate: str) -> str:
        if len(candidate) <= len(self.sent):
            if not self.sent.startswith(candidate):
                raise UpstreamServerError("The upstream answer changed after a retry; the stream was ended.")
            return ""
        if not candidate.startswith(self.sent):
            raise UpstreamServerError("The upstream answer changed after a retry; the stream was ended.")
        tail = candidate[len(self.sent) :]
        self.sent = candidate
        return tail


async def text_deltas(
    messages: AsyncIterator[Message], outcome: Outcome, *, token_setting: str, cloud: bool = False
) -> AsyncIterator[str]:
    """The text of :func:`deltas` alone (reasoning and tool calls left out)."""
    async for delta in deltas(messages, outcome, token_setting=token_setting, cloud=cloud):
        if delta.text:
            yield delta.text


class _Calls:
    """Claude's tool calls of one answer, from ``tool_use`` blocks and their ``input_json_delta`` pieces."""

    def __init__(self) -> None:
        self.by_block: dict[int, int] = {}  # stream content-block index -> call index
        self.calls: list[list[str]] = []  # [id, name, arguments so far]

    def start(self, block: int, call_id: str, name: str) -> ToolCallDelta:
        self.by_block[block] = len(self.calls)
        self.calls.append([call_id, name, ""])
        return ToolCallDelta(len(self.calls) - 1, id=call_id, name=name)

    def more(self, block: int, fragment: str) -> ToolCallDelta | None:
        index = self.by_block.get(block)
        if index is None or not fragment:
            return None
        self.calls[index][2] += fragment
        return ToolCallDelta(index, arguments=fragment)

    def known(self, call_id: str) -> bool:
        return any(call[0] == call_id for call in self.calls)

    def done(self) -> list[ToolCall]:
        return [ToolCall(call_id, name, arguments or "{}") for call_id, name, arguments in self.calls]


async def deltas(
    messages: AsyncIterator[Message],
    outcome: Outcome,
    *,
    token_setting: str,
    cloud: bool = False,
    client_tools: bool = False,
    structured: bool = False,
) -> AsyncIterator[Delta]:
    """Yield the answer's pieces as they stream; fill ``outcome``; raise mapped errors.

    ``client_tools``: the process offers the client's tools, so Claude's ``tool_use`` blocks are
    tool calls for the client (:class:`ToolCallDelta`), and the answer ends with the CLI's result
    (the calls deferred, :mod:`.tools`). Without, a ``tool_use`` ends the answer at once: the
    text so far is all of it, and the CLI runs nothing (it has no tools).

    ``cloud``: the credential is Bedrock's or Vertex AI's (:func:`.errors.from_upstream_status`).

    ``structured``: the answer is the input of the CLI's ``StructuredOutput`` call
    (:mod:`.structured`), streamed as text; Claude's own text around it is dropped.
    """
    transcript = _Transcript()
    calls = _Calls()
    streamed = ""  # this attempt's text, from stream deltas
    assembled = ""  # this attempt's text, from complete assistant messages
    thoughts = _Transcript()  # the same for the thinking
    streamed_thinking = assembled_thinking = ""
    assistant_error: str | None = None
    stream_usage: dict[str, Any] = {}
    # The CLI reports no upstream Retry-After in its result; its `api_retry` notice before a
    # retry carries the wait it chose: the upstream's Retry-After when one was sent, else its
    # own short backoff. (With CLAUDE_CODE_MAX_RETRIES=0 there is no notice and no header.)
    rate_limit_wait: float | None = None
    answer_blocks: set[int] = set()  # structured: the StructuredOutput call's stream block
    async for message in messages:
        tail = ""
        if isinstance(message, StreamEvent):
            event = message.event
            kind = event.get("type")
            if kind == "message_start":
                if calls.calls or (structured and outcome.parts):
                    raise UpstreamServerError("The upstream answer changed after a retry; the stream was ended.")
                start = event.get("message") or {}
                outcome.model = start.get("model") or outcome.model
                stream_usage = dict(start.get("usage") or {})
                # Provisional, for an answer cut short (a stop string): the result's totals replace it.
                outcome.usage = Usage.from_dict(stream_usage)
                streamed = assembled = streamed_thinking = assembled_thinking = ""
            elif kind == "content_block_start" and structured:
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
                    answer_blocks.add(int(event.get("index", 0)))
            elif kind == "content_block_start" and client_tools:
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                    yield Delta(tool_call=calls.start(int(event.get("index", 0)), block["id"], str(block.get("name"))))
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if structured:
                    if delta.get("type") == "input_json_delta" and int(event.get("index", 0)) in answer_blocks:
                        tail = str(delta.get("partial_json") or "")
                elif delta.get("type") == "text_delta" and delta.get("text"):
                    streamed += delta["text"]
                    tail = transcript.advance(streamed)
                elif delta.get("type") == "input_json_delta" and client_tools:
                    piece = calls.more(int(event.get("index", 0)), str(delta.get("partial_json") or ""))
                    if piece is not None:
                        yield Delta(tool_call=piece)
                elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                    streamed_thinking += delta["thinking"]
                    if thought := thoughts.advance(streamed_thinking):
                        outcome.reasoning_parts.append(thought)
                        yield Delta(reasoning=thought)
            elif kind == "message_delta":
                reason = (event.get("delta") or {}).get("stop_reason")
                stream_usage.update(event.get("usage") or {})
                if reason:
                    outcome.stop_reason = reason
            elif (
                kind == "message_stop"
                and outcome.stop_reason in _FINAL_WITHOUT_RESULT
                and not (outcome.stop_reason == "tool_use" and calls.calls)  # deferred: the result follows
            ):
                outcome.usage = Usage.from_dict(stream_usage)
                outcome.finish_reason = FINISH_REASONS.get(outcome.stop_reason or "", "stop")
                return
        elif isinstance(message, AssistantMessage):
            if message.error:
                assistant_error = str(message.error)
                continue
            outcome.model = message.model or outcome.model
            assembled_thinking += "".join(b.thinking for b in message.content if isinstance(b, ThinkingBlock))
            if thought := thoughts.advance(assembled_thinking):
                outcome.reasoning_parts.append(thought)
                yield Delta(reasoning=thought)
            if structured:
                for block in message.content:
                    if isinstance(block, ToolUseBlock) and block.name == STRUCTURED_TOOL and not outcome.parts:
                        # Without stream events (a non-streamed retry): the whole input at once.
                        tail = json.dumps(block.input, separators=(",", ":"))
            else:
                assembled += "".join(block.text for block in message.content if isinstance(block, TextBlock))
                tail = transcript.advance(assembled)
            for block in message.content:
                if client_tools and isinstance(block, ToolUseBlock) and not calls.known(block.id):
                    # A call that came without stream events (a non-streamed retry): whole at once.
                    first = calls.start(-1 - len(calls.calls), block.id, block.name)
                    yield Delta(tool_call=first)
                    rest = calls.more(-len(calls.calls), json.dumps(block.input, separators=(",", ":")))
                    if rest is not None:
                        yield Delta(tool_call=rest)
        elif isinstance(message, RateLimitEvent):
            outcome.rate_limit = RateLimitState.from_event(message)
        elif isinstance(message, SystemMessage) and message.subtype == "api_retry":
            data = message.data or {}
            delay_ms = data.get("retry_delay_ms")
            if data.get("error_status") == 429 and isinstance(delay_ms, int | float) and delay_ms > 0:
                rate_limit_wait = delay_ms / 1000
        elif isinstance(message, ResultMessage):
            outcome.usage = Usage.from_dict(message.usage or stream_usage)
            outcome.cost_usd = message.total_cost_usd
            if message.stop_reason:
                outcome.stop_reason = message.stop_reason
            if assistant_error is not None or (message.is_error and message.subtype != "error_max_turns"):
                raise _result_error(
                    message, assistant_error, token_setting, rate_limit_wait, outcome.rate_limit, cloud=cloud
                )
            outcome.finish_reason = FINISH_REASONS.get(outcome.stop_reason or "end_turn", "stop")
            if structured and not outcome.parts and message.structured_output is not None:
                text = json.dumps(message.structured_output, separators=(",", ":"))
                outcome.parts.append(text)
                yield Delta(text=text)
            outcome.tool_calls = calls.done()
            if outcome.tool_calls:
                outcome.finish_reason = "tool_calls"
            return
        if tail:
            outcome.parts.append(tail)
            yield Delta(text=tail)
    raise CLIFailedError(
        "Claude Code ended without a result. Set LITELLM_CLAUDE_CODE_LOG_LEVEL=DEBUG to log the CLI's stderr."
    )
