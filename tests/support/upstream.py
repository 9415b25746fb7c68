"""Reading what reached the fake upstream, and what a client was told: shared by the test suites."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm_claude_code.testing import FakeAnthropicServer


def marked(fake: FakeAnthropicServer, marker: str) -> list[dict[str, Any]]:
    """The fake upstream's logged /v1/messages requests whose messages carry ``marker``, in order."""
    return [request for request in fake.messages_requests() if marker in json.dumps(request["messages"])]


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


def served_by(request: dict[str, Any]) -> str:
    """The CLI session, hence the process, that sent one logged upstream request.

    The CLI names its session in ``metadata.user_id``; each process runs one session for life
    (a cut of its conversation keeps it), and no two processes share one.
    """
    user_id = json.loads(request["body"]["metadata"]["user_id"])
    session = user_id.get("session_id")
    assert session, "the CLI no longer names its session upstream; find another process marker"
    return str(session)


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [{k: v for k, v in block.items() if k != "cache_control"} for block in content]


def dialogue(request: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The user and assistant messages of one logged upstream request, as (role, blocks).

    A string content is one text block, and ``cache_control`` marks are dropped: both are how
    the CLI writes a message, not what it says. The CLI's own ``system``-role messages (its
    environment note: working directory, model, date) are left out; tests look at them apart.
    """
    return [
        (message["role"], _blocks(message["content"]))
        for message in request["messages"]
        if message.get("role") in ("user", "assistant")
    ]


def texts(request: dict[str, Any]) -> list[tuple[str, str]]:
    """The user and assistant messages of one upstream request as (role, all its text)."""
    return [(role, "".join(str(block.get("text", "")) for block in blocks)) for role, blocks in dialogue(request)]
