"""What a scenario may say: its schema, its validation, and the in-prompt directives.

Kept apart from the HTTP code so a test can build and check scenarios (and an operator
read the schema) without reading how they are served."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from typing import Any

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
