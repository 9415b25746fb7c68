"""The bridge between an async generator and whoever consumes it: a task of its own on the same
loop (the proxy), or a private loop on a thread (the sync API for scripts).

Both sides share one pump (:func:`_pump`): it runs the generator to its end and hands each item,
then the end or the error, to a queue, so the generator always runs in one task from start to
end, whichever task or thread reads it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Message = tuple[str, Any]
"""What the pump sends: ``("item", value)``, then ``("end", None)`` or ``("error", exception)``."""


async def _pump(source: AsyncIterator[T], put: Callable[[_Message], None]) -> None:
    """Run ``source`` to its end, passing each item, then its end or its error, to ``put``.

    A cancellation is passed on too (the reader sees it) and then re-raised, so the task running
    the pump ends cancelled, as its owner asked."""
    try:
        async for item in source:
            put(("item", item))
    except BaseException as exc:
        put(("error", exc))
        if isinstance(exc, asyncio.CancelledError):
            raise
    else:
        put(("end", None))


async def in_own_task(source: AsyncIterator[T]) -> AsyncIterator[list[T]]:
    """Iterate ``source`` in a task of its own and pass its items on, in batches: each batch is
    every item that arrived while the consumer was busy (one, when it keeps up).

    The engine bounds a request with ``asyncio.timeout``, which cancels the task that entered
    it. The LiteLLM proxy pulls a stream's first chunk in one task and the rest in another
    (the response's), so, run directly, a stream's timeout would cancel a task that is long
    done and a slow stream would run unbounded. Here one task runs the engine's generator
    from start to end. When the consumer goes away (closed stream, cancelled request), that
    task is cancelled and awaited, so the CLI process is stopped before this returns.

    Batches let the caller send what piled up as one chunk (``_provider._merged``): on a busy
    proxy LiteLLM's per-chunk work (building, logging and encoding each chunk, about a
    millisecond) is most of its CPU per request, and a stream that fell behind catches up with
    fewer chunks instead of falling further behind. Nothing is held back to fill a batch.
    """
    items: asyncio.Queue[_Message] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(_pump(source, items.put_nowait))
    try:
        while True:
            kind, value = await items.get()
            batch: list[T] = []
            while kind == "item":
                batch.append(value)
                if items.empty():
                    break
                kind, value = items.get_nowait()
            if batch:
                yield batch
            if kind == "error":
                raise value
            if kind == "end":
                return
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=30)


class LoopThread:
    """A private event loop on a daemon thread: the sync API runs the async code here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="litellm-claude-code", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the loop after its current step and wait for the thread to end."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """``agen``'s items, read from another thread: the pump runs on this loop, the caller
        blocks on a thread-safe queue; leaving the loop early cancels the pump."""
        items: queue.Queue[_Message] = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(_pump(agen, items.put), self.loop)

        def generate() -> Iterator[T]:
            try:
                while True:
                    kind, value = items.get()
                    if kind == "item":
                        yield value
                    elif kind == "error":
                        raise value
                    else:
                        return
            finally:
                if not future.done():
                    future.cancel()

        return generate()
