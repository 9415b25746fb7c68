"""Client-supplied schemas, unit by unit: the bounded check (time, size, patterns, ``$ref``) of
answers and strict tool calls, and the request limits on tools and schemas (with their settings).

The stalls are measured against Python's ``re`` on the same patterns: 26 characters take ``re``
seconds (each more doubles it), so a check that fell back to it fails these tests by its time.
``test_schema_stall.py`` drives the same attack through the real proxy.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litellm_claude_code import _structured
from litellm_claude_code._errors import BadRequestError, UpstreamServerError
from litellm_claude_code._messages import convert_messages
from litellm_claude_code._settings import PREFIX, Limits, Settings, SettingsError
from litellm_claude_code._structured import CHECK_SECONDS, MAX_CHECKED_BYTES, check, output_schema
from litellm_claude_code._tools import PREFIX as TOOL_PREFIX
from litellm_claude_code._tools import ToolCall, check_strict, tool_request

# A check may hold the loop CHECK_SECONDS; this much more is allowed for a loaded machine.
SLACK = 3.0  # a busy 2-core host overshoots the deadline; an unbounded check takes minutes to days
EVIL = "a" * 26 + "!"  # seconds for re on the patterns below; 40 (the integration test's) would take days


def fmt(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def timed(work: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        work()
    except (BadRequestError, UpstreamServerError) as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def user(text: str) -> Any:
    return convert_messages([{"role": "user", "content": text}])


@pytest.fixture(autouse=True)
def no_limit_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_TOOLS", "MAX_TOOL_SCHEMA_BYTES", "MAX_RESPONSE_SCHEMA_BYTES"):
        monkeypatch.delenv(PREFIX + name, raising=False)


# --------------------------------------------------------------------------- patterns


DRAFTS = {
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "07": "http://json-schema.org/draft-07/schema#",
}


def pattern_schemas(pattern: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each place jsonschema matches a pattern: (schema, an answer that makes it match EVIL)."""
    return {
        "pattern": ({"properties": {"s": {"type": "string", "pattern": pattern}}}, {"s": EVIL}),
        "patternProperties": ({"patternProperties": {pattern: {"type": "string"}}}, {EVIL: "x"}),
        "additionalProperties": (
            {"patternProperties": {pattern: {"type": "string"}}, "additionalProperties": False},
            {EVIL: "x"},
        ),
        "propertyNames": ({"propertyNames": {"pattern": pattern}}, {EVIL: "x"}),
    }


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("place", list(pattern_schemas("")))
def test_a_pattern_that_backtracks_is_cut_off_at_the_deadline(draft: str, place: str) -> None:
    schema, answer = pattern_schemas("^(a|a)+$")[place]
    schema_json = output_schema(fmt({"$schema": DRAFTS[draft], "type": "object", **schema}))
    assert schema_json is not None
    took, error = timed(lambda: check(json.dumps(answer), schema_json))
    assert took < CHECK_SECONDS + SLACK, f"the check held the loop {took:.2f} s"
    assert isinstance(error, UpstreamServerError) and error.status_code == 502
    assert "the pattern '^(a|a)+$' ran past the 1 s a check may take on a 27-character string" in error.message
    assert "the answer was discarded" in error.message and "Traceback" not in error.message


@pytest.mark.parametrize("place", list(pattern_schemas("")))
def test_the_nested_quantifier_of_the_issue_is_a_plain_mismatch_in_no_time(place: str) -> None:
    """``regex`` does not backtrack on ``^(a+)+$`` at all: the answer simply does not match."""
    schema, answer = pattern_schemas("^(a+)+$")[place]
    schema_json = output_schema(fmt({"type": "object", **schema}))
    assert schema_json is not None
    took, error = timed(lambda: check(json.dumps(answer), schema_json))
    assert took < CHECK_SECONDS + SLACK, f"the check held the loop {took:.2f} s"
    if place == "patternProperties":
        assert error is None  # no key matches, so nothing is asked of any
        return
    assert isinstance(error, UpstreamServerError)
    assert "does not match the response_format schema" in error.message


