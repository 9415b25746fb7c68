"""Read an OpenAI-style server-sent event stream the way a client sees it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Streamed:
    text: str  # the content deltas, joined
    done: bool  # ``data: [DONE]`` arrived
    error: Any = None  # the first in-band error event; reading stops there
    first_text_at: float | None = None
    """Wall-clock time (``time.time()``) the first content delta arrived: with the request's
    start, the client's time to first token."""


def read_stream(lines: Iterable[bytes]) -> Streamed:
    """The text, whether ``[DONE]`` came, and the first in-band error of a streamed completion."""
    text, done, first = "", False, None
    for raw in lines:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data:"):
            chunk = json.loads(line[5:])
            if "error" in chunk:
                return Streamed(text, done, chunk["error"], first)
            if chunk.get("choices"):
                content = chunk["choices"][0]["delta"].get("content") or ""
                if content and first is None:
                    first = time.time()
                text += content
    return Streamed(text, done, None, first)
