"""Serving one request: a process (warm or new), the stream, and what the process keeps afterwards.

One :class:`Engine` exists per event loop (per proxy worker; the sync API has its own
loop thread), because asyncio primitives and the CLI's pipes belong to the loop that made
them. The engine is where the lifecycle rules live:

- at most ``max_concurrency`` CLI processes exist at once (:mod:`.slots`, :mod:`.pool`);
- a request gets the process that holds most of its conversation, fitted to it
  (:meth:`.process.CliProcess.prepare`), or a new one started on its history;
- a request over its timeout has its process killed and gets 504;
- a cancelled request (client gone) has its process killed at once, not after the SDK's
  five-second grace;
- after an answer the process keeps the conversation exactly as the client received it, or
  the turn is cut off again, or the process is stopped: never anything in between.
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
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from claude_agent_sdk.types import Message

from . import _metrics as metrics
from ._cli import Binding, Launch, install_launcher, resolve_cli, working_directory
from ._cost import request_cost
from ._credentials import resolve_credential
from ._errors import ClaudeCodeError, CLIFailedError, RequestTimeoutError, UpstreamServerError
from ._host import concurrency_for, read_host
from ._messages import Conversation, Turn
from ._observability import RequestRecord, logger, redact, remember_secret
from ._pool import Process, ProcessPool
from ._process import CliProcess, Plan
from ._reasoning import Reasoning
from ._settings import Settings
from ._slots import Slots
from ._stops import StopCutter
from ._streaming import Delta, Outcome, deltas
from ._structured import check as check_structured
from ._tools import ToolSet, answer_turn, wire_name

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
    conversation: Conversation
    stream: bool
    timeout: float
    max_output_tokens: int | None = None
    reasoning: Reasoning = field(default_factory=Reasoning)
    stop: tuple[str, ...] = ()
    """Stop strings (emulated, :mod:`.stops`)."""
    tenant: str = ""
    """Who asks (the LiteLLM key, hashed): a process serves one for life, and affinity never crosses."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    tools: ToolSet | None = None
    """The client's tools (the conversation names earlier calls as Claude saw them, :func:`.tools.to_wire`)."""
    schema: str | None = None
    """The ``response_format`` schema (:mod:`.structured`): the answer is JSON matching it."""
    forced: bool = False
    """``tool_choice`` asks for a call (``required``, or ``forced_name``): emulated (:meth:`Engine.stream`)."""
    forced_name: str | None = None
    single_call: bool = False
    """``parallel_tool_calls: false``: the first call is handed back, the others kept from the client."""
    not_applied: tuple[str, ...] = ()
    """Parameters served but not applied (:mod:`.parameters`), for the log line."""

    @property
    def binding(self) -> Binding:
        return Binding(
            self.model,
            self.conversation.system,
            self.max_output_tokens,
            tools=self.tools,
            reasoning=self.reasoning,
            schema=self.schema,
        )


class EngineProcess(Process, Protocol):
    """What the engine needs of a CLI process beyond the pool's :class:`~._pool.Process`.

    :class:`~._process.CliProcess` in production; a fake yielding scripted SDK messages in
    ``tests/provider/test_engine.py``, so the request loop's rules are tested without a CLI.
    """

    async def prepare(self, plan: Plan, binding: Binding) -> None: ...

    def run(self, conversation: Conversation, *, follow_up: bool = False) -> AsyncIterator[Message]: ...

    def commit(self, answer: Turn) -> bool: ...

    async def drop_turn(self) -> None: ...


ProcessFactory = Callable[[Launch, Binding], EngineProcess]
"""Makes a (not yet started) process for a request's credential and binding."""


