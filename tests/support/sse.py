"""Read an OpenAI-style server-sent event stream the way a client sees it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Streamed:
    text: str  # the content deltas, joined
    done: bool  # ``data: [DONE]`` arrived
    error: Any = None  # the first in-band error event; reading stops there


def read_stream(lines: Iterable[bytes]) -> Streamed:
    """The text, whether ``[DONE]`` came, and the first in-band error of a streamed completion."""
    text, done = "", False
    for raw in lines:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data:"):
            chunk = json.loads(line[5:])
            if "error" in chunk:
                return Streamed(text, done, chunk["error"])
            if chunk.get("choices"):
                text += chunk["choices"][0]["delta"].get("content") or ""
    return Streamed(text, done)
