"""Structured output in pieces: reading ``response_format``, checking the answer, the initialize
line, the mapping of a StructuredOutput call onto content, and the fake's schema examples."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from claude_agent_sdk import AssistantMessage, ResultMessage, TextBlock, ToolUseBlock
from claude_agent_sdk.types import Message, StreamEvent
from litellm_claude_code._errors import BadRequestError, UpstreamServerError
from litellm_claude_code._streaming import Outcome, deltas
from litellm_claude_code._structured import check, output_schema, with_schema
from litellm_claude_code.testing._structured import example, offered_schema

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_response_format_kinds() -> None:
    assert output_schema(None) is None
    assert output_schema({"type": "text"}) is None
    assert json.loads(output_schema({"type": "json_object"}) or "") == {"type": "object"}
    schema = output_schema({"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}})
    assert json.loads(schema or "") == SCHEMA
    for bad in (
        {"type": "yaml"},
        "json",
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}},
    ):
        with pytest.raises(BadRequestError):
            output_schema(bad)


def test_check_refuses_what_does_not_match() -> None:
    check('{"a": 1}', json.dumps(SCHEMA))
    with pytest.raises(UpstreamServerError, match="not valid JSON"):
        check('{"a": ', json.dumps(SCHEMA))
    with pytest.raises(UpstreamServerError, match="does not match the response_format schema"):
        check('{"a": "one"}', json.dumps(SCHEMA))


def test_only_the_initialize_request_gets_the_schema() -> None:
    init = json.dumps(
        {"type": "control_request", "request_id": "r1", "request": {"subtype": "initialize", "hooks": None}}
    )
    line = with_schema(init + "\n", json.dumps(SCHEMA))
    assert json.loads(line)["request"]["jsonSchema"] == SCHEMA and line.endswith("\n")
    other = json.dumps({"type": "control_request", "request": {"subtype": "interrupt"}}) + "\n"
    assert with_schema(other, json.dumps(SCHEMA)) == other
    user = json.dumps({"type": "user", "message": {"role": "user", "content": "initialize"}}) + "\n"
    assert with_schema(user, json.dumps(SCHEMA)) == user


def _event(event: dict[str, Any]) -> StreamEvent:
    return StreamEvent(uuid="u", session_id="s", event=event)


async def _messages(items: list[Message]) -> AsyncIterator[Message]:
    for item in items:
        yield item


async def test_the_call_input_streams_as_content_and_text_is_dropped() -> None:
    items: list[Message] = [
        _event({"type": "message_start", "message": {"model": "m", "usage": {}}}),
        _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        _event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Sure."}}),
        _event(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t", "name": "StructuredOutput"},
            }
        ),
        _event(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a"'}}
        ),
        _event(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ": 1}"}}
        ),
        AssistantMessage(content=[TextBlock("Sure."), ToolUseBlock("t", "StructuredOutput", {"a": 1})], model="m"),
        _event({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
        _event({"type": "message_stop"}),
    ]
    outcome = Outcome()
    got = [d.text async for d in deltas(_messages(items), outcome, token_setting="X", structured=True)]
    assert got == ['{"a"', ": 1}"] and outcome.text == '{"a": 1}'
    assert outcome.finish_reason == "stop"


async def test_a_call_without_stream_events_or_only_a_result_is_the_content() -> None:
    def result(value: dict[str, Any]) -> ResultMessage:
        return ResultMessage(
            subtype="success",
            duration_ms=1,
            duration_api_ms=1,
            is_error=False,
            num_turns=1,
            session_id="s",
            structured_output=value,
        )

    whole = [AssistantMessage(content=[ToolUseBlock("t", "StructuredOutput", {"a": 2})], model="m"), result({"a": 2})]
    outcome = Outcome()
    assert [d.text async for d in deltas(_messages(whole), outcome, token_setting="X", structured=True)] == ['{"a":2}']
    outcome = Outcome()
    only = [d.text async for d in deltas(_messages([result({"a": 3})]), outcome, token_setting="X", structured=True)]
    assert only == ['{"a":3}']


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,
        {"type": "object", "properties": {"s": {"type": "string", "minLength": 12}, "n": {"type": "number"}}},
        {"type": "object", "properties": {"l": {"type": "array", "items": {"type": "boolean"}, "minItems": 2}}},
        {
            "type": "object",
            "properties": {"e": {"enum": ["x", "y"]}, "c": {"const": 4}, "o": {"type": ["null", "integer"]}},
        },
        {"type": "object", "properties": {"i": {"type": "integer", "minimum": 5, "maximum": 9}}},
    ],
)
def test_the_fake_generates_valid_input(schema: dict[str, Any]) -> None:
    jsonschema.validate(example(schema), schema)
    assert offered_schema([{"name": "StructuredOutput", "input_schema": schema}]) == schema
    assert offered_schema([{"name": "other"}]) is None
