"""The Python API of the fake: :class:`FakeAnthropicServer`, a server on its own thread.

A thread (not a subprocess) so a test pushes scenarios and reads the request log directly;
``python -m litellm_claude_code.testing.fake_anthropic`` runs the same app as a process."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from litellm_claude_code.testing._app import _make_app, _url_host
from litellm_claude_code.testing._cache import (
    DEFAULT_MIN_TOKENS,
    PromptCache,
)
from litellm_claude_code.testing._planner import _merge
from litellm_claude_code.testing._scenario import _TEXT_KEYS, DEFAULT_TOKENS, Scenario, validate_scenario
from litellm_claude_code.testing._state import _State


class FakeAnthropicServer:
    """The fake server running on its own event loop in a background thread.

    A thread (rather than the test's loop) makes the same object usable from sync
    tests, async tests and while a blocking subprocess (the CLI) runs::

        with FakeAnthropicServer() as fake:
            env["ANTHROPIC_BASE_URL"] = fake.base_url
            ...
            assert fake.requests()[0]["model"].startswith("claude-")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: int = DEFAULT_TOKENS,
        token_delay: float = 0.0,
        accept_keys: Iterable[str] | None = None,
        default: Scenario | None = None,
        cache: bool = True,
        cache_min_tokens: int = DEFAULT_MIN_TOKENS,
        cache_clock: Callable[[], float] = time.monotonic,
        aws_keys: Mapping[str, str] | None = None,
    ) -> None:
        """``cache=False`` turns the prompt-cache simulation off (all input uncached);
        ``cache_min_tokens`` is the shortest cacheable prefix; ``cache_clock`` (a
        monotonic clock in seconds) lets a test expire entries without sleeping.
        ``aws_keys`` (access key id -> secret key) makes the Bedrock routes verify each
        request's SigV4 signature (:mod:`._cloud`); without, only its form is checked."""
        base: Scenario = {"tokens": tokens, "token_delay": token_delay}
        base.update(default or {})
        prompt_cache = PromptCache(cache_min_tokens, cache_clock) if cache else None
        self._state = _State(base, accept_keys, prompt_cache, dict(aws_keys) if aws_keys is not None else None)
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(f"fake Anthropic server failed to start: {self._startup_error}") from (
                self._startup_error
            )
        if self._port is None:
            raise RuntimeError("fake Anthropic server did not start within 30 s")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight streams are cut after ~0.5 s)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._thread = None
        self._loop = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = web.AppRunner(_make_app(self._state), access_log=None, shutdown_timeout=0.25)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self._host, self._requested_port)
            loop.run_until_complete(site.start())
            self._port = int(runner.addresses[0][1])
        except OSError as exc:  # e.g. address in use: reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # addresses ---------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to put in ``ANTHROPIC_BASE_URL`` (no trailing slash, no /v1)."""
        return f"http://{_url_host(self._host)}:{self.port}"

    # inspection and scripting --------------------------------------------------

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """A deep copy of the request log, optionally only one path."""
        records = self._state.snapshot()
        return [r for r in records if path is None or r["path"] == path]

    def messages_requests(self) -> list[dict[str, Any]]:
        """Only the ``POST /v1/messages`` requests (what most tests assert on)."""
        return [r for r in self.requests("/v1/messages") if r["method"] == "POST"]

    def cloud_requests(self, api: str) -> list[dict[str, Any]]:
        """The Messages requests that came by ``api`` (``"vertex"`` or ``"bedrock"``): their
        ``model``, ``project`` and ``region`` are from the URL, ``auth`` is the access token
        (Vertex) or the access key id (Bedrock's SigV4, ``auth_scheme`` ``"sigv4"``)."""
        return [r for r in self.requests() if r.get("api") == api and r["method"] == "POST"]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` requests were logged (for other threads)."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while len(self._state.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} requests, got {len(self._state.requests)}")
                self._state.cond.wait(left)
        return self.requests()

    def clear(self) -> None:
        """Forget logged requests and queued scenarios (not the default)."""
        with self._state.cond:
            self._state.requests.clear()
            self._state.queue.clear()

    def clear_cache(self) -> int:
        """Forget every cached prompt prefix (all credentials and models); returns how
        many entries were live.  Safe from any thread (the cache has its own lock)."""
        cache = self._state.cache
        return cache.clear() if cache is not None else 0

    def push(self, scenario: Scenario | Sequence[Scenario]) -> int:
        """Queue one scenario or a list; each /v1/messages request without a
        directive consumes one, FIFO.  Returns the queue length."""
        return self._state.push(list(scenario) if isinstance(scenario, list | tuple) else scenario)

    def pending_scenarios(self) -> list[Scenario]:
        with self._state.cond:
            return copy.deepcopy(list(self._state.queue))

    def set_default(self, **kwargs: Any) -> None:
        """Merge keys into the default scenario (``None`` removes a key); e.g.
        ``set_default(token_delay=0.05)`` or ``set_default(error={"status": 529})``."""
        with self._state.cond:
            merged = _merge(self._state.default, kwargs)
            if not any(k in merged for k in _TEXT_KEYS):
                merged["tokens"] = DEFAULT_TOKENS
            self._state.default = validate_scenario(merged)

    def set_accept_keys(self, keys: Iterable[str] | None) -> None:
        """Change which credentials are accepted (``None``: any non-empty key)."""
        with self._state.cond:
            self._state.accept_keys = frozenset(keys) if keys is not None else None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<FakeAnthropicServer {where}>"
