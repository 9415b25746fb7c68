"""The CLI processes of one event loop: which one serves a request, which are kept, which start
ahead.

Start-up is most of a cold request's wait and CPU (about 0.4 s and one CPU-second), so the pool
keeps idle processes ready, up to ``warm_max`` of them, and every process, busy or idle, holds
one of the ``max_concurrency`` slots. Because a process is bound at start only to its credential
(:class:`~.cli.Launch`) and everything else is set over its control channel, any idle process of
the request's credential may serve it, with three exceptions: a process serves one LiteLLM key
for life (the first that used it), a process once given a system prompt cannot serve a request
without one, and the model of a conversation a process keeps does not change. Whatever earlier
turns a process does not hold are written to it before the new turn
(:meth:`~.process.CliProcess.prepare`), so a conversation that comes back to another process, or
to this gateway after a restart, is still served warm.

Choosing among the idle processes, the pool prefers (:func:`_score`):

1. the one that holds the most of the request's conversation, so a follow-up turn is written to
   the process that answered the turn before and costs only itself;
2. then one that needs no cut (a fresh process for a new conversation: every conversation held
   is kept), even if it is still starting: a cut costs the conversation it removes a rebuild on
   its next turn and, upstream, a prompt-cache miss on its whole history, far more than the rest
   of a start (about half a second; a few seconds on a loaded host);
3. then one that is ready over one still starting;
4. then, for a request with a system prompt, one that already has one: a process without a
   system prompt is the only kind that can serve a request without one, so the last of them is
   spent last, while requests without one come back within ``WARM_MAX`` + 1 requests;
5. then the least recently used: a conversation idle the longest is the least likely to go on.

A request that no idle process can serve gets a new process; when every slot is taken, the least
recently used idle process gives way, so no conversation or spec can hold the warm set hostage.
A process that has just served a request is kept and, when the warm set is over ``warm_max``,
the least recently used idle process is stopped instead. Spares are started whenever the warm
set has room and a slot is free, for the credential, model and client tools most asked for by the
recent requests and not yet ready in a clean process (a process lists its tools once, at start:
:meth:`ProcessPool._spare_spec`), so a burst finds processes ready; no more
start at once than half the CPUs (at least one), so the start-up of spares leaves CPU to the requests
being served.

Eviction is least recently used, not weighted by how often a process's model or system prompt is
asked for: for a new conversation any idle process is fitted late (model, system prompt, output
limit), so a process's spec matters only to the conversation it holds, and recency is what
predicts whether that conversation goes on. A request served cold because a process that could
have served it was stopped for room is logged with ``cold_reason=evicted``.

Idle processes are stopped after the idle timeout, and never reused past the maximum age or
number of uses, nor after their credential rotated. A discarded process gives its slot back only
once it is reaped, so ``max_concurrency`` bounds live processes, not only the bookkeeping.

How many processes are kept follows demand, between two bounds:

- **The floor** (``warm_floor``): clean processes, started and never used, so holding no
  conversation, no system prompt and no key. They are started before the first request
  (:meth:`ProcessPool.warm_up`, which the proxy's start-up awaits, so the port opens warm) and
  kept whatever the quiet: the idle timeout does not apply to them, and one nearing its maximum
  age (within :data:`REFRESH_MARGIN`) is replaced before it is stopped, so a new chat never waits
  for a start while the floor holds. A clean process taken by a request is replaced at once from
  a free slot; when every slot is taken, an idle conversation gives way for it only once the
  gateway is quiet (:data:`GIVE_WAY_QUIET`; under load, a new chat cuts the least recently used
  conversation instead: warm, and no CPU-second spent on a start per request).
- **The recent peak**: clean spares are started until a burst as large as the most concurrent
  requests seen within ``warm_window`` finds one each (the peak less the requests busy now), up to
  ``warm_max``. Once the peak leaves the window, clean spares beyond the floor are stopped.
  Processes holding a conversation are not counted as spares (a new chat given one would cut its
  chat); they stay until the idle timeout, for their chat.

The two share ``warm_max`` (the most idle processes kept): when the idle set is over it, the least
recently used conversation is stopped first and the floor's clean processes last, so the floor is
kept within ``warm_max`` and conversations have ``warm_max - warm_floor`` of it to themselves. An
idle gateway holds the proxy and the floor.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ._cli import Binding, Launch
from ._host import read_host
from ._messages import Conversation
from ._process import HeldTurn, Plan, plan_for
from ._settings import Settings
from ._slots import Slots
from ._tools import ToolSet

logger = logging.getLogger("litellm_claude_code")

# Recent requests whose models decide the model of the next spare.
MODEL_WINDOW = 32

# How long a request waits for a spare that is still starting. A start takes about half a
# second, a dozen on two busy cores; one that takes longer is hung, and is replaced.
WARM_START_WAIT = 20.0

# A clean process of the floor this close to its maximum age (seconds, at most a tenth of the
# age) gets a replacement started; it is stopped once the replacement is ready.
REFRESH_MARGIN = 60.0

# How long the gateway must have been quiet before an idle conversation gives way to refill the
# floor when every slot is taken (seconds). Under steady traffic a new chat cuts the least
# recently used conversation instead; a start per request costs a CPU-second.
GIVE_WAY_QUIET = 2.0

# After a spare failed to start, no other is started for this long (seconds): a CLI that cannot
# start is not restarted in a loop; requests still start their own and say why they fail.
START_BACKOFF = 5.0

# A conversation whose last answer handed the client tool calls is given up for room after the
# other conversations for this long (seconds): a coding agent's next turn is that tool's result,
# usually within seconds. Bounded so that calls a client never answers cannot pin the idle set.
TOOL_RESULT_WAIT = 30.0


class Process(Protocol):
    """What the pool needs of a CLI process (:class:`~.process.CliProcess`; a fake in unit tests)."""

    launch: Launch
    binding: Binding
    held: list[HeldTurn]
    tenant: str | None
    created_at: float
    last_used: float
    uses: int
    completed: bool
    awaits_tool_results: bool

    def plan(self, conversation: Conversation, binding: Binding, tenant: str) -> Plan | None: ...

    async def start(self) -> None: ...

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    async def close(self) -> None: ...


P = TypeVar("P", bound=Process)


@dataclass(slots=True)
class Entry(Generic[P]):
    """An idle (or starting) process and the task starting it."""

    process: P
    task: asyncio.Future[None]
    since: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Lease(Generic[P]):
    """A process handed to one request, how it serves it, and why it was not warm (if it was not)."""

    process: P
    plan: Plan
    warm: bool
    cold_reason: str | None = None
    start_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Evicted:
    """What a process stopped for room could serve, so a cold start it causes is named ``evicted``."""

    launch_key: str
    binding: Binding
    tenant: str | None
    at: float


@dataclass(slots=True)
class PoolStats:
    """Counters an operator reads (log line, status playbook)."""

    requests: int = 0
    warm: int = 0
    continued: int = 0
    started: int = 0
    discarded: int = 0
    cold_reasons: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def hit_rate(self) -> float:
        return self.warm / self.requests if self.requests else 0.0


def _awaits_tool_results(process: Process, now: float) -> bool:
    """Its last answer handed the client tool calls, within ``TOOL_RESULT_WAIT``: keep it for them."""
    return process.awaits_tool_results and now - process.last_used < TOOL_RESULT_WAIT


def _score(
    entry: Entry[P], plan: Plan, binding: Binding, *, plain_scarce: bool
) -> tuple[int, int, int, int, int, float]:
    """Most turns kept first; then no cut over a cut (a spare still starting is waited for rather
    than another conversation cut); then a ready process over one still starting; then, when it is
    the last idle process without a system prompt (``plain_scarce``), one that
    loses nothing by taking this system prompt over the one that could still serve requests
    without one; then the least recently used.

    The system-prompt rule applies only to the last such process, and only while requests without
    a system prompt are among the recent ones: an app without a system prompt then stays warm
    beside apps with one; while there are others to spend, the least recently used conversation
    is the one given up, not the chat that just spoke; and a process left from requests without a
    system prompt that stopped coming is given up before any chat (kept back regardless, it made
    as many chats as warm processes cut each other in turn, every follow-up rebuilt). A chat
    waiting for its client's tool results is cut only when no other is left to cut.
    """
    ready = 1 if entry.task.done() else 0
    spends = plain_scarce and binding.system_prompt is not None and entry.process.binding.system_prompt is None
    waits = _awaits_tool_results(entry.process, time.monotonic())
    return (plan.keep, 0 if plan.rewind else 1, ready, 0 if spends else 1, 0 if waits else 1, -entry.process.last_used)


class ProcessPool(Generic[P]):
    """Every CLI process of one event loop. Each holds one of the engine's slots."""

    def __init__(
        self,
        settings: Settings,
        slots: Slots,
        factory: Callable[[Launch, Binding], P],
        *,
        starting_limit: int | None = None,
    ) -> None:
        self.settings = settings
        self.slots = slots
        self._factory = factory
        self._idle: list[Entry[P]] = []
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # What recent requests asked for (model and client tools): spares are started for the most common.
        self._specs: collections.deque[tuple[str, ToolSet | None]] = collections.deque(maxlen=MODEL_WINDOW)
        # Whether each of the last WARM_MAX + 1 requests had no system prompt: the last idle process
        # without one is kept back for such requests only while one of them is among these, that is
        # while they come back within a round of the warm set (:func:`_score`).
        self._plain: collections.deque[bool] = collections.deque(maxlen=max(1, settings.warm_max) + 1)
        self._evicted: collections.deque[Evicted] = collections.deque(maxlen=max(8, 2 * settings.max_concurrency))
        # Spares starting at once: half the CPUs, at least one. Each start is about a CPU-second; the
        # other half is left to the requests being served (a burst of starts slowed them on 2 cores).
        self.starting_limit = starting_limit or max(1, int(read_host().cpus) // 2)
        self._last_launch: Launch | None = None
        self._closed = False
        # Processes leased to requests now, and (time, leased) at each checkout within the window.
        self.busy = 0
        self._peaks: collections.deque[tuple[float, int]] = collections.deque()
        self._start_failed_at = -START_BACKOFF
        self._last_checkout = -GIVE_WAY_QUIET
        self.stats = PoolStats()

    # -- views ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.settings.warm_enabled and self.settings.warm_max > 0

    @property
    def idle(self) -> int:
        """Idle processes, started or starting (the warm set)."""
        return len(self._idle)

    @property
    def floor(self) -> int:
        """Clean processes kept ready (``warm_floor``; none when warm processes are off)."""
        return min(self.settings.warm_floor, self.settings.warm_max) if self.enabled else 0

    def clean(self) -> int:
        """Clean processes of the floor: idle (or starting), never used, not about to age out."""
        return sum(1 for entry in self._idle if self._counts_for_floor(entry))

    def demand(self) -> int:
        """The most requests served at once within ``warm_window`` (the busy ones now included)."""
        horizon = time.monotonic() - self.settings.warm_window
        while self._peaks and self._peaks[0][0] < horizon:
            self._peaks.popleft()
        return max([self.busy, *(leased for _, leased in self._peaks)])

    def wanted(self) -> int:
        """Clean processes that spares are started up to: as many as the recent peak would find
        busy on top of those busy now, and at least the floor; never more than ``warm_max``."""
        if not self.enabled:
            return 0
        return min(self.settings.warm_max, max(self.floor, self.demand() - self.busy))

    def idle_processes(self) -> list[P]:
        return [entry.process for entry in self._idle]

    def entries(self) -> list[Entry[P]]:
        """The idle and starting processes with their start tasks (a copy, for inspection)."""
        return list(self._idle)

    # -- a request ----------------------------------------------------------------------------

    async def checkout(
        self, conversation: Conversation, binding: Binding, launch: Launch, tenant: str, *, allow_warm: bool = True
    ) -> Lease[P]:
        """A process for this request, ready to be prepared with the lease's plan; the caller owns it.

        ``allow_warm=False`` (a warm process just failed this request): a new process, whatever is idle.
        """
        self.stats.requests += 1
        self._last_checkout = time.monotonic()
        self._specs.append((binding.model, binding.tools))
        self._plain.append(binding.system_prompt is None)
        self._last_launch = launch
        self._retire_other_credentials(launch)
        arrived = time.monotonic()
        deadline = arrived + self.settings.queue_timeout
        reason = "disabled" if self.enabled is False else "retry"
        while True:
            if self.enabled and allow_warm:
                found = await self._take(conversation, binding, launch, tenant)
                if isinstance(found, Lease):
                    self.stats.warm += 1
                    if found.plan.affinity:
                        self.stats.continued += 1
                    self._leased()
                    self._replenish()
                    return found
                reason = found
            # A request that no idle process can serve takes a free slot, or the least useful idle process's.
            if self.slots.try_acquire() or await self._evict_for_caller():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self.slots.wait_for_change(remaining):
                raise self.slots.full_error(self.settings.queue_timeout)
        if reason in ("no_idle", "mismatch") and self._blame_eviction(conversation, binding, launch, tenant, arrived):
            reason = "evicted"
        self.stats.cold_reasons[reason] += 1
        try:
            process = self._factory(launch, binding)
        except BaseException:
            self.slots.release()
            raise
        process.tenant = tenant
        self.stats.started += 1
        started = time.monotonic()
        try:
            await process.start()
        except BaseException:
            await process.close()
            self.slots.release()
            raise
        plan = Plan(0, tuple(conversation.history), False)
        self._leased()
        return Lease(process, plan, warm=False, cold_reason=reason, start_ms=(time.monotonic() - started) * 1000)

    def _leased(self) -> None:
        """One more request holds a process: the demand the warm set follows."""
        self.busy += 1
        self._peaks.append((time.monotonic(), self.busy))

    async def _take(self, conversation: Conversation, binding: Binding, launch: Launch, tenant: str) -> Lease[P] | str:
        """The best idle process for this request, or why there is none (a cold-start reason)."""
        while True:
            best: tuple[tuple[int, int, int, int, int, float], Entry[P], Plan] | None = None
            same_launch = False
            plain = sum(
                1 for e in self._idle if e.process.launch.key == launch.key and e.process.binding.system_prompt is None
            )
            plain_wanted = any(self._plain)
            for entry in self._idle:
                process = entry.process
                if process.launch.key != launch.key:
                    continue
                same_launch = True
                if entry.task.done() and not self._usable(entry):
                    continue
                plan = process.plan(conversation, binding, tenant)
                if plan is None:
                    continue
                score = _score(entry, plan, binding, plain_scarce=plain <= 1 and plain_wanted)
                if best is None or score > best[0]:
                    best = (score, entry, plan)
            if best is None:
                return "mismatch" if same_launch else "no_idle"
            _, entry, plan = best
            self._idle.remove(entry)
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
            if not self._usable(entry):
                self._discard(entry)
                continue
            entry.process.tenant = tenant
            return Lease(entry.process, plan, warm=True)

    def _usable(self, entry: Entry[P]) -> bool:
        """Started, alive, young enough, not worn out."""
        task = entry.task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return False
        process = entry.process
        return process.alive() and not self._too_old(process) and process.uses < self.settings.warm_max_uses

    def checkin(self, process: P, keep: bool) -> None:
        """A request is done with ``process``: keep it idle (``keep``) or stop it; then refill spares."""
        self.busy = max(0, self.busy - 1)
        if keep and self.enabled and not self._closed and self._usable_after_use(process):
            self._idle.append(Entry(process, _done_future()))
            while len(self._idle) > self.settings.warm_max:
                self.evict_one()
            self._ensure_reaper()
            self.slots.notify()
        else:
            self._discard(Entry(process, _done_future()))
        self._replenish()

    def _usable_after_use(self, process: Process) -> bool:
        return (
            process.completed
            and process.alive()
            and not self._too_old(process)
            and process.uses < self.settings.warm_max_uses
        )

    # -- spares and eviction ----------------------------------------------------------------

    def _replenish(self) -> None:
        """Start spares: first up to the floor of clean processes, then while fewer processes live
        than :meth:`wanted`; never while a request waits for a slot.

        Counting busy processes too (they come back idle after their request) keeps a spare from
        being started only to be stopped when the process it stood in for returns. When every slot
        is taken and the floor is short, the least recently used idle conversation gives way (its
        slot comes back once it is reaped, and this runs again).
        """
        launch = self._last_launch
        if launch is None or not self.enabled or self._closed or self.slots.waiting:
            return
        if time.monotonic() - self._start_failed_at < START_BACKOFF:
            return
        starting = sum(1 for entry in self._idle if not entry.task.done())
        while self.clean() < self.wanted() and starting < self.starting_limit:
            model, tools = self._spare_spec()
            binding = Binding(model, tools=tools)
            # The floor is made room for (an idle conversation gives way) only once the gateway is
            # quiet (no request served or arriving for GIVE_WAY_QUIET seconds; the reaper looks
            # again every few seconds): under load a new chat is served warm by cutting the least recently used
            # conversation, as it always was, and a start per request would cost a CPU-second each
            # (the churn measured at concurrency 4 and 8 when the floor was refilled regardless).
            may_give_way = self.clean() < self.floor and self._quiet()
            # The idle set stays within warm_max: the floor is made room for, the peak's spares are not.
            if len(self._idle) >= self.settings.warm_max and not (may_give_way and self._give_way_to_floor()):
                return
            if not self._prestart(launch, binding):
                if may_give_way and not self._closing:
                    self._give_way_to_floor()
                return
            starting += 1

    def _quiet(self) -> bool:
        """No request is being served, and none arrived for :data:`GIVE_WAY_QUIET` seconds."""
        return self.busy == 0 and time.monotonic() - self._last_checkout >= GIVE_WAY_QUIET

    def _give_way_to_floor(self) -> bool:
        """The floor is short and the idle set full (or every slot taken): stop the least recently
        used idle process holding a conversation, if there is one (busy processes are never cut)."""
        held = [entry for entry in self._idle if entry.task.done() and entry.process.uses > 0]
        if not held:
            return False
        now = time.monotonic()
        victim = min(held, key=lambda entry: (_awaits_tool_results(entry.process, now), entry.process.last_used))
        self._idle.remove(victim)
        self._discard(victim)
        return True

    def _counts_for_floor(self, entry: Entry[P]) -> bool:
        process = entry.process
        return process.uses == 0 and not self._retiring(process) and (not entry.task.done() or self._usable(entry))

    def _retiring(self, process: Process) -> bool:
        """Within the refresh margin of its maximum age: a replacement is started for it."""
        margin = min(REFRESH_MARGIN, self.settings.warm_max_age / 10)
        return time.monotonic() - process.created_at > self.settings.warm_max_age - margin

    def _spare_spec(self) -> tuple[str, ToolSet | None]:
        """The model and tool set of the next spare: of the recent requests' (most asked for first,
        the latest of equals), the first whose tool set no clean process has yet; when every one
        has, the most asked for.

        A process lists the client's tools once, when it starts, so a clean process serves only
        requests with its tool set (the model is fitted late). Several apps with tools of their
        own each find a spare this way, rather than every spare going to the commonest.
        """
        if not self._specs:
            return self.settings.default_model, None
        counts = collections.Counter(self._specs)
        latest = {spec: index for index, spec in enumerate(self._specs)}
        ranked = sorted(counts, key=lambda spec: (counts[spec], latest[spec]), reverse=True)
        covered = {entry.process.binding.tools for entry in self._idle if self._counts_for_floor(entry)}
        return next((spec for spec in ranked if spec[1] not in covered), ranked[0])

    def _prestart(self, launch: Launch, binding: Binding) -> bool:
        if not self.slots.try_acquire():
            return False
        try:
            process = self._factory(launch, binding)
        except Exception:
            self.slots.release()
            logger.debug("warm process could not be prepared", exc_info=True)
            return False
        task = asyncio.get_running_loop().create_task(process.start())
        task.add_done_callback(_consume_exception)
        task.add_done_callback(self._started_spare)
        self._idle.append(Entry(process, task))
        self.stats.started += 1
        self._ensure_reaper()
        return True

    def _started_spare(self, task: asyncio.Future[None]) -> None:
        """A spare is up: start the next one, if any is wanted (a failed start starts none for a while)."""
        if task.cancelled():
            return
        if task.exception() is not None:
            self._start_failed_at = time.monotonic()
            return
        self._replenish()
        self.slots.notify()  # a request waiting for the floor (warm_up) sees it

    def _pop_lru(self) -> Entry[P] | None:
        """The idle process to give up for room: a clean spare beyond the floor first (it holds
        nothing but its start), then the least recently used conversation, then one waiting for
        the client's tool results (within ``TOOL_RESULT_WAIT``), the floor last."""
        if not self._idle:
            return None
        clean = sorted(
            (entry for entry in self._idle if self._counts_for_floor(entry)),
            key=lambda entry: entry.process.created_at,
            reverse=True,
        )
        floor = {id(entry) for entry in clean[: self.floor]}

        now = time.monotonic()

        def rank(entry: Entry[P]) -> tuple[int, float]:
            process = entry.process
            if id(entry) in floor:
                return (3, process.last_used)
            if self._counts_for_floor(entry):
                return (0, process.last_used)
            if _awaits_tool_results(process, now):
                return (2, process.last_used)
            return (1, process.last_used)

        victim = min(self._idle, key=rank)
        self._idle.remove(victim)
        process = victim.process
        self._evicted.append(Evicted(process.launch.key, process.binding, process.tenant, time.monotonic()))
        return victim

    def _blame_eviction(
        self, conversation: Conversation, binding: Binding, launch: Launch, tenant: str, arrived: float
    ) -> bool:
        """True (and the eviction is used up) when a process stopped for room before this request
        arrived, within the idle timeout, could have served it: then that eviction made it cold."""
        horizon = arrived - self.settings.warm_idle_timeout
        for record in list(self._evicted):
            if record.at < horizon:
                self._evicted.remove(record)
            elif (
                record.at < arrived
                and record.launch_key == launch.key
                and plan_for((), record.binding, record.tenant, conversation, binding, tenant) is not None
            ):
                self._evicted.remove(record)
                return True
        return False

    def evict_one(self) -> bool:
        """Stop the least recently used idle process and free its slot once it is reaped."""
        victim = self._pop_lru()
        if victim is None:
            return False
        self._discard(victim)
        return True

    async def _evict_for_caller(self) -> bool:
        """Stop the least recently used idle process and hand its slot to the caller once it is reaped."""
        victim = self._pop_lru()
        if victim is None:
            return False
        self.stats.discarded += 1
        if not victim.task.done():
            victim.task.cancel()
        victim.process.kill()
        closing = asyncio.ensure_future(victim.process.close())
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            closing.add_done_callback(lambda _task: self.slots.release())  # the caller is gone: nobody owns it
            raise
        return True

    def _retire_other_credentials(self, launch: Launch) -> None:
        """Stop idle processes started with another credential (a rotated token retires the old one)."""
        for entry in list(self._idle):
            if entry.process.launch.key != launch.key:
                self._idle.remove(entry)
                self._discard(entry)

    def _too_old(self, process: Process) -> bool:
        """Past ``warm_max_age`` since start: it serves no new request."""
        return time.monotonic() - process.created_at > self.settings.warm_max_age

    def _discard(self, entry: Entry[P], *, release: bool = True) -> None:
        """Stop a process. Its slot is freed only once it is reaped, so a replacement never runs
        next to it: ``max_concurrency`` bounds live processes, not just bookkeeping. Then spares
        are started if the floor or the recent peak wants one (:meth:`_replenish`)."""
        self.stats.discarded += 1
        if not entry.task.done():
            entry.task.cancel()
        entry.process.kill()  # at once; the close task below only reaps it and removes its files
        closing = asyncio.get_running_loop().create_task(entry.process.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        closing.add_done_callback(_consume_exception)
        if release:
            closing.add_done_callback(lambda _task: self.slots.release())
            closing.add_done_callback(lambda _task: self._replenish())

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Every few seconds, :meth:`reap_once`, while there are idle processes or a floor to keep."""
        settings = self.settings
        tick = min(5.0, settings.warm_idle_timeout / 2, settings.warm_window / 2, settings.warm_max_age / 20)
        while (self._idle or self.floor) and not self._closed:
            await asyncio.sleep(tick)
            self.reap_once()

    def reap_once(self) -> None:
        """Stop what is no longer wanted, replace what ages out, and start what the floor lacks.

        - dead, too old or worn out: stopped;
        - holding a conversation and idle past the idle timeout: stopped (the floor is clean
          processes, so this never takes it below);
        - a clean process near its maximum age: a replacement is started, and it is stopped once
          the floor is ready without it;
        - clean processes beyond :meth:`wanted` (the recent peak has left the window): the oldest
          are stopped.
        """
        now = time.monotonic()
        for entry in list(self._idle):
            process = entry.process
            dead = entry.task.done() and not self._usable(entry)
            idled_out = process.uses > 0 and now - entry.since > self.settings.warm_idle_timeout
            if dead or idled_out:
                self._idle.remove(entry)
                self._discard(entry)
        self._replenish()  # replacements for the floor first, so it never lapses
        ready = sum(1 for entry in self._idle if entry.task.done() and self._counts_for_floor(entry))
        for entry in list(self._idle):
            if entry.process.uses == 0 and self._retiring(entry.process) and ready >= self.floor:
                self._idle.remove(entry)
                self._discard(entry)
        clean = sorted(
            (entry for entry in self._idle if self._counts_for_floor(entry)), key=lambda e: e.process.created_at
        )
        for entry in clean[: max(0, len(clean) - self.wanted())]:
            self._idle.remove(entry)
            self._discard(entry)

    async def warm_up(self, launch: Launch, timeout: float) -> bool:
        """Start the floor before any request and wait until it is ready: True then, False once
        ``timeout`` seconds passed first (the proxy opens its port either way, and says which)."""
        if self.floor == 0:
            return True
        self._last_launch = launch
        self._replenish()
        self._ensure_reaper()
        deadline = time.monotonic() + timeout
        while True:
            ready = sum(1 for entry in self._idle if entry.task.done() and self._counts_for_floor(entry))
            if ready >= self.floor:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(0.05, remaining))

    async def close(self) -> None:
        """Stop every idle process and wait for every discarded one to be reaped (shutdown)."""
        self._closed = True
        entries, self._idle = self._idle, []
        for entry in entries:
            if not entry.task.done():
                entry.task.cancel()
        await asyncio.gather(*(entry.process.close() for entry in entries), return_exceptions=True)
        for _ in entries:
            self.slots.release()
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reaper


def _done_future() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _consume_exception(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
