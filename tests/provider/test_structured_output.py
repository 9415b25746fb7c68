"""Structured output through the real stack: ``response_format`` answered with JSON matching it.

The real LiteLLM proxy, the provider, the SDK and the bundled CLI run against the fake upstream,
which, offered the CLI's ``StructuredOutput`` tool, calls it with an input generated from the
schema (or a scripted one). Assertions are on what the official ``openai`` client received, on
what reached the upstream (the fake's log) and on the CLI processes' command lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive
from litellm_claude_code.testing._structured import example

from tests.support.proxy_http import assert_no_traceback, error_message, log_fields, post, user
from tests.support.stack import Proxy, wait_until
from tests.support.upstream import marked

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {
        "city_5c1e": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "coastal": {"type": "boolean"},
        "tags": {"type": "array", "items": {"enum": ["capital", "port"]}},
    },
    "required": ["city_5c1e", "population", "coastal", "tags"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}


def offered(request: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: t for t in request["body"].get("tools") or []}


@pytest.fixture(autouse=True)
def settled(proxy: Proxy) -> Iterator[None]:
    yield
    assert wait_until(lambda: len(proxy.claude_processes()) <= 2, 15, interval=0.2), "CLI processes left running"


def test_json_schema_gives_json_matching_it(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "structured-plain-81d2"
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": marker}], response_format=FORMAT
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    content = json.loads(choice.message.content or "")
    jsonschema.validate(content, SCHEMA)
    assert content == example(SCHEMA)  # the call's input, not Claude's text before it
    (request,) = marked(fake, marker)
    assert offered(request)["StructuredOutput"]["input_schema"] == SCHEMA
    assert sorted(offered(request)) == ["StructuredOutput"]


def test_streamed_json_schema_arrives_in_pieces(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    # The call's input comes in 12-character pieces 0.15 s apart: apart enough that pieces the
    # proxy had no time to send on their own (merged, by design, on a loaded machine) stay several.
    prompt = f"structured-stream-0a4f {directive(text='', token_delay=0.15)}"
    stream = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": prompt}], response_format=FORMAT, stream=True
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(pieces) >= 3, f"the JSON did not stream in pieces: {pieces}"
    content = json.loads("".join(pieces))
    jsonschema.validate(content, SCHEMA)
    assert content == example(SCHEMA)
    assert reasons == ["stop"]


def test_json_object_gives_a_json_object(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "structured-object-3b9c"
    prompt = f"{marker} {directive(text='Here:', tool_use={'name': 'StructuredOutput', 'input': {'k': [1, 2]}})}"
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": prompt}], response_format={"type": "json_object"}
    )
    assert json.loads(response.choices[0].message.content or "") == {"k": [1, 2]}
    (request,) = marked(fake, marker)
    assert offered(request)["StructuredOutput"]["input_schema"] == {"type": "object"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_output_that_violates_the_schema_is_a_502(proxy: Proxy, fake: FakeAnthropicServer, stream: bool) -> None:
    bad = {"city_5c1e": "Oslo", "population": "many", "coastal": True, "tags": []}
    prompt = "structured-bad " + directive(text="", tool_use={"name": "StructuredOutput", "input": bad})
    if not stream:
        response = post(proxy, {"model": "sonnet", "messages": user(prompt), "response_format": FORMAT})
        assert response.status_code == 502, response.text
        assert "does not match the response_format schema" in error_message(response)
        assert_no_traceback(response.text)
        return
    with pytest.raises(openai.APIError, match="does not match the response_format schema"):
        list(
            proxy.client().chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": prompt}], response_format=FORMAT, stream=True
            )
        )


def test_the_schema_is_on_no_command_line(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = proxy.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "structured-argv"}], response_format=FORMAT
    )
    assert "city_5c1e" in (response.choices[0].message.content or "")
    processes = proxy.claude_processes()
    assert processes
    for process in processes:
        cmdline = " ".join(process.cmdline())
        assert "city_5c1e" not in cmdline and "json-schema" not in cmdline


def test_a_plain_request_after_a_structured_one_is_offered_no_structured_output(
    proxy: Proxy, fake: FakeAnthropicServer
) -> None:
    client = proxy.client()
    client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "structured-first"}], response_format=FORMAT
    )
    marker = "plain-after-structured-6e0d"
    response = client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": marker}])
    assert response.choices[0].message.content
    (request,) = marked(fake, marker)
    assert "StructuredOutput" not in offered(request)


def test_the_next_turn_sees_the_json_the_client_got(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    """The CLI held a StructuredOutput call; the turn was cut off, so Claude's next prompt has the content."""
    client = proxy.client()
    first = [{"role": "user", "content": "structured-turn-one"}]
    answer = client.chat.completions.create(model="sonnet", messages=first, response_format=FORMAT)
    content = answer.choices[0].message.content or ""
    marker = "structured-turn-two-9f"
    # The cut runs after the answer was sent (engine._drop_turn); an agent's next request comes
    # after it has read the answer. Until the cut is done the process is not idle (no_idle).
    time.sleep(2)
    history = [*first, {"role": "assistant", "content": content}, {"role": "user", "content": marker}]
    second = client.chat.completions.with_raw_response.create(model="sonnet", messages=history, response_format=FORMAT)
    jsonschema.validate(json.loads(second.parse().choices[0].message.content or ""), SCHEMA)
    # The process that answered the first turn (cut back to nothing) took the second: warm.
    fields = log_fields(proxy, second.headers["x-litellm-call-id"])
    assert (fields["warm"], fields["conversation"]) == ("true", "rebuilt"), str(sorted(fields.items()))
    (request,) = marked(fake, marker)
    messages = request["body"]["messages"]
    assistant = [m for m in messages if m["role"] == "assistant"]
    assert json.dumps(assistant).count("StructuredOutput") == 0
    texts = [b.get("text") for m in assistant for b in m["content"] if isinstance(b, dict) and b.get("type") == "text"]
    assert texts == [content]


def test_response_format_with_tools_is_refused(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    body = {"model": "sonnet", "messages": user("x"), "response_format": FORMAT, "tools": [tool]}
    response = post(proxy, body)
    assert response.status_code == 400
    assert "response_format with tools is not supported" in error_message(response)
    assert not fake.messages_requests()


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        ({"type": "xml"}, "response_format.type must be text, json_object or json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "must be a JSON Schema of type 'object'"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "required": 3}}},
            "is not a valid JSON Schema",
        ),
    ],
)
def test_a_bad_response_format_is_a_400(
    proxy: Proxy, fake: FakeAnthropicServer, response_format: dict[str, Any], message: str
) -> None:
    response = post(proxy, {"model": "sonnet", "messages": user("x"), "response_format": response_format})
    assert response.status_code == 400
    assert message in error_message(response)
    assert not fake.messages_requests()


def test_text_is_plain_text(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    marker = "structured-text-2c"
    response = post(proxy, {"model": "sonnet", "messages": user(marker), "response_format": {"type": "text"}})
    assert response.status_code == 200, response.text
    (request,) = marked(fake, marker)
    assert "StructuredOutput" not in offered(request)
