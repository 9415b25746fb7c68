"""The CLI's messages to text deltas and one outcome (``streaming.text_deltas``).

The SDK message objects are built directly (tests/support/sdk_messages.py): this is a unit test of our mapping, and
the integration tests show that the real CLI produces these shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from claude_agent_sdk.types import Message
from litellm_claude_code._errors import (
    BadRequestError,
    ClaudeCodeError,
    CLIFailedError,
    RateLimitedError,
    RequestTimeoutError,
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamServerError,
)
from litellm_claude_code._streaming import FINISH_REASONS, Outcome, text_deltas

from tests.support.sdk_messages import (
    MODEL,
    TOKEN_SETTING,
    Source,
    assistant,
    event,
    message_delta,
    message_start,
    message_stop,
    result,
    text_delta,
)


async def collect(messages: Sequence[Message], outcome: Outcome | None = None) -> tuple[list[str], Outcome]:
    outcome = outcome if outcome is not None else Outcome()
    deltas = [d async for d in text_deltas(Source(messages).__aiter__(), outcome, token_setting=TOKEN_SETTING)]
    return deltas, outcome


async def error_of(messages: Sequence[Message]) -> tuple[ClaudeCodeError, list[str]]:
    """The error ``text_deltas`` raises for ``messages``, and the text yielded before it."""
    yielded: list[str] = []
    with pytest.raises(ClaudeCodeError) as info:
        async for delta in text_deltas(Source(messages).__aiter__(), Outcome(), token_setting=TOKEN_SETTING):
            yielded.append(delta)
    return info.value, yielded


def normal_turn(*parts: str) -> list[Message]:
    """What the CLI sends for one answer with partial messages on."""
    return [
        message_start(),
        *(text_delta(p) for p in parts),
        assistant("".join(parts)),
        message_delta("end_turn", {"output_tokens": len(parts)}),
        message_stop(),
        result(),
    ]


# --------------------------------------------------------------------------- text


async def test_deltas_are_yielded_as_they_arrive() -> None:
    messages = normal_turn("Hel", "lo ", "world")
    source = Source(messages)
    stream = text_deltas(source.__aiter__(), Outcome(), token_setting=TOKEN_SETTING)
    assert await anext(stream) == "Hel"
    assert source.pulled == 2  # message_start and the first delta only: nothing was waited for
    assert await anext(stream) == "lo "
    assert source.pulled == 3
    assert await anext(stream) == "world"
    assert source.pulled == 4
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert source.pulled == len(messages)


async def test_full_assistant_message_after_the_deltas_is_not_repeated() -> None:
    deltas, outcome = await collect(normal_turn("The answer ", "is ", "42."))
    assert deltas == ["The answer ", "is ", "42."]
    assert outcome.text == "The answer is 42."
    assert outcome.model == MODEL


async def test_assistant_message_without_deltas_is_used_once() -> None:
    deltas, _ = await collect([assistant("whole answer"), result()])
    assert deltas == ["whole answer"]


async def test_non_text_deltas_are_ignored() -> None:
    thinking = event({"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "hmm"}})
    deltas, _ = await collect([message_start(), thinking, text_delta("yes"), assistant("yes"), result()])
    assert deltas == ["yes"]


async def test_retry_with_the_same_text_sends_only_the_missing_tail() -> None:
    # A broken stream: "Hello wor" arrived, then the CLI fetched the answer again without streaming.
    deltas, _ = await collect(
        [message_start(), text_delta("Hello "), text_delta("wor"), assistant("Hello world"), result()]
    )
    assert deltas == ["Hello ", "wor", "ld"]
    assert "".join(deltas) == "Hello world"


async def test_restarted_stream_with_the_same_text_is_not_repeated() -> None:
    messages = [message_start(), text_delta("Hello "), message_start(), text_delta("Hello "), text_delta("there")]
    deltas, _ = await collect([*messages, assistant("Hello there"), result()])
    assert deltas == ["Hello ", "there"]


async def test_changed_text_after_a_retry_raises() -> None:
    error, yielded = await error_of([message_start(), text_delta("Hello wor"), assistant("Goodbye"), result()])
    assert isinstance(error, UpstreamServerError) and error.status_code == 502
    assert "changed after a retry" in str(error)
    assert yielded == ["Hello wor"]


async def test_changed_text_in_a_restarted_stream_raises() -> None:
    error, yielded = await error_of([message_start(), text_delta("Yes, "), message_start(), text_delta("No")])
    assert isinstance(error, UpstreamServerError)
    assert yielded == ["Yes, "]


async def test_stream_without_a_result_is_an_error() -> None:
    error, yielded = await error_of([message_start(), text_delta("partial")])
    assert isinstance(error, CLIFailedError) and error.status_code == 502
    assert yielded == ["partial"]


# --------------------------------------------------------------------------- finish reason and usage


@pytest.mark.parametrize(("stop_reason", "finish_reason"), [("end_turn", "stop"), ("stop_sequence", "stop")])
async def test_finish_reason_from_the_result(stop_reason: str, finish_reason: str) -> None:
    messages = [
        message_start(),
        text_delta("x"),
        message_delta(stop_reason),
        message_stop(),
        result(stop_reason=stop_reason),
    ]
    _, outcome = await collect(messages)
    assert outcome.stop_reason == stop_reason
    assert outcome.finish_reason == finish_reason


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"), [("max_tokens", "length"), ("refusal", "content_filter"), ("tool_use", "stop")]
)
async def test_final_stop_reasons_end_the_answer_without_waiting_for_the_cli(
    stop_reason: str, finish_reason: str
) -> None:
    # After these the CLI would send a follow-up request of its own; the answer is already complete.
    messages = [
        message_start({"input_tokens": 11, "cache_read_input_tokens": 4}),
        text_delta("cut"),
        message_delta(stop_reason, {"output_tokens": 9}),
        message_stop(),
        message_start(),
        text_delta("follow-up text that must not reach the client"),
        result(stop_reason="end_turn"),
    ]
    source = Source(messages)
    outcome = Outcome()
    deltas = [d async for d in text_deltas(source.__aiter__(), outcome, token_setting=TOKEN_SETTING)]
    assert deltas == ["cut"]
    assert source.pulled == 4  # nothing after message_stop was read
    assert outcome.finish_reason == finish_reason
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens, outcome.usage.cache_read_input_tokens) == (
        11,
        9,
        4,
    )


def test_finish_reason_table() -> None:
    assert FINISH_REASONS["end_turn"] == "stop"
    assert FINISH_REASONS["stop_sequence"] == "stop"
    assert FINISH_REASONS["max_tokens"] == "length"
    assert FINISH_REASONS["refusal"] == "content_filter"


async def test_unknown_stop_reason_maps_to_stop() -> None:
    _, outcome = await collect([assistant("x"), result(stop_reason="something_new")])
    assert outcome.finish_reason == "stop"
    assert outcome.stop_reason == "something_new"


async def test_usage_from_the_result_includes_cache_tokens() -> None:
    usage = {
        "input_tokens": 5,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens_details": {"thinking_tokens": 3},
    }
    messages = [message_start({"input_tokens": 999}), text_delta("hi"), assistant("hi"), result(usage=usage, cost=0.5)]
    _, outcome = await collect(messages)
    assert outcome.usage.input_tokens == 5
    assert outcome.usage.output_tokens == 7
    assert outcome.usage.prompt_tokens == 125  # OpenAI's prompt tokens include the cached ones
    assert outcome.usage.total_tokens == 132
    assert outcome.usage.as_openai() == {
        "prompt_tokens": 125,
        "completion_tokens": 7,
        "total_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 100},
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "completion_tokens_details": {"reasoning_tokens": 3},  # thinking is counted in the output tokens
    }
    assert outcome.cost_usd == 0.5


async def test_usage_falls_back_to_the_stream_when_the_result_has_none() -> None:
    messages = [
        message_start({"input_tokens": 8, "cache_creation_input_tokens": 2}),
        text_delta("hi"),
        message_delta("end_turn", {"output_tokens": 1}),
        message_stop(),
        result(usage={}),
    ]
    _, outcome = await collect(messages)
    assert (outcome.usage.prompt_tokens, outcome.usage.output_tokens) == (10, 1)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_class", "client_status"),
    [
        (401, UpstreamAuthError, 401),
        (403, UpstreamAuthError, 401),
        (429, RateLimitedError, 429),
        (500, UpstreamServerError, 502),
        (529, UpstreamOverloadedError, 503),
        (400, BadRequestError, 400),
    ],
)
async def test_result_with_an_api_error_status(status: int, error_class: type, client_status: int) -> None:
    messages = [
        assistant("API Error", error="unknown"),
        result(
            is_error=True, subtype="success", stop_reason=None, api_error_status=status, text=f"API Error: {status}"
        ),
    ]
    error, yielded = await error_of(messages)
    assert type(error) is error_class
    assert error.status_code == client_status
    assert yielded == []  # the error text is not an answer
    if status in (401, 403):
        assert TOKEN_SETTING in str(error)
    if status == 529:
        assert error.headers == {"retry-after": "5"}


@pytest.mark.parametrize(
    ("assistant_error", "error_class", "client_status"),
    [
        ("authentication_failed", UpstreamAuthError, 401),
        ("rate_limit", RateLimitedError, 429),
        ("server_error", UpstreamServerError, 502),
        ("overloaded", UpstreamOverloadedError, 503),
        ("invalid_request", BadRequestError, 400),
        ("something_new", CLIFailedError, 502),
    ],
)
async def test_assistant_error_strings(assistant_error: str, error_class: type, client_status: int) -> None:
    messages = [assistant("Error text", error=assistant_error), result(is_error=True, text="failed")]
    error, yielded = await error_of(messages)
    assert type(error) is error_class
    assert error.status_code == client_status
    assert yielded == []
    if assistant_error == "authentication_failed":
        assert TOKEN_SETTING in str(error)


async def test_assistant_error_wins_even_if_the_result_says_success() -> None:
    error, _ = await error_of([assistant("x", error="rate_limit"), result(is_error=False)])
    assert isinstance(error, RateLimitedError)


async def test_error_result_without_a_status_is_a_cli_failure() -> None:
    messages = [result(is_error=True, subtype="error_during_execution", errors=["boom", "again"])]
    error, _ = await error_of(messages)
    assert type(error) is CLIFailedError and error.status_code == 502
    assert "error_during_execution" in str(error) and "boom; again" in str(error)


async def test_max_turns_result_is_not_an_error() -> None:
    deltas, outcome = await collect([assistant("done"), result(is_error=True, subtype="error_max_turns")])
    assert deltas == ["done"]
    assert outcome.finish_reason == "stop"


async def test_error_detail_is_bounded() -> None:
    error, _ = await error_of([result(is_error=True, api_error_status=500, text="x" * 10_000)])
    assert len(str(error)) < 700


@pytest.mark.parametrize("assistant_error", [None, "server_error", "unknown"])
async def test_an_upstream_that_never_answered_is_a_gateway_timeout(assistant_error: str | None) -> None:
    """The CLI's API_TIMEOUT_MS ran out (a black hole upstream): 504, and not in words LiteLLM makes a 408 of."""
    detail = (
        "Request timed out. If the API is slow to answer, or a proxy or gateway holds responses, "
        "set API_TIMEOUT_MS above 4000."
    )
    messages = (
        [assistant("", error=assistant_error), result(is_error=True, subtype="error_during_execution", text=detail)]
        if assistant_error
        else [result(is_error=True, subtype="error_during_execution", text=detail)]
    )
    error, parts = await error_of(messages)
    assert isinstance(error, RequestTimeoutError) and error.status_code == 504
    assert "request timed out" not in str(error).lower() and "API_TIMEOUT_MS" in str(error)
    assert parts == []
