"""Structured output: OpenAI ``response_format`` through the CLI's ``StructuredOutput`` tool, and
the bounded check of an answer against a schema the client wrote (also used for strict tools).

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

Checking against a client's schema is bounded: no check runs longer than
:data:`CHECK_SECONDS`, whatever the schema and the answer, and the provider runs each check
in a worker thread (``asyncio.to_thread``), so the proxy's event loop (every other tenant's
stream, the health probes) goes on meanwhile; ``regex`` releases the GIL while it matches.
Why each piece:

- Patterns (``pattern``, ``patternProperties``, and ``additionalProperties`` beside them) are
  matched with the ``regex`` package and its ``timeout``, not with Python's ``re``, which
  jsonschema uses: ``re`` backtracks exponentially (``^(a+)+$`` against 40 ``a`` and ``!``
  takes days) and cannot be interrupted, so it would freeze the loop and every request on it.
- Every keyword of the validator first looks at the clock, so schemas that are slow without any
  pattern (``$ref`` chains that fan out, ``anyOf`` over ``anyOf``) stop at the deadline too;
  ``uniqueItems`` (quadratic in jsonschema) is a linear, clock-checked version here.
- An answer larger than :data:`MAX_CHECKED_BYTES` is not parsed at all: the deadline is the
  bound, and the cap keeps each step the clock cannot interrupt (parsing, one comparison, one
  error message) a few milliseconds long.
- ``$ref`` is resolved inside the schema only (an empty registry): jsonschema would otherwise
  fetch a remote ``$ref`` with a blocking HTTP request from the gateway.

What fails is told apart by whose it is. An answer that is not JSON, does not match, is too
large, or could not be checked before the deadline (a pattern that ran too long on Claude's
string) is a 502, like any answer the gateway cannot vouch for: the answer is discarded, the
message names the pattern, and a retry may get an answer that checks. A schema the gateway
cannot use (not valid, a pattern ``regex`` cannot compile, a ``$ref`` that leads outside it,
``unevaluatedProperties`` beside ``patternProperties``, whose jsonschema code matches with ``re``
where this module cannot reach, or one whose own check against its metaschema takes longer
than the deadline) is a 400 when the request comes in, before any process starts; checked
schemas are remembered, so a client that sends the same schema each turn pays once.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import regex
from claude_agent_sdk import ClaudeAgentOptions
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from jsonschema.exceptions import ValidationError, best_match

from ._errors import BadRequestError, UpstreamServerError
from ._settings import Limits

TOOL = "StructuredOutput"
"""The CLI's tool for structured output (CLI 2.1.332)."""

JSON_OBJECT = json.dumps({"type": "object"})

CHECK_SECONDS = 1.0
"""Longest one check (a schema when a request comes in, or an answer against it) may take; it runs
in a worker thread, off the event loop. At about 0.4 MB/s (this check on a loaded 2-core host) it
covers an answer of :data:`MAX_CHECKED_BYTES`."""
MAX_CHECKED_BYTES = 262_144
"""Largest answer (or strict tool call's arguments), in bytes of JSON, checked against a schema."""
_CLIP = 120


def output_schema(response_format: Any, limits: Limits | None = None) -> str | None:
    """The schema (canonical JSON) a ``response_format`` asks for; None for text or none.

    ``limits``: the request limits (default: as the environment sets them).
    """
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
    where = "response_format.json_schema.schema"
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise BadRequestError(f"{where} must be a JSON Schema of type 'object'.")
    limits = limits if limits is not None else Limits.from_env()
    schema_json = canonical(where, {"type": "object", **schema})
    size = len(schema_json.encode())
    if size > limits.max_response_schema_bytes:
        raise BadRequestError(
            f"{where} is {size:,} bytes of JSON, more than the {limits.max_response_schema_bytes:,} this gateway "
            "accepts (LITELLM_CLAUDE_CODE_MAX_RESPONSE_SCHEMA_BYTES)."
        )
    prepare(where, schema_json)
    return schema_json


def canonical(where: str, schema: Mapping[str, Any]) -> str:
    """``schema`` as compact JSON with sorted keys (how schemas are compared and measured)."""
    try:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except RecursionError:
        raise BadRequestError(f"{where} is nested too deeply.") from None
    except (TypeError, ValueError):
        raise BadRequestError(f"{where} is not JSON.") from None


