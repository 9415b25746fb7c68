"""The SDK's messages as the CLI sends them, built directly: for unit tests of our mapping.

The integration tests show that the real CLI produces these shapes; the unit tests
(``test_streaming.py``, ``test_parameters.py``) feed these to the provider's code without a CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from claude_agent_sdk.types import AssistantMessage, Message, ResultMessage, StreamEvent, TextBlock, ToolUseBlock
from litellm_claude_code._tools import PREFIX

MODEL = "claude-sonnet-test-1"
TOKEN_SETTING = "CLAUDE_CODE_OAUTH_TOKEN_FILE"


def event(data: dict[str, Any]) -> StreamEvent:
    return StreamEvent(uuid="uuid-1", session_id="session-1", event=data)


def message_start(usage: dict[str, Any] | None = None) -> StreamEvent:
    return event({"type": "message_start", "message": {"model": MODEL, "usage": usage or {"input_tokens": 3}}})


def text_delta(text: str) -> StreamEvent:
    return event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def message_delta(stop_reason: str, usage: dict[str, Any] | None = None) -> StreamEvent:
    return event({"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage or {}})


def message_stop() -> StreamEvent:
    return event({"type": "message_stop"})


def assistant(text: str, error: str | None = None) -> AssistantMessage:
    return AssistantMessage(content=[TextBlock(text=text)], model=MODEL, error=error)  # type: ignore[arg-type]


def result(
    *,
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    is_error: bool = False,
    subtype: str = "success",
    api_error_status: int | None = None,
    errors: list[str] | None = None,
    text: str | None = None,
    cost: float | None = 0.0123,
) -> ResultMessage:
    return ResultMessage(
        subtype=subtype,
        duration_ms=120,
        duration_api_ms=100,
        is_error=is_error,
        num_turns=1,
        session_id="session-1",
        stop_reason=stop_reason,
        total_cost_usd=cost,
        usage=usage if usage is not None else {"input_tokens": 3, "output_tokens": 2},
        result=text,
        errors=errors,
        api_error_status=api_error_status,
    )


class Source:
    """An async message stream that records how many messages were pulled from it."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self.messages = list(messages)
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[Message]:
        for message in self.messages:
            self.pulled += 1
            yield message


# A client's two tools (OpenAI's shape) and a turn that calls both, as the CLI streams it with them.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}


def tool_turn(*, deferred: bool = True) -> list[Message]:
    weather = PREFIX + "get_weather"
    return [
        event({"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 5}}}),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        AssistantMessage(content=[TextBlock("Checking.")], model="m"),
        event(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t1", "name": weather},
            }
        ),
        event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        event(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}}
        ),
        event(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ty":"P"}'},
            }
        ),
        AssistantMessage(content=[ToolUseBlock("t1", weather, {"city": "P"})], model="m"),
        event(
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "t2", "name": PREFIX + "get_time"},
            }
        ),
        AssistantMessage(content=[ToolUseBlock("t2", PREFIX + "get_time", {})], model="m"),
        event({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        event({"type": "message_stop"}),
        ResultMessage(
            subtype="success",
            duration_ms=1,
            duration_api_ms=1,
            is_error=False,
            num_turns=1,
            session_id="s",
            stop_reason="tool_deferred" if deferred else "tool_use",
            usage={"input_tokens": 5, "output_tokens": 9},
        ),
    ]