def test_patterns_still_match_what_they_should() -> None:
    properties = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^x_\\d+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    names = {"type": "object", "propertyNames": {"pattern": "^(s|x_\\d+)$"}}
    for schema in (properties, names):
        schema_json = output_schema(fmt(schema))
        assert schema_json is not None
        check(json.dumps({"s": "a" * 40, "x_1": 3, "x_22": 4}), schema_json)
    for schema, bad, says in (
        (properties, {"s": "aab"}, "'aab' does not match '^(a+)+$'"),
        (properties, {"x_1": "three"}, "'three' is not of type 'integer'"),
        (properties, {"y": 1}, "'y' does not match any of the regexes: '^x_\\\\d+$'"),
        (names, {"y": 1}, "'y' does not match '^(s|x_\\\\d+)$'"),
    ):
        with pytest.raises(UpstreamServerError, match="does not match the response_format schema") as caught:
            check(json.dumps(bad), output_schema(fmt(schema)) or "")
        assert says in caught.value.message


def test_a_strict_tool_call_is_checked_under_the_same_deadline() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "strict": True,
            "parameters": {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a|a)+$"}}},
        },
    }
    tools = tool_request({"tools": [tool]}, user("hi")).tools
    calls = [ToolCall(f"t{n}", TOOL_PREFIX + "f", json.dumps({"s": EVIL})) for n in range(3)]
    took, error = timed(lambda: check_strict(tools, calls))
    assert took < CHECK_SECONDS + SLACK, f"three calls held the loop {took:.2f} s"  # one deadline for all
    assert isinstance(error, UpstreamServerError) and error.status_code == 502
    assert "Claude's call of f could not be checked against its strict schema" in error.message
    assert "'^(a|a)+$' ran past the 1 s" in error.message
    check_strict(tools, [ToolCall("t", TOOL_PREFIX + "f", '{"s": "aaaa"}')])


# --------------------------------------------------------------------------- other costs


def test_references_that_fan_out_stop_at_the_deadline() -> None:
    """No pattern at all: 2^30 paths through the $defs, each failing, would run for hours."""
    defs: dict[str, Any] = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(30)}
    defs["d30"] = {"type": "string"}
    schema_json = output_schema(fmt({"type": "object", "properties": {"a": {"$ref": "#/$defs/d0"}}, "$defs": defs}))
    assert schema_json is not None
    took, error = timed(lambda: check('{"a": 1}', schema_json))
    assert took < CHECK_SECONDS + SLACK, f"the check held the loop {took:.2f} s"
    assert isinstance(error, UpstreamServerError)
    assert "checking it took longer than the 1 s a check may take" in error.message


def test_unique_items_is_linear_and_keeps_json_schemas_equality() -> None:
    schema_json = output_schema(fmt({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}}))
    assert schema_json is not None
    many = json.dumps({"a": [{"k": n} for n in range(4_000)]})  # jsonschema: 8e6 comparisons of dicts
    took, error = timed(lambda: check(many, schema_json))
    assert error is None and took < CHECK_SECONDS + SLACK, (took, error)
    check('{"a": [1, true, "1", [1], {"b": 1}, 1.5]}', schema_json)
    for same in ("[1, 1.0]", '[{"x": 1, "y": 2}, {"y": 2, "x": 1.0}]', "[[1, [2]], [1, [2.0]]]", "[false, false]"):
        with pytest.raises(UpstreamServerError, match="has non-unique elements"):
            check(f'{{"a": {same}}}', schema_json)


