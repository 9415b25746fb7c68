"""Simulation of Anthropic's prompt cache for the fake Messages API server.

Why simulate it: clients read ``cache_creation_input_tokens`` and
``cache_read_input_tokens`` (cost tracking, budgets, the CLI's own statistics).  A fake
that always reports zero hides the most expensive class of bug: a request change that
silently defeats caching (a timestamp in the system prompt, reordered tools, a moved
``cache_control``).  With this simulation a test can assert that the second turn of a
conversation *reads* what the first one wrote.

The rules mirror Anthropic's documented behaviour (docs.anthropic.com, "Prompt caching"):

* The prompt is the ordered sequence of content blocks: every tool definition, then the
  system prompt (a string is one text block), then every content block of every message
  (a string content is one text block).  A block's identity is its kind (tool, system,
  or message role, plus whether it opens a new message) and its JSON with
  ``cache_control`` removed, so moving a breakpoint never changes a hash.
* A system text block starting with ``x-anthropic-billing-header:`` is skipped entirely
  (neither hashed nor counted as a block): the Claude Code CLI puts a per-request
  varying billing header there, and the real API does not let it break the cache.  Its
  characters still count in the request's total (they were sent), as uncached input.
* Every block carrying ``cache_control`` (``{"type": "ephemeral"}``, optional ``ttl``
  ``"5m"`` = 300 s, default, or ``"1h"`` = 3600 s) is a breakpoint; at most 4.
* Read: from each breakpoint the cache is searched at the breakpoint's own boundary and
  the 19 boundaries before it (20 in all, the documented look-back), longest prefix
  first.  The longest hit over all breakpoints is read; a hit refreshes its TTL.
* Write: each breakpoint's prefix of at least ``min_tokens`` that is not cached yet is
  written.  ``cache_creation_input_tokens`` is the longest written prefix minus what
  was read.  Shorter prefixes are silently neither written nor read, like the real API.
* The cache is scoped by a namespace chosen by the caller (credential and model).

Token counts are estimates, consistent with the server's ``estimate_input_tokens``
(about 4 characters of JSON per token): a block weighs the length of its JSON
(``cache_control`` removed, a string as its text block, so that equal hashes always
mean equal weights), and a boundary's tokens are the cumulative characters up to it
divided by 4.  The blocks' total is within a few tokens of the server's estimate, which
ignores tool definitions; the server reports the larger of the two as the total.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
MAX_BREAKPOINTS = 4
#: Boundaries searched per breakpoint: its own and the 19 before it.
LOOKBACK_BLOCKS = 20
DEFAULT_MIN_TOKENS = 1024
TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
CHARS_PER_TOKEN = 4

#: Where a prompt's entries live: (credential fingerprint, model).
Namespace = tuple[str, str]


class CacheControlError(ValueError):
    """A ``cache_control`` the real API would reject with a 400."""


@dataclass(frozen=True)
class Prompt:
    """The cache-relevant shape of one request.

    ``hashes[i]`` and ``tokens[i]`` describe the prefix ending after block ``i``;
    ``breakpoints`` holds ``(block index, ttl seconds)`` in prompt order.
    """

    hashes: tuple[str, ...]
    tokens: tuple[int, ...]
    breakpoints: tuple[tuple[int, float], ...]

    @property
    def blocks(self) -> int:
        return len(self.hashes)

    @property
    def total_tokens(self) -> int:
        return self.tokens[-1] if self.tokens else 0


@dataclass(frozen=True)
class CacheUsage:
    """The three input-token figures of a response, plus what the log records."""

    read: int
    creation: int
    input: int
    breakpoints: int = 0
    blocks: int = 0

    @classmethod
    def uncached(cls, total: int, prompt: Prompt | None = None) -> CacheUsage:
        """Everything billed as plain input (caching disabled or nothing cacheable)."""
        if prompt is None:
            return cls(read=0, creation=0, input=total)
        return cls(read=0, creation=0, input=total, breakpoints=len(prompt.breakpoints), blocks=prompt.blocks)

    def record(self) -> dict[str, int]:
        return {
            "read": self.read,
            "creation": self.creation,
            "input": self.input,
            "breakpoints": self.breakpoints,
            "blocks": self.blocks,
        }


# --------------------------------------------------------------------------- prompt analysis


def _strip(value: Any) -> Any:
    """The block without ``cache_control`` (also in nested tool_result content):
    where a breakpoint sits must not change what is cached."""
    if not isinstance(value, dict):
        return value
    out = {k: v for k, v in value.items() if k != "cache_control"}
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_strip(item) for item in content]
    return out


def _ttl(block: Any) -> float | None:
    """The breakpoint TTL of a top-level block, ``None`` when it is no breakpoint."""
    if not isinstance(block, dict) or block.get("cache_control") is None:
        return None
    control = block["cache_control"]
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise CacheControlError("cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise CacheControlError("cache_control.ttl: Input should be '5m' or '1h'")
    return TTL_SECONDS[ttl]


def _is_billing_header(block: Any) -> bool:
    text = block if isinstance(block, str) else block.get("text") if isinstance(block, dict) else None
    return isinstance(text, str) and text.startswith(BILLING_HEADER_PREFIX)


def _as_block(element: Any) -> Any:
    """A string content is the same prompt as one text block holding it."""
    return {"type": "text", "text": element} if isinstance(element, str) else element


def _elements(body: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(kind, element)`` for every block of the prompt, in cache order."""
    out: list[tuple[str, Any]] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        out.extend(("tool", tool) for tool in tools)
    system = body.get("system")
    for block in [system] if isinstance(system, str) else system if isinstance(system, list) else []:
        if not _is_billing_header(block):
            out.append(("system", block))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        items = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        for position, item in enumerate(items):
            # Opening a message is part of the identity: ["a"], ["b"] is not ["a", "b"].
            out.append((f"{role}:{'start' if position == 0 else 'cont'}", item))
    return out


