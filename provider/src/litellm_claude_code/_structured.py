"""Structured output: OpenAI ``response_format`` through the CLI's ``StructuredOutput`` tool.

Given a JSON Schema, the CLI offers Claude one tool of its own, ``StructuredOutput``, whose
input schema is the client's schema (even with ``--tools ""``); Claude answers by calling it.
The call's input is the client's content: its ``input_json_delta`` pieces stream as text, and
the whole is checked against the schema here (502 when it does not validate). Claude's own
text before the call is not part of the JSON content and is dropped.

The schema is fixed when a process starts, and it is given in the SDK's ``initialize``
control request (``jsonSchema``), never with ``--json-schema`` on the command line, where
other local users could read the client's schema (``ps``). The schema is part of what a
process is specified for (:class:`~.cli.Binding`); a structured turn is cut off again after
the answer (the CLI holds a tool call the client never saw), so the process keeps only what
the client received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import jsonschema
from claude_agent_sdk import ClaudeAgentOptions
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

from ._errors import BadRequestError, UpstreamServerError

TOOL = "StructuredOutput"
"""The CLI's tool for structured output (CLI 2.1.332)."""

JSON_OBJECT = json.dumps({"type": "object"})


def output_schema(response_format: Any) -> str | None:
    """The schema (canonical JSON) a ``response_format`` asks for; None for text or none."""
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise BadRequestError("response_format must be an object with a type.")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind != "json_schema":
        raise BadRequestError(f"response_format.type must be text, json_object or json_schema (got {kind!r}).")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise BadRequestError("response_format.json_schema.schema must be a JSON Schema of type 'object'.")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise BadRequestError(f"response_format.json_schema.schema is not a valid JSON Schema: {exc.message}") from None
    return json.dumps({"type": "object", **schema}, sort_keys=True, separators=(",", ":"))


def check(content: str, schema_json: str) -> None:
    """Raise a 502 when Claude's structured output is not JSON matching the schema."""
    try:
        value = json.loads(content)
    except ValueError:
        raise UpstreamServerError("Claude's structured output is not valid JSON; the answer was discarded.") from None
    try:
        jsonschema.validate(value, json.loads(schema_json))
    except jsonschema.ValidationError as exc:
        raise UpstreamServerError(
            f"Claude's structured output does not match the response_format schema ({exc.message}); "
            "the answer was discarded."
        ) from None


def with_schema(line: str, schema_json: str) -> str:
    """Add the schema to the SDK's ``initialize`` control request; any other line is left as is.

    Why here: the SDK (0.2.189) passes ``output_format`` only as ``--json-schema <schema>`` on the
    command line; the CLI also takes it as the ``initialize`` request's ``jsonSchema`` field (a
    JSON object), which keeps the client's schema off the process list. test_compat_cli.py pins
    that the SDK still sends initialize through ``Transport.write`` and the CLI still honours it.
    """
    try:
        message = json.loads(line)
    except ValueError:
        return line
    if not isinstance(message, dict) or message.get("type") != "control_request":
        return line
    request = message.get("request")
    if not isinstance(request, dict):
        return line
    if request.get("subtype") != "initialize":
        return line
    request["jsonSchema"] = json.loads(schema_json)
    return json.dumps(message) + "\n"


async def _no_prompt() -> AsyncIterator[dict[str, Any]]:
    return
    yield {}  # pragma: no cover


class SchemaTransport(SubprocessCLITransport):
    """The SDK's own subprocess transport, with the schema added to its initialize request."""

    def __init__(self, options: ClaudeAgentOptions, schema_json: str) -> None:
        super().__init__(prompt=_no_prompt(), options=options)
        self._schema_json = schema_json

    async def write(self, data: str) -> None:
        await super().write(with_schema(data, self._schema_json))