def test_an_answer_too_large_or_too_deep_is_refused_without_parsing_it() -> None:
    schema_json = output_schema(fmt({"type": "object"}))
    assert schema_json is not None
    large = json.dumps({"s": "x" * MAX_CHECKED_BYTES})
    took, error = timed(lambda: check(large, schema_json))
    assert isinstance(error, UpstreamServerError) and took < SLACK
    assert f"more than the {MAX_CHECKED_BYTES:,} this gateway checks against a schema" in error.message
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(UpstreamServerError, match="nested too deeply to check"):
        check(deep, schema_json)
    nested = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/n"}},
        "$defs": {"n": {"items": {"$ref": "#/$defs/n"}}},
    }
    with pytest.raises(UpstreamServerError, match="nested too deeply to check"):
        check('{"a": ' + "[" * 500 + "]" * 500 + "}", json.dumps(nested))


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def test_a_remote_ref_is_never_fetched(web_server: tuple[str, list[str]]) -> None:
    """jsonschema on its own would GET it, blocking, from the gateway (a request forgery)."""
    base, hits = web_server
    schema = {"type": "object", "properties": {"a": {"$ref": f"{base}/schema.json"}}}
    schema_json = output_schema(fmt(schema))
    assert schema_json is not None
    with pytest.raises(BadRequestError) as caught:
        check('{"a": 1}', schema_json)
    assert "has a $ref this gateway does not follow" in caught.value.message
    assert "only references inside the schema are resolved" in caught.value.message
    tools = tool_request(
        {"tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": schema}}]}, user("hi")
    ).tools
    with pytest.raises(BadRequestError, match="the strict schema of f has a \\$ref"):
        check_strict(tools, [ToolCall("t", TOOL_PREFIX + "f", '{"a": 1}')])
    assert hits == []


# --------------------------------------------------------------------------- the schema, on arrival


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "object", "required": 3}, "is not a valid JSON Schema: 3 is not of type 'array'"),
        (
            {"type": "object", "patternProperties": {"^a": {}}, "unevaluatedProperties": False},
            "uses unevaluatedProperties together with patternProperties",
        ),
        ({"type": "object", "properties": {"s": {"pattern": "(unclosed"}}}, "has a pattern this gateway cannot match"),
    ],
)
def test_a_schema_the_gateway_cannot_use_is_a_400_before_anything_runs(schema: dict[str, Any], says: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        output_schema(fmt(schema))
    assert caught.value.status_code == 400
    assert caught.value.message.startswith("response_format.json_schema.schema ")
    assert says in caught.value.message
    function: dict[str, Any] = {"name": "f", "strict": True, "parameters": schema}
    with pytest.raises(BadRequestError) as caught:
        tool_request({"tools": [{"type": "function", "function": function}]}, user("hi"))
    assert caught.value.message.startswith("tools[0].function.parameters ") and says in caught.value.message
    # Only a strict tool's schema is checked against, so only a strict tool's is refused.
    tool_request({"tools": [{"type": "function", "function": {**function, "strict": False}}]}, user("hi"))


def test_checking_a_schema_is_bounded_too_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"type": "object", "properties": {f"p{n}": {"type": "string", "maxLength": n} for n in range(20)}}
    monkeypatch.setattr(_structured, "CHECK_SECONDS", 0.001)  # as a far larger schema would find 1 s
    took, error = timed(lambda: output_schema(fmt(schema)))
    assert isinstance(error, BadRequestError) and took < 0.1 + SLACK
    assert "could not be checked within 0.001 s, the most this gateway spends on it" in error.message
    monkeypatch.undo()
    assert output_schema(fmt(schema)) is not None
    hits = _structured._prepared.cache_info().hits
    output_schema(fmt(dict(reversed(schema.items()))))  # the same schema, keys in another order
    assert _structured._prepared.cache_info().hits == hits + 1


# --------------------------------------------------------------------------- limits