class Engine:
    """Slots, processes and request execution for one event loop.

    ``process_factory`` is the seam for unit tests (like an HTTP client's mock transport);
    by default processes are real CLI processes.
    """

    def __init__(self, settings: Settings, process_factory: ProcessFactory | None = None) -> None:
        self.settings = settings
        self.slots = Slots(settings.max_concurrency)
        self.pool: ProcessPool[EngineProcess] = ProcessPool(settings, self.slots, process_factory or self._new_process)
        self._cli: str | None = None
        self._launcher: Path | None = None
        self._cwd: Path | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._remove_stale_workspaces()
        metrics.bind_engine(self)
        host = read_host()
        # Once per worker: the limits in force, and what the host-derived rule gives, so an
        # operator sees whether the defaults or explicit values apply and what they came from.
        logger.info(
            "claude_code_limits max_concurrency=%d warm_max=%d warm_floor=%d warm_enabled=%s auto=%d host=%r",
            settings.max_concurrency,
            settings.warm_max,
            self.pool.floor,
            str(settings.warm_enabled).lower(),
            concurrency_for(host.cpus, host.memory),
            host.describe(),
        )

    # -- processes -------------------------------------------------------------------------

    def _paths(self) -> tuple[str, Path, Path]:
        if self._cli is None or self._launcher is None or self._cwd is None:
            self._cli = resolve_cli(self.settings)
            self._launcher = install_launcher(self.settings.state_dir)
            self._cwd = working_directory(self.settings.state_dir)
        return self._cli, self._launcher, self._cwd

    def _new_process(self, launch: Launch, binding: Binding) -> CliProcess:
        cli, launcher, cwd = self._paths()
        process = CliProcess(self.settings, launch, binding, cwd=cwd, launcher=launcher, cli=cli, stderr=_log_stderr)
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

    def launch(self) -> Launch:
        """What processes for a request now are started with: the current credential and upstream."""
        credential = resolve_credential()
        for secret in (credential.value, *credential.secrets):
            remember_secret(secret)
        return Launch(credential=credential, base_url=os.environ.get("ANTHROPIC_BASE_URL") or None)

    def _finish(self, process: EngineProcess, outcome: Outcome | None) -> None:
        """After a request: keep the process with its conversation, cut the turn off, or stop it."""
        if outcome is None or not _credential_is_current(process.launch):
            process.kill()
            self.pool.checkin(process, keep=False)
        elif process.completed and process.binding.schema is None and outcome.exact:
            # A structured turn is always cut off: the CLI holds a StructuredOutput call, the
            # client got its input as content (:mod:`.structured`). So is a turn of which the
            # client got less than the CLI holds (``Outcome.exact``): text held back, calls
            # kept from it, a follow-up asking for the call.
            self.pool.checkin(process, keep=process.commit(answer_turn(outcome.text, outcome.tool_calls)))
        else:
            task = asyncio.get_running_loop().create_task(self._drop_turn(process))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _drop_turn(self, process: EngineProcess) -> None:
        """An answer that ended without the CLI's result: stop the CLI's own follow-up, forget the turn."""
        try:
            await process.drop_turn()
        except Exception:
            logger.debug("could not cut an unfinished turn off; the process is stopped", exc_info=True)
            process.kill()
            self.pool.checkin(process, keep=False)
            return
        self.pool.checkin(process, keep=True)

    # -- requests --------------------------------------------------------------------------

    async def stream(self, request: Request, outcome: Outcome) -> AsyncIterator[Delta]:
        """Yield the reply's pieces (:class:`~.streaming.Delta`) as they arrive; fill ``outcome``; raise mapped errors.

        Nothing is yielded before the CLI produced text, so every error that can happen
        before that (queue full, bad credentials, upstream refusal) reaches the client as an
        HTTP status rather than in the middle of a stream. A warm process that turns out
        dead or unresponsive before it produced anything is replaced by a new one, once.
        """
        started = time.monotonic()
        record = RequestRecord(request.request_id, request.model, request.stream)
        conversation = request.conversation
        record.turns = len(conversation.turns)
        process: EngineProcess | None = None
        ok = False
        yielded = False
        try:
            launch = self.launch()
            binding = request.binding
            async with asyncio.timeout_at(_loop_time(started + request.timeout)):
                allow_warm = True
                while True:
                    lease = await self.pool.checkout(
                        conversation, binding, launch, request.tenant, allow_warm=allow_warm
                    )
                    process = lease.process
                    record.warm = lease.warm
                    record.cold_reason = lease.cold_reason
                    record.conversation = lease.plan.kind
                    record.cli_start_ms = lease.start_ms
                    record.queue_ms = (time.monotonic() - started) * 1000 - lease.start_ms
                    try:
                        prepare_started = time.monotonic()
                        await process.prepare(lease.plan, binding)
                        record.prepare_ms = (time.monotonic() - prepare_started) * 1000
                        messages = _first_message_within(
                            process.run(conversation), WARM_RESPONSE_TIMEOUT if lease.warm else None
                        )
                        # aclosing: the CLI's message stream is closed as soon as the answer is
                        # complete, so the process is idle (and reusable) right away.
                        cutter = StopCutter(request.stop) if request.stop else None
                        async with contextlib.aclosing(messages):
                            async for delta in _kept(
                                request,
                                outcome,
                                deltas(
                                    messages,
                                    outcome,
                                    token_setting=launch.credential.setting,
                                    cloud=launch.credential.cloud,
                                    client_tools=request.tools is not None,
                                    structured=request.schema is not None,
                                ),
                            ):
                                if cutter is not None and delta.text:
                                    # The answer ends at a stop string; leaving the loop before the
                                    # CLI's result makes _finish stop the turn and cut it off.
                                    delta = Delta(text=cutter.feed(delta.text))
                                    if cutter.stopped:
                                        outcome.finish_reason = "stop"
                                    if not delta.text and not cutter.stopped:
                                        continue
                                if record.ttft_ms is None:
                                    record.ttft_ms = (time.monotonic() - started) * 1000
                                if delta.text or delta.reasoning or delta.tool_call:
                                    yielded = True
                                    yield delta
                                if cutter is not None and cutter.stopped:
                                    break
                            if cutter is not None and (rest := cutter.flush()):
                                yield Delta(text=rest)
                        if request.forced:
                            async for delta in self._ask_for_the_call(process, request, outcome, launch):
                                yielded = True
                                yield delta
                        if request.single_call and len(outcome.tool_calls) > 1:
                            outcome.tool_calls = outcome.tool_calls[:1]
                            outcome.exact = False
                        outcome.cost_usd = request_cost(process, outcome.cost_usd)
                        if request.schema is not None:
                            # Bounded (_structured.CHECK_SECONDS), and off the loop: other streams go on.
                            await asyncio.to_thread(check_structured, outcome.text, request.schema)
                        break
                    except (CLIFailedError, _WarmUnresponsive):
                        if yielded or not lease.warm:
                            raise
                        logger.warning("warm process failed before answering; retrying on a new one")
                        failed, process = process, None
                        self._finish(failed, None)
                        allow_warm = False
            ok = True
            record.finish_reason = outcome.finish_reason
            record.not_applied = request.not_applied
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
                self.slots.record_duration(time.monotonic() - started)
                self._finish(process, outcome if ok else None)
            record.total_ms = (time.monotonic() - started) * 1000
            record.prompt_tokens = outcome.usage.prompt_tokens
            record.completion_tokens = outcome.usage.output_tokens
            record.cached_tokens = outcome.usage.cache_read_input_tokens
            record.hit_rate = self.pool.stats.hit_rate
            if outcome.rate_limit is not None:
                record.rate_limit = outcome.rate_limit.log_field()
            logger.info(record.line())
            metrics.observe(record)

    async def _ask_for_the_call(
        self, process: EngineProcess, request: Request, outcome: Outcome, launch: Launch
    ) -> AsyncIterator[Delta]:
        """``tool_choice`` emulated: a turn that ended without a call is asked for one, then 502.

        The CLI sets Claude's ``tool_choice`` itself (auto), so a call cannot be forced upstream.
        A turn that ends without one gets a follow-up user turn in the same process asking for
        the call (:data:`FORCE_RETRIES` times), and the call it makes is handed back. The CLI
        then holds turns the client never sees, so the turn is cut off afterwards
        (``Outcome.exact``); the client's next request writes back what it received.
        """
        for _ in range(FORCE_RETRIES):
            if outcome.tool_calls or not process.completed:
                break
            more = Outcome()
            ask = Turn("user", ({"type": "text", "text": _call_request(request)},))
            messages = _first_message_within(
                process.run(Conversation(request.conversation.system, (ask,)), follow_up=True), None
            )
            async with contextlib.aclosing(messages):
                async for delta in _kept(
                    request,
                    more,
                    deltas(
                        messages,
                        more,
                        token_setting=launch.credential.setting,
                        cloud=launch.credential.cloud,
                        client_tools=True,
                    ),
                ):
                    yield delta
            outcome.exact = False
            outcome.usage = outcome.usage + more.usage
            outcome.cost_usd = more.cost_usd if more.cost_usd is not None else outcome.cost_usd
            outcome.stop_reason, outcome.finish_reason = more.stop_reason, more.finish_reason
            outcome.tool_calls = more.tool_calls
            outcome.parts += more.parts
        if not outcome.tool_calls:
            wanted = f"a call of {request.forced_name}" if request.forced_name else "a tool call"
            raise UpstreamServerError(
                f"tool_choice asks for {wanted}, but Claude ended its answer without one, also when asked again "
                f"(finish: {outcome.stop_reason or outcome.finish_reason}). Retry the request, or send tool_choice "
                "'auto' to receive the text answer."
            )
        if outcome.parts:
            outcome.parts.clear()  # held back: the forced answer is the call alone
            outcome.exact = False

    async def warm_up(self) -> bool:
        """Start the floor of clean processes and wait for it, at most ``warm_ready_timeout``.

        The proxy's start-up awaits this (:func:`.proxy_hooks.warm_up`), so its port opens, and
        ``/health/readiness`` answers, only with the floor warm or the bounded wait passed: a
        restart, a deploy or a rolling update hands its first users warm processes. The log line
        ``claude_code_warm_up`` says which happened. True when the floor is ready.
        """
        started = time.monotonic()
        floor = self.pool.floor
        try:
            launch = self.launch()
            # The CLI found and its digest checked (0.3 to 0.8 s), its launcher written: before
            # readiness, in a thread, rather than on a first request's event loop.
            await asyncio.to_thread(self._paths)
        except ClaudeCodeError as exc:
            logger.warning("claude_code_warm_up floor=%d ready=0 outcome=error error=%r", floor, redact(str(exc)))
            return False
        ready = await self.pool.warm_up(launch, self.settings.warm_ready_timeout)
        logger.info(
            "claude_code_warm_up floor=%d ready=%d outcome=%s waited_ms=%d",
            floor,
            self.pool.clean(),
            "warm" if ready else "timeout",
            (time.monotonic() - started) * 1000,
        )
        return ready

    async def close(self) -> None:
        if self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)
        await self.pool.close()


