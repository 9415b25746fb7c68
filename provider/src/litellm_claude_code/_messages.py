"""OpenAI chat messages to a conversation of real turns: a system prompt and user/assistant turns.

Claude receives what the client sent: every user and assistant message becomes a turn of its
own, with its own content blocks (text, images, tool calls and tool results), in order. Nothing
of the client's is quoted inside another turn. The rules below are the ones the Anthropic
Messages API itself applies, so an OpenAI conversation maps onto it without loss:

- ``system`` and ``developer`` messages, wherever they stand, form the system prompt in order
  (LiteLLM's own Anthropic adapter does the same: the Messages API has no system turns);
- consecutive messages of one role are one turn (the API merges them too), so two user
  messages in a row, or tool results followed by a user's text, reach Claude as one turn;
- an assistant message's ``tool_calls`` are ``tool_use`` blocks and each ``tool`` message is a
  ``tool_result`` block, which must answer a call of the assistant turn just before it;
- a conversation may open with an assistant turn (a chat UI's greeting); it must end with a
  user turn, the one Claude answers. An assistant message that carries nothing (no text, no
  tool call: an empty one, or the bare reasoning Codex sends back when it reconnects after a
  cut stream) counts for nothing, wherever it stands.

Each turn carries a fingerprint, and a conversation the chain of them, so the engine can tell
in constant time whether a CLI process already holds the earlier turns of a request.
Anything that cannot be carried is refused with a 400 naming the message index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import BadRequestError

_SYSTEM_ROLES = ("system", "developer")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^,;]*)*?);base64,(?P<data>.*)$", re.DOTALL)

Block = dict[str, Any]
Role = Literal["user", "assistant"]


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of the conversation as the Messages API takes it."""

    role: Role
    content: tuple[Block, ...]
    index: int = field(default=0, compare=False)
    """Index of the first client message of this turn, for error messages."""

    @property
    def fingerprint(self) -> str:
        """Identity of the turn's content: equal fingerprints, equal turns."""
        return _digest(self.role, json.dumps(list(self.content), sort_keys=True, separators=(",", ":")))

    @property
    def text(self) -> str:
        """All text of the turn (tool results included), for size accounting and logs."""
        return "".join(_block_text(block) for block in self.content)

    def cli_content(self) -> str | list[Block]:
        """The content as the CLI is given it: a lone text block as a plain string."""
        if len(self.content) == 1 and self.content[0].get("type") == "text":
            return str(self.content[0]["text"])
        return [dict(block) for block in self.content]


def _block_text(block: Block) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, list):
            return "".join(str(part.get("text", "")) for part in inner if isinstance(part, dict))
    return ""


@dataclass(frozen=True, slots=True)
class Conversation:
    """What one request sends: a system prompt and its turns, the last one the user's."""

    system: str | None
    turns: tuple[Turn, ...]

    @property
    def history(self) -> tuple[Turn, ...]:
        """Every turn before the one Claude answers now."""
        return self.turns[:-1]

    @property
    def last(self) -> Turn:
        """The user turn Claude answers."""
        return self.turns[-1]

    @property
    def text(self) -> str:
        """The text of the turn Claude answers (what most logs and tests look at)."""
        return self.last.text

    def chain(self) -> list[str]:
        """Cumulative fingerprints: ``chain()[k]`` identifies ``turns[: k + 1]`` as a whole."""
        return chain_of(self.turns)


def chain_of(turns: Sequence[Turn], start: str = "") -> list[str]:
    """The cumulative fingerprints of ``turns`` (continuing from ``start``)."""
    out: list[str] = []
    current = start
    for turn in turns:
        current = _digest(current, turn.fingerprint)
        out.append(current)
    return out


def assistant_text_turn(text: str) -> Turn:
    """The assistant turn a client sends back after receiving ``text`` as a plain answer."""
    return Turn("assistant", ({"type": "text", "text": text},) if text else ())


# --------------------------------------------------------------------------- content parts


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


