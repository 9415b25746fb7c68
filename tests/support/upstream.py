"""Reading what reached the fake upstream, and what a client was told: shared by the test suites."""

from __future__ import annotations

from typing import Any


def user_turns(request: dict[str, Any]) -> list[str]:
    """The text of every user-role message of one logged upstream request, in order."""
    turns = []
    for message in request["messages"]:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            turns.append(content)
        elif isinstance(content, list):
            turns.append("".join(block.get("text", "") for block in content if isinstance(block, dict)))
    return turns


def user_text(request: dict[str, Any]) -> str:
    """All user text of one logged upstream request (the CLI may add a user message of its own)."""
    return "\n".join(user_turns(request))


def retry_after(exc: BaseException) -> str | None:
    """The Retry-After an error carries to the client (its own headers, or LiteLLM's copy of them)."""
    for attribute in ("headers", "litellm_response_headers"):
        headers = getattr(exc, attribute, None)
        if headers:
            for name, value in headers.items():
                if name.lower() == "retry-after":
                    return str(value)
    return None
