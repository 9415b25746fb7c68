"""Serving one request: a slot, a process (warm or cold), the stream, and the clean-up.

One :class:`Engine` exists per event loop (per proxy worker; the sync API has its own
loop thread), because asyncio primitives and the CLI's pipes belong to the loop that made
them. The engine is where the lifecycle rules live:

- at most ``max_concurrency`` CLI processes exist at once (:mod:`.slots`);
- a request over its timeout has its process killed and gets 504;
- a cancelled request (client gone) has its process killed at once, not after the SDK's
  five-second grace;
- every path, success or failure, closes the process and removes its workspace.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from claude_agent_sdk.types import Message

from .cli import ProcessSpec, install_launcher, resolve_cli
from .credentials import resolve_credential
from .errors import ClaudeCodeError, CLIFailedError, RequestTimeoutError
from .messages import Prompt
from .observability import RequestRecord, logger, redact, remember_secret
from .pool import WarmPool
from .process import CliProcess
from .settings import Settings
from .slots import Slots
from .streaming import Outcome, text_deltas

_LIVE: weakref.WeakSet[CliProcess] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    """Last resort at interpreter exit: no CLI process outlives the proxy."""
    for process in list(_LIVE):
        process.kill()
        process.workspace.remove()


@dataclass(slots=True)
class Request:
    """A validated request, ready to run."""

    model: str
    prompt: Prompt
    stream: bool
    timeout: float
    max_output_tokens: int | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


class Engine:
    """Slots, warm processes and request execution for one event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = Slots(settings.max_concurrency)
        self.pool = WarmPool(settings, self.slots, self._new_process)
        self._cli: str | None = None
        self._launcher: Path | None = None
        self._remove_stale_workspaces()

    # -- processes -------------------------------------------------------------------------

    def _paths(self) -> tuple[str, Path]:
        if self._cli is None or self._launcher is None:
            self._cli = resolve_cli(self.settings)
            self._launcher = install_launcher(self.settings.state_dir)
        return self._cli, self._launcher

    def _new_process(self, spec: ProcessSpec) -> CliProcess:
        cli, launcher = self._paths()
        process = CliProcess(self.settings, spec, launcher=launcher, cli=cli, stderr=_log_stderr)
        _LIVE.add(process)
        return process

    def _remove_stale_workspaces(self) -> None:
        """Workspaces left by a killed worker: removed when the process that used them is gone."""
        runs = self.settings.state_dir / "run"
        if not runs.is_dir():
            return
        for root in runs.iterdir():
            pidfile = root / "cli.pid"
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, 0)
                continue  # still running: another worker's
            except (OSError, ValueError):
                pass
            try:
                if time.time() - root.stat().st_mtime > 60:
                    shutil.rmtree(root, ignore_errors=True)
            except OSError:
                pass

    def spec_for(self, request: Request) -> ProcessSpec:
        credential = resolve_credential()
        remember_secret(credential.value)
        return ProcessSpec(
            model=request.model,
            system_prompt=request.prompt.system,
            credential=credential,
            max_output_tokens=request.max_output_tokens,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        )

    async def _acquire_process(
        self, spec: ProcessSpec, record: RequestRecord, started: float, *, allow_warm: bool = True
    ) -> CliProcess:
        """A warm process for this spec, or a slot and a fresh one. The caller owns the result."""
        self.pool.retire_other_credentials(spec)
        deadline = time.monotonic() + self.settings.queue_timeout
        while True:
            warm = await self.pool.take(spec) if allow_warm else None
            if warm is not None:
                record.warm = True
                record.cli_start_ms = 0.0
                record.queue_ms = (time.monotonic() - started) * 1000
                return warm
            # An idle warm process for another spec gives way before a request waits.
            if self.slots.try_acquire() or self.pool.evict_one():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self.slots.wait_for_change(remaining):
                raise self.slots.full_error(self.settings.queue_timeout)
        record.queue_ms = (time.monotonic() - started) * 1000
        try:
            process = self._new_process(spec)
        except BaseException:
            self.slots.release()
            raise
        cli_started = time.monotonic()
        try:
            await process.start()
        except BaseException:
            await process.close()
            self.slots.release()
            raise
        record.warm = False
        record.cli_start_ms = (time.monotonic() - cli_started) * 1000
        return process

    async def _finish(self, process: CliProcess, ok: bool) -> None:
        """Return a process to the pool after a verified reset, or stop it (and maybe start a spare)."""
        # A process started with a credential that has since rotated would only be retired by
        # the next request: neither keep it nor start a spare like it.
        current = ok and self.pool.enabled and _credential_is_current(process.spec)
        if current and process.completed and await process.reset() and self.pool.put_back(process):
            return
        process.kill()
        await process.close()
        self.slots.release()
        if current and not self.slots.waiting:
            self.pool.prestart(process.spec)

    # -- requests --------------------------------------------------------------------------

    async def stream(self, request: Request, outcome: Outcome) -> AsyncIterator[str]:
        """Yield the reply's text as it arrives; fill ``outcome``; raise mapped errors.

        Nothing is yielded before the CLI produced text, so every error that can happen
        before that (queue full, bad credentials, upstream refusal) reaches the client as an
        HTTP status rather than in the middle of a stream. A warm process that turns out
        dead or unresponsive before it produced anything is replaced by a fresh one, once.
        """
        started = time.monotonic()
        record = RequestRecord(request.request_id, request.model, request.stream)
        process: CliProcess | None = None
        ok = False
        yielded = False
        try:
            spec = self.spec_for(request)
            async with asyncio.timeout_at(_loop_time(started + request.timeout)):
                allow_warm = True
                while True:
                    process = await self._acquire_process(spec, record, started, allow_warm=allow_warm)
                    try:
                        messages = _first_message_within(
                            process.run(request.prompt), WARM_RESPONSE_TIMEOUT if record.warm else None
                        )
                        # aclosing: the CLI's message stream is closed as soon as the answer is
                        # complete, so the process is idle (and resettable) right away.
                        async with contextlib.aclosing(messages):
                            async for text in text_deltas(messages, outcome, token_setting=spec.credential.setting):
                                if record.ttft_ms is None:
                                    record.ttft_ms = (time.monotonic() - started) * 1000
                                yielded = True
                                yield text
                        break
                    except (CLIFailedError, _WarmUnresponsive):
                        if yielded or not record.warm:
                            raise
                        logger.warning("warm process failed before answering; retrying on a fresh one")
                        failed, process = process, None
                        await self._finish(failed, ok=False)
                        allow_warm = False
            ok = True
            record.finish_reason = outcome.finish_reason
        except TimeoutError:
            record.status = 504
            record.error = "timeout"
            raise RequestTimeoutError(
                f"Claude Code did not finish within {request.timeout:g} s; its process was stopped. Raise "
                "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT (or the request's timeout) for long answers."
            ) from None
        except ClaudeCodeError as exc:
            record.status = exc.status_code
            record.error = redact(exc.message)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            record.status = 499
            record.error = "client went away"
            raise
        except Exception as exc:
            record.status = 500
            record.error = redact(f"{type(exc).__name__}: {exc}")
            logger.exception("unexpected failure in request %s", request.request_id)
            raise
        finally:
            if process is not None:
                if not ok:
                    process.kill()
                self.slots.record_duration(time.monotonic() - started)
                await self._finish(process, ok)
            record.total_ms = (time.monotonic() - started) * 1000
            record.prompt_tokens = outcome.usage.prompt_tokens
            record.completion_tokens = outcome.usage.output_tokens
            record.cached_tokens = outcome.usage.cache_read_input_tokens
            logger.info(record.line())

    async def close(self) -> None:
        await self.pool.close()


# A warm process answers a user turn with its init message within milliseconds; one that
# says nothing for this long is treated as hung and replaced.
WARM_RESPONSE_TIMEOUT = 3.0


class _WarmUnresponsive(Exception):
    """A warm process did not react to a user turn in time."""


async def _first_message_within(
    messages: AsyncIterator[Message], timeout: float | None
) -> AsyncGenerator[Message, None]:
    iterator = aiter(messages)
    try:
        if timeout is not None:
            try:
                first = await asyncio.wait_for(anext(iterator), timeout)
            except TimeoutError:
                raise _WarmUnresponsive from None
            except StopAsyncIteration:
                return
            yield first
        async for message in iterator:
            yield message
    finally:
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            await closer()


def _credential_is_current(spec: ProcessSpec) -> bool:
    try:
        return resolve_credential().value == spec.credential.value
    except ClaudeCodeError:
        return False


def _loop_time(deadline: float) -> float:
    """Convert a time.monotonic() deadline to the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _log_stderr(line: str) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("cli stderr: %s", redact(line.rstrip()))
