"""The fake's structured output: a ``StructuredOutput`` call whose input matches the schema.

The Claude Code CLI offers structured output as a tool of its own named ``StructuredOutput``,
whose input schema is the requested one; the real model answers by calling it. The fake does
the same when it is offered that tool and no ``tool_use`` was scripted: it generates an input
from the schema (objects, strings, numbers, integers, booleans, arrays, enums, ``const``,
required and optional properties), deterministic, so tests can check the mapping exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TOOL = "StructuredOutput"


def offered_schema(tools: object) -> dict[str, Any] | None:
    """The input schema of the StructuredOutput tool the request offers, if it offers one."""
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, Mapping) and tool.get("name") == TOOL:
            schema = tool.get("input_schema")
            return dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
    return None


def example(schema: Mapping[str, Any], name: str = "value") -> Any:
    """A value valid for ``schema`` (the subset above); ``name`` seeds strings."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example(schema[key][0], name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        return {key: example(sub if isinstance(sub, Mapping) else {}, key) for key, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        count = max(int(schema.get("minItems", 1)), 1)
        return [example(items if isinstance(items, Mapping) else {"type": "string"}, name) for _ in range(count)]
    if kind == "string":
        text = f"fake {name}"
        return text.ljust(int(schema.get("minLength", 0)), "x")
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1) if "maximum" not in schema else int(schema["maximum"])
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    return None
