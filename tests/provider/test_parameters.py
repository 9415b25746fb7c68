"""The parameter table, reasoning levels, stop emulation, subscription windows: units, no CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import litellm
import pytest
from claude_agent_sdk import AssistantMessage, ThinkingBlock
from claude_agent_sdk.types import RateLimitEvent, RateLimitInfo, StreamEvent
from litellm_claude_code._errors import BadRequestError, RateLimitedError
from litellm_claude_code._parameters import (
    BY_NAME,
    PARAMETERS,
    Kind,
    drop_requested,
    not_applied_in,
    parameters_table,
    screen,
)
from litellm_claude_code._reasoning import LEVELS, Reasoning, reasoning_of, reasoning_table
from litellm_claude_code._stops import StopCutter, stops_of
from litellm_claude_code._streaming import Delta, Outcome, deltas

from tests.support.sdk_messages import TOKEN_SETTING, Source, message_start, result, text_delta

REPO = Path(__file__).resolve().parents[2]
CONFIGURATION_DOC = REPO / "docs" / "configuration.md"

OPENAI_PARAMETERS = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n", "stop",
    "temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "seed", "user", "metadata", "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions",
    "function_call", "reasoning_effort", "thinking", "modalities", "audio", "prediction", "service_tier", "store",
    "web_search_options", "timeout",
}  # fmt: skip


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_every_openai_parameter_is_in_the_table() -> None:
    assert set(BY_NAME) >= OPENAI_PARAMETERS
    assert len(BY_NAME) == len(PARAMETERS)


def test_the_docs_show_the_table_from_the_code() -> None:
    doc = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert between(doc, "<!-- parameters-table:start -->", "<!-- parameters-table:end -->") == parameters_table()
    assert between(doc, "<!-- reasoning-table:start -->", "<!-- reasoning-table:end -->") == reasoning_table()


@pytest.mark.parametrize("name", [p.name for p in PARAMETERS if p.kind is Kind.UNAVAILABLE])
def test_a_parameter_claude_code_cannot_honour_is_refused_by_name(name: str) -> None:
    with pytest.raises(BadRequestError) as info:
        screen({name: 0.5}, drop=False)
    assert info.value.status_code == 400
    assert str(info.value).startswith(f"{name}: not available through Claude Code")
    assert "drop_params" in str(info.value)
    assert screen({name: 0.5}, drop=True) == [name]


@pytest.mark.parametrize("name", [p.name for p in PARAMETERS if p.kind is Kind.NOT_APPLIED])
def test_a_parameter_that_changes_no_shape_is_served_and_reported(name: str) -> None:
    assert screen({name: 0.5}, drop=False) == [name]
    assert screen({name: 0.5}, drop=True) == [name]
    assert not_applied_in({name: 0.5, "model": "sonnet"}) == [name]


def test_what_agents_send_by_default_is_served() -> None:
    """aider: temperature 0; the OpenAI cookbook: temperature and seed; Codex: store false, prompt_cache_key."""
    assert screen({"temperature": 0, "stream": True}, drop=False) == ["temperature"]
    assert screen({"temperature": 0.2, "seed": 7, "top_p": 1}, drop=False) == ["seed", "temperature", "top_p"]
    assert screen({"store": False, "prompt_cache_key": "k"}, drop=False) == ["prompt_cache_key"]


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("logprobs", True, "no log probabilities"),
        ("top_logprobs", 3, "no log probabilities"),
        ("audio", {"voice": "alloy", "format": "wav"}, "no audio output"),
        ("modalities", ["text", "audio"], "text is the only output"),
        ("logit_bias", {"1234": -100}, "bans or forces tokens"),
        ("web_search_options", {}, "would not be searched"),
    ],
)
def test_a_parameter_whose_absence_would_mislead_says_why(name: str, value: Any, why: str) -> None:
    with pytest.raises(BadRequestError, match=why):
        screen({name: value}, drop=False)
    assert screen({name: value}, drop=True) == [name]
    assert not_applied_in({name: value}) == [name]  # served: it was dropped


def test_harmless_values_and_honoured_parameters_pass() -> None:
    params = {"modalities": ["text"], "store": False, "max_tokens": 5, "stop": ["x"], "reasoning_effort": "low"}
    params |= {"logprobs": False, "top_logprobs": 0, "logit_bias": {}}
    assert screen(params, drop=False) == []
    assert not_applied_in(params) == []


def test_an_unknown_parameter_is_never_ignored() -> None:
    with pytest.raises(BadRequestError, match=r"^frobnicate: not available"):
        screen({"frobnicate": True}, drop=False)


def test_response_format_is_honoured_never_dropped() -> None:
    assert screen({"response_format": {"type": "json_object"}}, drop=True) == []


def test_drop_params_follows_litellms_setting_and_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm, "drop_params", False)
    assert not drop_requested({})
    assert drop_requested({"drop_params": True})
    monkeypatch.setattr(litellm, "drop_params", True)
    assert drop_requested(None)


# --------------------------------------------------------------------------- reasoning


def test_reasoning_levels_use_litellms_budgets() -> None:
    assert reasoning_of({"reasoning_effort": "low"}) == Reasoning(
        "low", litellm.constants.DEFAULT_REASONING_EFFORT_LOW_THINKING_BUDGET
    )
    assert reasoning_of({"reasoning_effort": "medium"}) == Reasoning("medium", 2048)
    assert reasoning_of({"reasoning_effort": "high"}) == Reasoning("high", 4096)
    assert reasoning_of({"thinking": {"type": "enabled", "budget_tokens": 3000}}) == Reasoning(None, 3000)
    assert reasoning_of({"thinking": {"type": "disabled"}}) == Reasoning("low", 0)
    assert reasoning_of({}) == Reasoning()
    assert set(LEVELS) >= {"low", "medium", "high"}


@pytest.mark.parametrize(
    "params",
    [{"reasoning_effort": "extreme"}, {"thinking": {"type": "enabled"}}, {"thinking": "on"},
     {"reasoning_effort": "low", "thinking": {"type": "disabled"}}],
)  # fmt: skip
def test_bad_reasoning_is_a_400(params: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        reasoning_of(params)


def event(data: dict[str, Any]) -> StreamEvent:
    return StreamEvent(uuid="u", session_id="s", event=data)


def thinking_delta(text: str) -> StreamEvent:
    return event({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": text}})


async def all_deltas(messages: list[Any], outcome: Outcome) -> list[Delta]:
    return [d async for d in deltas(Source(messages).__aiter__(), outcome, token_setting=TOKEN_SETTING)]


async def test_thinking_streams_as_reasoning_before_the_answer() -> None:
    outcome = Outcome()
    messages = [
        message_start(),
        thinking_delta("let me "),
        thinking_delta("think"),
        text_delta("42"),
        AssistantMessage(content=[ThinkingBlock(thinking="let me think", signature="sig")], model="m"),
        result(),
    ]
    got = await all_deltas(messages, outcome)
    assert got == [Delta(reasoning="let me "), Delta(reasoning="think"), Delta(text="42")]
    assert outcome.reasoning == "let me think" and outcome.text == "42"


async def test_thinking_without_deltas_comes_from_the_assistant_message() -> None:
    outcome = Outcome()
    messages = [
        message_start(),
        AssistantMessage(content=[ThinkingBlock(thinking="hmm", signature="s")], model="m"),
        result(),
    ]
    assert await all_deltas(messages, outcome) == [Delta(reasoning="hmm")]


# --------------------------------------------------------------------------- stop


def cut(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    cutter = StopCutter(stops)
    out = "".join(cutter.feed(piece) for piece in pieces)
    return out + cutter.flush(), cutter.stopped


def test_the_answer_is_cut_before_the_first_stop_string() -> None:
    assert cut(("END",), ["one two E", "ND three"]) == ("one two ", True)
    assert cut(("b", "zz"), ["azz", "b"]) == ("a", True)
    assert cut(("END",), ["one E", "nd"]) == ("one End", False)  # held back, then released
    assert cut(("\n\n",), ["a\n", "b"]) == ("a\nb", False)


def test_stop_values() -> None:
    assert stops_of("x") == ("x",)
    assert stops_of(["a", ""]) == ("a",)
    assert stops_of(None) == ()
    with pytest.raises(BadRequestError):
        stops_of([1])
    with pytest.raises(BadRequestError):
        stops_of(["a", "b", "c", "d", "e"])


# --------------------------------------------------------------------------- subscription windows


def rate_limit_event(status: str, utilization: float, reset: int) -> RateLimitEvent:
    window = {"utilization": utilization, "resetsAt": reset, "status": status}
    raw = {"status": status, "resetsAt": reset, "rateLimitType": "five_hour", "unifiedWindows": {"five_hour": window}}
    info = RateLimitInfo(status=status, resets_at=reset, rate_limit_type="five_hour", raw=raw)  # type: ignore[arg-type]
    return RateLimitEvent(rate_limit_info=info, uuid="u", session_id="s")


async def test_a_refusal_by_a_subscription_window_is_a_429_until_the_reset() -> None:
    reset = int(time.time()) + 3600
    refused = result(is_error=True, api_error_status=429, text="You've hit your 5-hour limit")
    messages = [
        rate_limit_event("rejected", 1.0, reset),
        AssistantMessage(content=[], model="m", error="rate_limit"),
        refused,
    ]
    outcome = Outcome()
    with pytest.raises(RateLimitedError) as info:
        await all_deltas(messages, outcome)
    assert "5-hour" in str(info.value) and "five_hour" in str(info.value)
    assert 3500 <= int(info.value.headers["retry-after"]) <= 3600
    assert outcome.rate_limit is not None and outcome.rate_limit.log_field() == "five_hour:1.00"


async def test_the_utilisation_seen_is_kept_for_the_log() -> None:
    outcome = Outcome()
    messages = [rate_limit_event("allowed", 0.82, int(time.time()) + 60), message_start(), text_delta("x"), result()]
    await all_deltas(messages, outcome)
    assert outcome.rate_limit is not None and outcome.rate_limit.log_field() == "five_hour:0.82"
