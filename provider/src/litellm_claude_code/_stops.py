"""The ``stop`` parameter, emulated: cut the answer before the first stop string.

The CLI has no stop sequences of its own, so the provider watches the text as it streams.
Text that could be the start of a stop string is held back until the next piece shows
whether it is; at the first stop string the answer ends there (``finish_reason: stop``) and
the engine stops the CLI's turn, so no more tokens are spent on text nobody receives.
"""

from __future__ import annotations

from typing import Any

from ._errors import BadRequestError

MAX_STOPS = 4  # OpenAI's limit


def stops_of(value: Any) -> tuple[str, ...]:
    """``stop`` as a tuple of non-empty strings; anything else is a 400 naming it."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise BadRequestError("stop must be a string or a list of strings.")
    if len(items) > MAX_STOPS:
        raise BadRequestError(f"stop: at most {MAX_STOPS} stop strings.")
    return tuple(item for item in items if item)


class StopCutter:
    """Feed the answer's text piece by piece; get back what may be sent, and whether it stopped."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of ``held + text`` that is certainly answer text; sets ``stopped`` at a stop string."""
        if self.stopped:
            return ""
        buffer = self._held + text
        cut = min((i for i in (buffer.find(stop) for stop in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), 0, -1):
                if buffer.endswith(stop[:size]):
                    keep = max(keep, size)
                    break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """At the end of the answer: what was held back was no stop string after all."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
