"""OpenAI chat messages to what the Claude Code CLI takes: a system prompt and one user turn.

The CLI answers one user turn at a time and keeps its own history, so an OpenAI request
with several turns is sent as a single user message that carries the whole conversation:
each earlier turn sits between ``<turn role="...">`` and ``</turn>`` lines, with any such
tag inside a message escaped, so no content can forge a turn. A request with a single user
message is sent as it is, with no wrapping, so the common case reaches Claude unchanged.

Images given as ``data:`` URLs become Anthropic image blocks at their place in the turn.
Anything the CLI cannot carry faithfully is refused with a 400 that says what to change.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequestError

_SYSTEM_ROLES = ("system", "developer")
_TURN_ROLES = ("user", "assistant", "tool", "function")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^,;]*)*?);base64,(?P<data>.*)$", re.DOTALL)
_TAG = re.compile(r"<(/?)turn\b", re.IGNORECASE)

Block = dict[str, Any]


@dataclass(slots=True)
class Prompt:
    """What one request sends to the CLI."""

    system: str | None
    content: list[Block] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All text of the user turn, for size accounting and tests."""
        return "".join(block.get("text", "") for block in self.content if block.get("type") == "text")

    def as_cli_message(self) -> dict[str, Any]:
        """The stream-json line the CLI reads on stdin for this user turn."""
        blocks = list(self.content)
        if blocks and blocks[0].get("type") == "text" and blocks[0]["text"].startswith("/"):
            # The CLI takes a turn that starts with "/" for one of its own commands and never
            # sends it to Claude; a zero-width space in front makes it plain text again.
            blocks[0] = {"type": "text", "text": "\u200b" + blocks[0]["text"]}
        content: str | list[Block]
        if len(blocks) == 1 and blocks[0].get("type") == "text":
            content = blocks[0]["text"]
        else:
            content = blocks
        return {
            "type": "user",
            "message": {"role": "user", "content": content},
            "parent_tool_use_id": None,
            "session_id": "default",
        }


def _escape(text: str) -> str:
    # Keep the turn delimiters unforgeable: "<turn" / "</turn" inside a message get a zero-width
    # joiner after "<", which reads the same to a person and to Claude but is not a tag.
    return _TAG.sub(lambda m: "<\u200d" + m.group(1) + "turn", text)


def _image_block(url: str, index: int) -> Block:
    if not url.startswith("data:"):
        raise BadRequestError(
            f"messages[{index}]: image_url must be a data: URL (base64). Remote image URLs are not fetched by "
            "this provider; download the image and send it inline."
        )
    match = _DATA_URL.match(url)
    if match is None:
        raise BadRequestError(f"messages[{index}]: image_url is not a base64 data: URL.")
    mime = match.group("mime").lower()
    if mime not in _IMAGE_TYPES:
        raise BadRequestError(
            f"messages[{index}]: image type {mime!r} is not supported; use one of {', '.join(_IMAGE_TYPES)}."
        )
    data = re.sub(r"\s+", "", match.group("data"))
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError(f"messages[{index}]: image data is not valid base64.") from None
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def _parts(content: Any, index: int, *, allow_images: bool, escape: bool) -> list[Block]:
    """Content (a string or a list of parts) as Anthropic blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": _escape(content) if escape else content}]
    if not isinstance(content, list):
        raise BadRequestError(f"messages[{index}].content must be a string or a list of content parts.")
    blocks: list[Block] = []
    for part in content:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": _escape(part) if escape else part})
            continue
        if not isinstance(part, dict):
            raise BadRequestError(f"messages[{index}].content has a part that is not an object.")
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequestError(f"messages[{index}]: a text part has no text.")
            blocks.append({"type": "text", "text": _escape(text) if escape else text})
        elif kind in ("image_url", "input_image"):
            if not allow_images:
                raise BadRequestError(f"messages[{index}]: images are only accepted in user messages.")
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise BadRequestError(f"messages[{index}]: an image_url part has no url.")
            blocks.append(_image_block(url, index))
        else:
            raise BadRequestError(
                f"messages[{index}]: content part type {kind!r} is not supported (use text or image_url)."
            )
    return blocks


def _system_text(content: Any, index: int) -> str:
    blocks = _parts(content, index, allow_images=False, escape=False)
    return "\n\n".join(block["text"] for block in blocks)


def _merge_text(blocks: Iterable[Block]) -> list[Block]:
    merged: list[Block] = []
    for block in blocks:
        if block["type"] == "text" and merged and merged[-1]["type"] == "text":
            merged[-1] = {"type": "text", "text": merged[-1]["text"] + block["text"]}
        elif block["type"] != "text" or block["text"]:
            merged.append(block)
    return merged


def _tool_calls_text(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls") or []
    lines = []
    for call in calls:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        lines.append(f"[called tool {function.get('name', '?')} with {function.get('arguments', '')}]")
    return "\n".join(lines)


def convert_messages(messages: Any) -> Prompt:
    """Turn an OpenAI ``messages`` list into a :class:`Prompt`, or raise a 400 saying why not."""
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("messages must be a non-empty list.")
    system_parts: list[str] = []
    turns: list[tuple[int, str, dict[str, Any]]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{index}] must be an object with a role and content.")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            text = _system_text(message.get("content"), index)
            if text:
                system_parts.append(text)
        elif role in _TURN_ROLES:
            turns.append((index, str(role), message))
        else:
            raise BadRequestError(
                f"messages[{index}] has role {role!r}; use one of system, developer, user, assistant, tool."
            )
    if not turns:
        raise BadRequestError("messages has no user message; add one with role 'user'.")
    if turns[-1][1] != "user":
        raise BadRequestError(f"the last message has role {turns[-1][1]!r}; the last message must come from the user.")
    system = "\n\n".join(system_parts) if system_parts else None

    if len(turns) == 1:
        index, _, message = turns[0]
        content = _merge_text(_parts(message.get("content"), index, allow_images=True, escape=False))
        if not content:
            raise BadRequestError(f"messages[{index}] has empty content.")
        return Prompt(system, content)

    blocks: list[Block] = [
        {
            "type": "text",
            "text": "This is a conversation; each earlier turn is between <turn role=...> and </turn> lines. "
            "Reply to the last user turn as the assistant, without writing turn tags.\n\n",
        }
    ]
    for index, role, message in turns:
        attributes = f'role="{role}"'
        if role in ("tool", "function"):
            result = message.get("content")
            if isinstance(result, list) and any(
                isinstance(p, dict) and p.get("type") not in ("text", "input_text") for p in result
            ):
                raise BadRequestError(f"messages[{index}]: tool results must be text.")
            call_id = message.get("tool_call_id") or message.get("name") or ""
            attributes = 'role="tool"' + (f' id="{_escape(str(call_id))}"' if call_id else "")
            parts = _parts(result, index, allow_images=False, escape=True)
        else:
            parts = _parts(message.get("content"), index, allow_images=role == "user", escape=True)
            if role == "assistant" and message.get("tool_calls"):
                parts.append({"type": "text", "text": ("\n" if parts else "") + _tool_calls_text(message)})
        blocks.append({"type": "text", "text": f"<turn {attributes}>\n"})
        blocks.extend(parts)
        blocks.append({"type": "text", "text": "\n</turn>\n"})
    return Prompt(system, _merge_text(blocks))