# Follow-up turns asking for the call when tool_choice asks for one and Claude ended without:
# one. A model that ignored an explicit request in its own context mostly ignores the second
# too, and each costs a whole turn of the client's wait.
FORCE_RETRIES = 1


def _call_request(request: Request) -> str:
    """The follow-up user turn that asks Claude for the call ``tool_choice`` requires."""
    if request.forced_name:
        return (
            f"Call the tool {wire_name(request.forced_name)} now: this request requires a call of it. "
            "Answer with the tool call only."
        )
    return "Call one of your tools now: this request requires a tool call. Answer with the tool call only."


async def _kept(request: Request, outcome: Outcome, source: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """What of the answer reaches the client: with a forced ``tool_choice`` no text (Anthropic's
    forced tool use writes none; the text is held back), with ``parallel_tool_calls: false`` the
    first call only (the others are kept back; the engine cuts the turn off afterwards)."""
    async for delta in source:
        if request.forced and delta.text:
            continue
        if request.single_call and delta.tool_call is not None and delta.tool_call.index > 0:
            continue
        yield delta


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


def _credential_is_current(launch: Launch) -> bool:
    try:
        return resolve_credential().value == launch.credential.value
    except ClaudeCodeError:
        return False


def _loop_time(deadline: float) -> float:
    """Convert a time.monotonic() deadline to the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _log_stderr(line: str) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("cli stderr: %s", redact(line.rstrip()))