def _parts(content: Any, index: int, *, allow_images: bool) -> list[Block]:
    """Content (a string or a list of parts) as Anthropic blocks; empty text is dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequestError(f"messages[{index}].content must be a string or a list of content parts.")
    blocks: list[Block] = []
    for part in content:
        if isinstance(part, str):
            if part:
                blocks.append({"type": "text", "text": part})
            continue
        if not isinstance(part, dict):
            raise BadRequestError(f"messages[{index}].content has a part that is not an object.")
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequestError(f"messages[{index}]: a text part has no text.")
            if text:
                blocks.append({"type": "text", "text": text})
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


# The first system block Claude Code (as a client) sends: its own per-request billing line.
# The gateway's CLI sends its own; kept, the client's would open the system prompt with a line
# that changes between requests, and Anthropic's prompt cache would miss from there on.
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def _without_billing_line(text: str) -> str:
    if not text.startswith(BILLING_HEADER_PREFIX):
        return text
    return text.partition("\n")[2].lstrip("\n")


def _system_text(content: Any, index: int) -> str:
    texts = (_without_billing_line(block["text"]) for block in _parts(content, index, allow_images=False))
    return "\n\n".join(text for text in texts if text)


def _tool_use_blocks(message: dict[str, Any], index: int) -> list[Block]:
    calls = message.get("tool_calls")
    if message.get("function_call"):
        raise BadRequestError(
            f"messages[{index}]: function_call is the deprecated form of a tool call; send it as tool_calls."
        )
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise BadRequestError(f"messages[{index}].tool_calls must be a list.")
    blocks: list[Block] = []
    for position, call in enumerate(calls):
        where = f"messages[{index}].tool_calls[{position}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise BadRequestError(f"{where} must be an object of type 'function'.")
        call_id, function = call.get("id"), call.get("function")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequestError(f"{where} has no id; each tool call needs the id its tool message answers.")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise BadRequestError(f"{where} has no function name.")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            raise BadRequestError(f"{where}.function.arguments is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise BadRequestError(f"{where}.function.arguments must be a JSON object.")
        blocks.append({"type": "tool_use", "id": call_id, "name": function["name"], "input": parsed})
    return blocks


def _tool_result_block(message: dict[str, Any], index: int) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequestError(f"messages[{index}]: a tool message needs the tool_call_id of the call it answers.")
    content = message.get("content")
    if isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") not in ("text", "input_text") for p in content
    ):
        raise BadRequestError(f"messages[{index}]: tool results must be text.")
    blocks = _parts(content, index, allow_images=False)
    result: Block = {"type": "tool_result", "tool_use_id": call_id}
    if len(blocks) == 1:
        result["content"] = blocks[0]["text"]
    elif blocks:
        result["content"] = blocks
    else:
        result["content"] = ""
    return result


# --------------------------------------------------------------------------- conversion


@dataclass(slots=True)
class _Draft:
    role: Role
    index: int
    blocks: list[Block]


def _check_tool_results(drafts: list[_Draft]) -> None:
    """Each tool_result answers a call of the assistant turn just before it, and every call is answered."""
    previous: _Draft | None = None
    for draft in drafts:
        calls = [b["id"] for b in previous.blocks if b["type"] == "tool_use"] if previous else []
        results = [b for b in draft.blocks if b["type"] == "tool_result"]
        if draft.role == "user":
            answered: list[str] = []
            for block in results:
                if block["tool_use_id"] not in calls:
                    raise BadRequestError(
                        f"messages[{block['_index']}]: tool_call_id {block['tool_use_id']!r} answers no tool call of "
                        "the assistant message just before it. Send each tool message right after the assistant "
                        "message whose tool_calls it answers."
                    )
                answered.append(block["tool_use_id"])
            missing = [call for call in calls if call not in answered]
            if missing and previous is not None:
                raise BadRequestError(
                    f"messages[{previous.index}]: tool call(s) {', '.join(missing)} have no tool message with their "
                    "result. Add a tool message for every tool call before the next user or assistant message."
                )
            kinds = [b["type"] == "tool_result" for b in draft.blocks]
            if any(kinds) and kinds != sorted(kinds, reverse=True):
                raise BadRequestError(
                    f"messages[{draft.index}]: a user message stands between tool calls and their tool messages. "
                    "Send the tool messages right after the assistant message, then the user's message."
                )
        previous = draft
    for draft in drafts:
        for block in draft.blocks:
            block.pop("_index", None)


def convert_messages(messages: Any) -> Conversation:
    """Turn an OpenAI ``messages`` list into a :class:`Conversation`, or raise a 400 saying why not."""
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("messages must be a non-empty list.")
    system_parts: list[str] = []
    drafts: list[_Draft] = []
    last_role: Any = None  # the role of the last message that carries something
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{index}] must be an object with a role and content.")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            text = _system_text(message.get("content"), index)
            if text:
                system_parts.append(text)
            continue
        turn_role: Role
        if role == "user":
            turn_role, blocks = "user", _parts(message.get("content"), index, allow_images=True)
        elif role == "assistant":
            turn_role = "assistant"
            blocks = _parts(message.get("content"), index, allow_images=False) + _tool_use_blocks(message, index)
        elif role == "tool":
            turn_role, blocks = "user", [{**_tool_result_block(message, index), "_index": index}]
        elif role == "function":
            raise BadRequestError(
                f"messages[{index}] has role 'function', the deprecated form of a tool result; send it as a "
                "'tool' message with the tool_call_id it answers."
            )
        else:
            raise BadRequestError(
                f"messages[{index}] has role {role!r}; use one of system, developer, user, assistant, tool."
            )
        if not blocks:
            if role == "user":
                raise BadRequestError(f"messages[{index}] has empty content.")
            # An empty assistant message carries nothing to send, wherever it stands; its
            # reasoning_content is never sent back (Claude keeps its own thinking). Last, it is
            # what Codex sends when it reconnects after a stream cut short during the thinking:
            # the partial reasoning it kept. Claude answers the user turn before it afresh.
            continue
        last_role = role
        if drafts and drafts[-1].role == turn_role:
            drafts[-1].blocks.extend(blocks)
        else:
            drafts.append(_Draft(turn_role, index, blocks))
    if not any(d.role == "user" for d in drafts):
        raise BadRequestError("messages has no user message; add one with role 'user'.")
    if drafts[-1].role != "user" or last_role not in ("user", "tool"):
        raise BadRequestError(
            f"the last message has role {last_role!r}; the last message must come from the user (or be a tool result)."
        )
    _check_tool_results(drafts)
    turns = tuple(Turn(d.role, tuple(d.blocks), d.index) for d in drafts)
    return Conversation("\n\n".join(system_parts) if system_parts else None, turns)