def analyze(body: Mapping[str, Any]) -> Prompt:
    """Hash every prefix of the prompt and find its breakpoints.

    Raises :class:`CacheControlError` for what the real API rejects (a fifth breakpoint,
    an unknown type or TTL): a client bug the fake must not hide.
    """
    hashes: list[str] = []
    tokens: list[int] = []
    breakpoints: list[tuple[int, float]] = []
    running = hashlib.sha256(b"prompt")
    chars = 0
    for index, (kind, element) in enumerate(_elements(body)):
        ttl = _ttl(element)
        if ttl is not None:
            breakpoints.append((index, ttl))
        block = _as_block(_strip(element))
        identity = json.dumps([kind, block], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        running.update(hashlib.sha256(identity.encode()).digest())
        hashes.append(running.copy().hexdigest())
        # The server estimator's measure (default separators), on what was hashed.
        chars += len(json.dumps(block, ensure_ascii=False))
        tokens.append(chars // CHARS_PER_TOKEN)
    if len(breakpoints) > MAX_BREAKPOINTS:
        raise CacheControlError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(breakpoints)}."
        )
    return Prompt(hashes=tuple(hashes), tokens=tuple(tokens), breakpoints=tuple(breakpoints))


# --------------------------------------------------------------------------- the cache


@dataclass
class _Entry:
    expires: float
    ttl: float


class PromptCache:
    """Cached prefixes per namespace, with expiry on an injectable monotonic clock.

    It has its own lock: the server loop thread uses it, and a test thread may clear it.
    """

    def __init__(self, min_tokens: int = DEFAULT_MIN_TOKENS, clock: Callable[[], float] = time.monotonic) -> None:
        if min_tokens < 1:
            raise ValueError("min_tokens must be at least 1")
        self.min_tokens = min_tokens
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Namespace, dict[str, _Entry]] = {}

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return sum(len(e) for e in self._entries.values())

    def clear(self) -> int:
        """Forget every entry; returns how many live entries there were."""
        with self._lock:
            self._purge(self._clock())
            count = sum(len(e) for e in self._entries.values())
            self._entries.clear()
            return count

    def _purge(self, now: float) -> None:
        for namespace in list(self._entries):
            live = {h: e for h, e in self._entries[namespace].items() if e.expires > now}
            if live:
                self._entries[namespace] = live
            else:
                del self._entries[namespace]

    def use(self, namespace: Namespace, prompt: Prompt, total_tokens: int) -> CacheUsage:
        """Read and write ``prompt`` as one request would; return its usage figures.

        Reads are resolved before writes, so a request never reads its own write.
        ``total_tokens`` is the request's whole input (at least ``prompt.total_tokens``).
        """
        now = self._clock()
        with self._lock:
            self._purge(now)
            entries = self._entries.setdefault(namespace, {})
            hits: list[tuple[int, float]] = []
            for index, ttl in prompt.breakpoints:
                for boundary in range(index, max(-1, index - LOOKBACK_BLOCKS), -1):
                    if prompt.tokens[boundary] < self.min_tokens:
                        break  # cumulative: every earlier prefix is shorter still
                    if prompt.hashes[boundary] in entries:
                        hits.append((boundary, ttl))
                        break
            read = max((prompt.tokens[b] for b, _ in hits), default=0)
            written = 0
            for index, ttl in prompt.breakpoints:
                size = prompt.tokens[index]
                if size >= self.min_tokens and prompt.hashes[index] not in entries:
                    entries[prompt.hashes[index]] = _Entry(expires=now + ttl, ttl=ttl)
                    written = max(written, size)
            for boundary, ttl in hits:
                entry = entries[prompt.hashes[boundary]]
                entry.ttl = max(entry.ttl, ttl)
                entry.expires = max(entry.expires, now + entry.ttl)
            if not entries:
                del self._entries[namespace]
        creation = max(0, written - read)
        return CacheUsage(
            read=read,
            creation=creation,
            input=max(0, max(total_tokens, prompt.total_tokens) - read - creation),
            breakpoints=len(prompt.breakpoints),
            blocks=prompt.blocks,
        )