def check(content: str, schema_json: str) -> None:
    """Raise a 502 when Claude's structured output is not JSON matching the schema (bounded; see above)."""
    failure = verdict(content, schema_json, deadline(), "the response_format schema")
    if failure is None:
        return
    if failure.kind == "json":
        raise UpstreamServerError("Claude's structured output is not valid JSON; the answer was discarded.")
    if failure.kind == "mismatch":
        raise UpstreamServerError(
            f"Claude's structured output does not match the response_format schema ({failure.detail}); "
            "the answer was discarded."
        )
    raise UpstreamServerError(
        f"Claude's structured output could not be checked against the response_format schema: {failure.detail}; "
        "the answer was discarded."
    )


# --------------------------------------------------------------------------- the bounded check


class _OutOfTime(Exception):
    """The check's deadline passed; ``pattern``: the pattern that was running then, if one was."""

    def __init__(self, pattern: str | None = None, length: int = 0) -> None:
        super().__init__(pattern)
        self.pattern = pattern
        self.length = length

    def reason(self) -> str:
        if self.pattern is None:
            return f"checking it took longer than the {CHECK_SECONDS:g} s a check may take"
        return (
            f"the pattern {_clip(self.pattern)} ran past the {CHECK_SECONDS:g} s a check may take on a "
            f"{self.length:,}-character string; patterns with nested quantifiers such as (a+)+ backtrack "
            "exponentially: simplify it"
        )


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a check (or a group of checks, as for several strict tool calls) must be done."""

    at: float

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise _OutOfTime()
        return left


def deadline(seconds: float | None = None) -> Deadline:
    """A deadline ``seconds`` from now (default :data:`CHECK_SECONDS`)."""
    return Deadline(time.monotonic() + (CHECK_SECONDS if seconds is None else seconds))


_DEADLINE: ContextVar[Deadline | None] = ContextVar("litellm_claude_code_schema_deadline", default=None)


def _left() -> float:
    current = _DEADLINE.get()
    if current is None:
        raise RuntimeError("a bounded schema check ran without a deadline")
    return current.left()


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _CLIP else text[: _CLIP - 3] + "..."


def _search(pattern: str, text: str) -> bool:
    try:
        return regex.search(pattern, text, timeout=_left(), concurrent=True) is not None
    except TimeoutError:
        raise _OutOfTime(pattern, len(text)) from None


# jsonschema's keywords that match patterns or compare every pair, redone under the deadline
# (their messages as jsonschema words them, with long values clipped).


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{_clip(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    for key in instance:
        if key not in properties and not any(_search(pattern, key) for pattern in patterns):
            yield key


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        joined = ", ".join(_clip(each) for each in sorted(extras)[:10])
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            patterns = ", ".join(_clip(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({joined} {verb} unexpected)")


def _same(value: Any) -> Any:
    """``value`` with whole floats as ints: JSON Schema's equality (1 and 1.0 equal, true and 1 not)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_same(item) for item in value]
    if isinstance(value, dict):
        return {key: _same(item) for key, item in value.items()}
    return value


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        _left()
        key = json.dumps(_same(item), sort_keys=True, separators=(",", ":"))
        if key in seen:
            yield ValidationError(f"{_clip(instance)} has non-unique elements")
            return
        seen.add(key)


