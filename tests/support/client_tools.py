"""A client's OpenAI tools as the provider tests send them, and the assistant turn a client echoes back.

Shared by the tool tests through the real proxy (``test_client_tools.py``, ``test_tool_choice.py``).
The provider offers a client's tools to Claude under ``PREFIX`` (an MCP server named ``client``).
"""

from __future__ import annotations

from typing import Any

PREFIX = "mcp__client__"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"enum": ["C", "F"]}},
    "required": ["city"],
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_SCHEMA},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time now",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]
TWO_CALLS = [{"name": "get_weather", "input": {"city": "Paris", "unit": "C"}}, {"name": "get_time", "input": {}}]


def echo(message: Any) -> dict[str, Any]:
    """The assistant message (an ``openai`` client's) as a client sends it back with the tool results."""
    return {
        "role": "assistant",
        "content": message.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls
        ],
    }