def tools(count: int, schema: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    parameters = schema or {"type": "object", "properties": {"q": {"type": "string"}}}
    return [{"type": "function", "function": {"name": f"t{n}", "parameters": parameters}} for n in range(count)]


def big_schema(size: int) -> dict[str, Any]:
    schema = {"type": "object", "description": ""}
    schema["description"] = "x" * (size - len(json.dumps(schema, separators=(",", ":"))))
    assert len(json.dumps(schema, separators=(",", ":"))) == size
    return schema


def test_the_number_of_tools_is_bounded() -> None:
    found = tool_request({"tools": tools(128)}, user("hi")).tools
    assert found is not None and len(found.tools) == 128
    with pytest.raises(BadRequestError) as caught:
        tool_request({"tools": tools(129)}, user("hi"))
    assert caught.value.status_code == 400
    assert caught.value.message == (
        "tools: 129 tools, more than the 128 this gateway accepts in one request (LITELLM_CLAUDE_CODE_MAX_TOOLS)."
    )
    with pytest.raises(BadRequestError, match="more than the 3 this gateway"):
        tool_request({"tools": tools(4)}, user("hi"), Limits(max_tools=3))


def test_the_size_of_a_tool_schema_is_bounded() -> None:
    tool_request({"tools": tools(2, big_schema(65_536))}, user("hi"))
    with pytest.raises(BadRequestError) as caught:
        tool_request({"tools": [*tools(1), *tools(1, big_schema(65_537))]}, user("hi"))
    assert caught.value.message == (
        "tools[1].function.parameters is 65,537 bytes of JSON, more than the 65,536 this gateway accepts for one "
        "tool (LITELLM_CLAUDE_CODE_MAX_TOOL_SCHEMA_BYTES)."
    )


def test_the_size_of_a_response_schema_is_bounded() -> None:
    assert output_schema(fmt(big_schema(65_536))) is not None
    with pytest.raises(BadRequestError) as caught:
        output_schema(fmt(big_schema(65_537)))
    assert caught.value.message == (
        "response_format.json_schema.schema is 65,537 bytes of JSON, more than the 65,536 this gateway accepts "
        "(LITELLM_CLAUDE_CODE_MAX_RESPONSE_SCHEMA_BYTES)."
    )
    with pytest.raises(BadRequestError, match="more than the 2,000 this gateway"):
        output_schema(fmt(big_schema(2_001)), Limits(max_response_schema_bytes=2_000))


def test_what_claude_code_itself_sends_fits_the_defaults() -> None:
    """25 tools, about 30 KB with their descriptions (docs/configuration.md)."""
    schema = big_schema(500)
    listed = [{**t, "function": {**t["function"], "description": "d" * 600}} for t in tools(25, schema)]
    assert 28_000 < len(json.dumps(listed)) < 32_000
    found = tool_request({"tools": listed}, user("hi")).tools
    assert found is not None and len(found.tools) == 25


def test_the_limits_follow_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "MAX_TOOLS", "2")
    monkeypatch.setenv(PREFIX + "MAX_TOOL_SCHEMA_BYTES", "1024")
    monkeypatch.setenv(PREFIX + "MAX_RESPONSE_SCHEMA_BYTES", " 4096 ")
    assert Limits.from_env() == Limits(max_tools=2, max_tool_schema_bytes=1024, max_response_schema_bytes=4096)
    with pytest.raises(
        BadRequestError, match=r"more than the 2 this gateway accepts .*\(LITELLM_CLAUDE_CODE_MAX_TOOLS\)"
    ):
        tool_request({"tools": tools(3)}, user("hi"))
    with pytest.raises(BadRequestError, match="more than the 1,024 this gateway accepts for one tool"):
        tool_request({"tools": tools(1, big_schema(1_025))}, user("hi"))
    with pytest.raises(BadRequestError, match="more than the 4,096 this gateway accepts"):
        output_schema(fmt(big_schema(4_097)))
    settings = Settings.from_env({PREFIX + "MAX_TOOLS": "7", PREFIX + "MAX_RESPONSE_SCHEMA_BYTES": "2048"})
    assert Limits.of(settings) == Limits(max_tools=7, max_response_schema_bytes=2048)
    assert Limits.of(Settings()) == Limits() == Limits.from_env({})
    assert (Limits().max_tools, Limits().max_tool_schema_bytes, Limits().max_response_schema_bytes) == (
        128,
        65_536,
        65_536,
    )


@pytest.mark.parametrize(
    ("suffix", "value", "expected"),
    [
        ("MAX_TOOLS", "0", "must be at least 1"),
        ("MAX_TOOLS", "many", "is not a whole number"),
        ("MAX_TOOL_SCHEMA_BYTES", "1023", "must be at least 1024 bytes"),
        ("MAX_RESPONSE_SCHEMA_BYTES", "64k", "is not a whole number"),
        ("MAX_RESPONSE_SCHEMA_BYTES", "-1", "must be at least 1024 bytes"),
    ],
)
def test_a_bad_limit_names_its_variable(suffix: str, value: str, expected: str) -> None:
    for read in (Settings.from_env, Limits.from_env):
        with pytest.raises(SettingsError) as caught:
            read({PREFIX + suffix: value})
        assert str(caught.value).startswith(PREFIX + suffix) and expected in str(caught.value)