_KEYWORDS: dict[str, Callable[..., Iterator[ValidationError]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}


def _on_time(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def timed(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _left()
        return keyword(validator, value, instance, schema)

    return timed


@functools.cache
def _bounded(base: Any) -> Any:
    """``base`` (a jsonschema validator class) with every keyword on the deadline, patterns by ``regex``."""
    keywords = {name: _on_time(_KEYWORDS.get(name, function)) for name, function in base.VALIDATORS.items()}
    return jsonschema.validators.extend(base, keywords)


_INSIDE_ONLY = referencing.Registry()
"""No retrieval: a ``$ref`` is resolved inside the schema (and the metaschemas) or not at all."""


def _run(when: Deadline, work: Callable[[], Any]) -> Any:
    token = _DEADLINE.set(when)
    try:
        return work()
    finally:
        _DEADLINE.reset(token)


def _validator(schema: Any) -> Any:
    return _bounded(jsonschema.validators.validator_for(schema))(schema, registry=_INSIDE_ONLY)


# --------------------------------------------------------------------------- the schema, on arrival


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of every object in ``node``, values of data keywords left out."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                if key not in ("const", "enum", "default", "examples"):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def prepare(where: str, schema_json: str) -> None:
    """Refuse with 400 a schema this gateway could not check answers against within its bounds."""
    try:
        _prepared(schema_json)
    except _Unusable as exc:
        raise BadRequestError(f"{where} {exc}") from None


class _Unusable(Exception):
    """Why a schema cannot be used (the sentence follows the schema's location)."""


@functools.lru_cache(maxsize=256)
def _prepared(schema_json: str) -> None:
    schema = json.loads(schema_json)
    keys = {key for key, _ in _walk(schema)}
    if "unevaluatedProperties" in keys and "patternProperties" in keys:
        raise _Unusable(
            "uses unevaluatedProperties together with patternProperties, which this gateway cannot check "
            "within bounds; express the patterns with propertyNames, or drop one of the two."
        )
    patterns = [value for key, value in _walk(schema) if key == "pattern" and isinstance(value, str)]
    patterns += [
        name for key, value in _walk(schema) if key == "patternProperties" and isinstance(value, dict) for name in value
    ]
    for pattern in patterns:
        try:
            regex.compile(pattern)
        except (regex.error, TypeError) as exc:
            raise _Unusable(f"has a pattern this gateway cannot match: {_clip(pattern)} ({exc}).") from None
    cls = jsonschema.validators.validator_for(schema)
    meta = _bounded(jsonschema.validators.validator_for(cls.META_SCHEMA, default=cls))
    checker = meta(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER, registry=_INSIDE_ONLY)
    try:
        error = _run(deadline(), lambda: best_match(checker.iter_errors(schema)))
    except _OutOfTime:
        raise _Unusable(
            f"could not be checked within {CHECK_SECONDS:g} s, the most this gateway spends on it; send a smaller "
            "or simpler schema."
        ) from None
    except RecursionError:
        raise _Unusable("is nested too deeply.") from None
    if error is not None:
        raise _Unusable(f"is not a valid JSON Schema: {_clip_message(error.message)}")


def _clip_message(message: str) -> str:
    return message if len(message) <= 2 * _CLIP else message[: 2 * _CLIP - 3] + "..."


# --------------------------------------------------------------------------- an answer


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an answer was not accepted: ``json`` (not JSON), ``mismatch`` (does not match the schema),
    ``unchecked`` (too large, too deep, or the deadline passed: the detail says which)."""

    kind: str
    detail: str


def verdict(content: str, schema_json: str, when: Deadline, what: str) -> Failure | None:
    """None when ``content`` is JSON matching the schema, checked before ``when``; else why not.

    A schema that turns out unusable only now (a ``$ref`` that leads outside it) is a 400.
    ``what`` names the schema in messages ("the response_format schema").
    """
    size = len(content.encode())
    if size > MAX_CHECKED_BYTES:
        return Failure(
            "unchecked",
            f"it is {size:,} bytes, more than the {MAX_CHECKED_BYTES:,} this gateway checks against a schema",
        )
    try:
        value = json.loads(content)
    except RecursionError:
        return Failure("unchecked", "it is nested too deeply to check")
    except ValueError:
        return Failure("json", "not valid JSON")
    validator = _validator(json.loads(schema_json))
    try:
        error = _run(when, lambda: best_match(validator.iter_errors(value)))
    except _OutOfTime as exc:
        return Failure("unchecked", exc.reason())
    except RecursionError:
        return Failure("unchecked", "it is nested too deeply to check")
    except ArithmeticError:
        return Failure("unchecked", "a number in it is too large to check")
    except referencing.exceptions.Unresolvable as exc:
        raise BadRequestError(
            f"{what} has a $ref this gateway does not follow ({_clip(str(exc))}): only references inside the "
            "schema are resolved."
        ) from None
    if error is None:
        return None
    return Failure("mismatch", _clip_message(error.message))


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
