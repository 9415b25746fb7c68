"""Warm CLI processes: started ahead of requests, and reused after a verified reset.

Start-up is most of a cold request's wait and CPU (about 0.6 s and one CPU-second), so
the pool keeps processes ready for a :class:`ProcessSpec` (model, system prompt,
credential, output limit). A request is only ever given a process whose every start-up
option equals its own, and only one whose conversation is empty: a new process, or one
that served earlier requests and then passed a verified reset (:meth:`CliProcess.reset`).
Nothing of one request can reach another.

When a request ends, its process goes back to the pool if the reset is verified, the
process is young enough and the pool has room; otherwise it is stopped and, when no other
request is waiting, a fresh one is started for the same spec in the background. A warm
process is checked before use (alive, start-up succeeded, younger than the maximum age);
any other is discarded and the request is served by a fresh process, so the user never sees
an error they did not cause. A rotated credential retires the processes started with the old
one. Idle ones stop after the idle timeout. A discarded process gives its slot back only once
it is reaped, so the slot count bounds live processes, not only the bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .cli import ProcessSpec
from .process import CliProcess
from .settings import Settings
from .slots import Slots

logger = logging.getLogger("litellm_claude_code")

# How long a request waits for a warm process that is still starting. A start takes about a
# second, a dozen on two busy cores; one that takes longer is hung, and is replaced.
WARM_START_WAIT = 20.0


@dataclass(slots=True)
class WarmEntry:
    """A warm process and the task starting it."""

    process: CliProcess
    task: asyncio.Future[None]
    since: float = field(default_factory=time.monotonic)


class WarmPool:
    """The warm set of one event loop. Every entry holds one of the engine's slots."""

    def __init__(self, settings: Settings, slots: Slots, factory: Callable[[ProcessSpec], CliProcess]) -> None:
        self.settings = settings
        self.slots = slots
        self._factory = factory
        self._entries: dict[str, list[WarmEntry]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.started = 0
        self.hits = 0
        self.reused = 0
        self.discarded = 0

    @property
    def size(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    @property
    def enabled(self) -> bool:
        return self.settings.warm_enabled and self.settings.warm_max > 0

    def prestart(self, spec: ProcessSpec) -> None:
        """Start a warm process for ``spec`` if a slot is free and the warm set has room."""
        if not self.enabled or self.size >= self.settings.warm_max:
            return
        if not self.slots.try_acquire():
            return
        try:
            process = self._factory(spec)
        except Exception:
            self.slots.release()
            logger.debug("warm process could not be prepared", exc_info=True)
            return
        task = asyncio.get_running_loop().create_task(process.start())
        task.add_done_callback(_consume_exception)
        self._entries.setdefault(spec.key, []).append(WarmEntry(process, task))
        self.started += 1
        self._ensure_reaper()

    def put_back(self, process: CliProcess) -> bool:
        """Keep a process whose conversation was reset (with its slot); False: caller closes it."""
        settings = self.settings
        too_old = self._too_old(process)
        if not self.enabled or too_old or process.uses >= settings.warm_max_uses or self.size >= settings.warm_max:
            return False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self._entries.setdefault(process.spec.key, []).append(WarmEntry(process, done))
        self.reused += 1
        self._ensure_reaper()
        self.slots.notify()
        return True

    async def take(self, spec: ProcessSpec) -> CliProcess | None:
        """A ready, verified warm process for exactly this spec (its slot comes with it), or None."""
        while True:
            entries = self._entries.get(spec.key)
            if not entries:
                return None
            entry = entries.pop(0)
            if not entries:
                del self._entries[spec.key]
            try:
                await asyncio.wait_for(asyncio.shield(entry.task), WARM_START_WAIT)
            except asyncio.CancelledError:
                self._discard(entry)
                raise
            except TimeoutError:
                # Hung in its start-up (the SDK itself would wait 60 s): a fresh process is quicker.
                logger.warning("warm process not started after %g s; it is stopped", WARM_START_WAIT)
                self._discard(entry)
                continue
            except Exception:
                self._discard(entry)
                continue
            if entry.process.alive() and not self._too_old(entry.process):
                self.hits += 1
                return entry.process
            self._discard(entry)

    def retire_other_credentials(self, spec: ProcessSpec) -> None:
        """Stop warm processes started with another credential (a rotated token retires the old one)."""
        for key, entries in list(self._entries.items()):
            for entry in list(entries):
                if entry.process.spec.credential.value != spec.credential.value:
                    entries.remove(entry)
                    self._discard(entry)
            if not entries:
                self._entries.pop(key, None)

    def evict_one(self) -> bool:
        """Stop the oldest idle warm process and keep its slot for the caller."""
        oldest: tuple[str, WarmEntry] | None = None
        for key, entries in self._entries.items():
            for entry in entries:
                if oldest is None or entry.since < oldest[1].since:
                    oldest = (key, entry)
        if oldest is None:
            return False
        key, entry = oldest
        self._entries[key].remove(entry)
        if not self._entries[key]:
            del self._entries[key]
        self._discard(entry, release=False)
        return True

    def _too_old(self, process: CliProcess) -> bool:
        """Past ``warm_max_age`` since start: it serves no new request (checked on return and on take)."""
        return time.monotonic() - process.created_at > self.settings.warm_max_age

    def _discard(self, entry: WarmEntry, *, release: bool = True) -> None:
        """Stop a warm process. Its slot is freed only once the process is reaped, so a replacement
        never runs next to it: ``max_concurrency`` bounds live processes, not just bookkeeping."""
        self.discarded += 1
        if not entry.task.done():
            entry.task.cancel()
        entry.process.kill()  # at once; the close task below only reaps it and removes its files
        closing = asyncio.get_running_loop().create_task(entry.process.close())
        closing.add_done_callback(_consume_exception)
        if release:
            closing.add_done_callback(lambda _task: self.slots.release())

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Stop processes idle past the idle timeout, and ones that died while idle."""
        while self._entries:
            await asyncio.sleep(min(5.0, self.settings.warm_idle_timeout / 2))
            now = time.monotonic()
            for key, entries in list(self._entries.items()):
                for entry in list(entries):
                    expired = now - entry.since > self.settings.warm_idle_timeout or self._too_old(entry.process)
                    dead = entry.task.done() and (entry.task.exception() is not None or not entry.process.alive())
                    if expired or dead:
                        entries.remove(entry)
                        self._discard(entry)
                if not entries:
                    self._entries.pop(key, None)

    async def close(self) -> None:
        """Stop every warm process (shutdown)."""
        entries = [entry for group in self._entries.values() for entry in group]
        self._entries.clear()
        for entry in entries:
            if not entry.task.done():
                entry.task.cancel()
        await asyncio.gather(*(entry.process.close() for entry in entries), return_exceptions=True)
        for _ in entries:
            self.slots.release()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reaper


def _consume_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
