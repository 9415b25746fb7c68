"""A counter of live CLI processes, capped at ``max_concurrency``, with a change signal.

Every CLI process, serving or idle-warm, holds one slot, so the cap bounds memory whatever
the mix. A request that finds neither a matching idle process nor a free slot nor an idle
process to evict waits for a change (a slot freed, a process returned) for at most the
queue timeout, then gets 429 with a Retry-After drawn from recent request durations.
"""

from __future__ import annotations

import asyncio
import collections

from ._errors import QueueFullError


class Slots:
    """Slots for one event loop (one proxy worker)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.waiting = 0
        self._changed = asyncio.Event()
        self._durations: collections.deque[float] = collections.deque(maxlen=32)

    def try_acquire(self) -> bool:
        if self.in_use < self.capacity:
            self.in_use += 1
            return True
        return False

    def release(self) -> None:
        self.in_use = max(0, self.in_use - 1)
        self.notify()

    def notify(self) -> None:
        """Wake every waiter: a slot was freed or a warm process became idle."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, timeout: float) -> bool:
        """Wait until :meth:`notify` or ``timeout``; True if something changed."""
        event = self._changed
        self.waiting += 1
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    def full_error(self, waited: float) -> QueueFullError:
        return QueueFullError(
            f"All {self.capacity} Claude Code slots stayed busy for {waited:g} s. Retry later, or raise "
            "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY (each slot costs about 200 MB, and a CPU while it starts).",
            retry_after=self.retry_after(),
        )

    def record_duration(self, seconds: float) -> None:
        self._durations.append(seconds)

    def retry_after(self) -> float:
        if not self._durations:
            return 1.0
        average = sum(self._durations) / len(self._durations)
        return min(60.0, max(1.0, average))
