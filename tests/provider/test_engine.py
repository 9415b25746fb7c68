"""The engine's request loop with fake processes: slots, queueing, timeouts, cancellation, retries.

No CLI runs here: :class:`ScriptedProcess` is injected through ``Engine(settings,
process_factory=...)`` and answers with scripted SDK messages (``StreamEvent``,
``AssistantMessage``, ``ResultMessage``), so these rules are pinned in seconds; the real-CLI
tests (``test_warm.py``, ``test_lifecycle.py``) show the same with the bundled binary.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.types import AssistantMessage, Message, ResultMessage, StreamEvent, TextBlock
from litellm_claude_code import CLIFailedError, QueueFullError, RequestTimeoutError
from litellm_claude_code._cli import Binding, Launch
from litellm_claude_code._engine import Engine, Request
from litellm_claude_code._messages import Conversation, Turn, chain_of, convert_messages
from litellm_claude_code._process import HeldTurn, Plan, plan_for
from litellm_claude_code._settings import Settings
from litellm_claude_code._streaming import Outcome

KEY_ONE = "sk-ant-engine-key-one"
KEY_TWO = "sk-ant-engine-key-two"


def answer_messages(text: str) -> list[Message]:
    """What the CLI yields for a one-block text answer."""
    session = "default"

    def event(data: dict[str, Any]) -> StreamEvent:
        return StreamEvent(uuid=str(uuid.uuid4()), session_id=session, event=data)

    return [
        event({"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 0}}}),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        AssistantMessage(content=[TextBlock(text)], model="claude-sonnet-fake", uuid=str(uuid.uuid4())),
        event({"type": "content_block_stop", "index": 0}),
        event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        event({"type": "message_stop"}),
        ResultMessage(
            subtype="success",
            duration_ms=1,
            duration_api_ms=1,
            is_error=False,
            num_turns=1,
            session_id=session,
            stop_reason="end_turn",
            usage={"input_tokens": 3, "output_tokens": 1},
            result=text,
        ),
    ]


class ScriptedProcess:
    """A process that starts at once and answers each turn from its script.

    ``delay`` is slept before the first message (a slow upstream); ``fail_next`` raises before
    anything is yielded (a warm process found dead).
    """

    def __init__(self, launch: Launch, binding: Binding, registry: list[ScriptedProcess]) -> None:
        self.launch = launch
        self.binding = Binding(binding.model, None, binding.max_output_tokens, binding.tools)
        self.held: list[HeldTurn] = []
        self.tenant: str | None = None
        self.created_at = time.monotonic()
        self.last_used = self.created_at
        self.uses = 0
        self.completed = False
        self.dead = False
        self.closed = False
        self.delay = 0.0
        self.fail_next = False
        self._user: HeldTurn | None = None
        registry.append(self)
        self.registry = registry

    def plan(self, conversation: Conversation, binding: Binding, tenant: str) -> Plan | None:
        return plan_for(self.held, self.binding, self.tenant, conversation, binding, tenant)

    async def start(self) -> None:
        await asyncio.sleep(0)

    def alive(self) -> bool:
        return not self.dead and not self.closed

    def kill(self) -> None:
        self.dead = True

    async def close(self) -> None:
        self.dead = self.closed = True

    async def prepare(self, plan: Plan, binding: Binding) -> None:
        del self.held[plan.keep :]
        start = self.held[-1].chain if self.held else ""
        for turn, chain in zip(plan.append, chain_of(plan.append, start=start or ""), strict=True):
            self.held.append(HeldTurn(turn.role, chain, "written"))
        self.binding = binding

    async def run(self, conversation: Conversation) -> AsyncIterator[Message]:
        self.uses += 1
        self.completed = False
        self.last_used = time.monotonic()
        self._user = HeldTurn("user", conversation.chain()[-1], str(uuid.uuid4()))
        if self.fail_next:
            self.fail_next = False
            raise CLIFailedError("Claude Code CLI failed: the process is gone")
        if self.delay:
            await asyncio.sleep(self.delay)
        for message in answer_messages("hello"):
            if isinstance(message, ResultMessage):
                self.completed = True
            yield message

    def commit(self, answer: Turn) -> bool:
        if self._user is None or not self.completed or self._user.chain is None:
            return False
        self.held.append(self._user)
        self.held.append(HeldTurn("assistant", chain_of((answer,), start=self._user.chain)[0], str(uuid.uuid4())))
        self._user = None
        return True

    async def drop_turn(self) -> None:
        self._user = None
        self.completed = True


@pytest.fixture(autouse=True)
def credential(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY_FILE", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY_ONE)


class Harness:
    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {"state_dir": tmp_path, "max_concurrency": 2, "warm_max": 2, "queue_timeout": 2.0}
        values.update(overrides)
        self.made: list[ScriptedProcess] = []
        self.delay = 0.0  # given to each new process: how long it waits before answering
        self.fail = False  # each new process fails its first turn
        self.engine = Engine(Settings(**values), process_factory=self.make)

    def make(self, launch: Launch, binding: Binding) -> ScriptedProcess:
        process = ScriptedProcess(launch, binding, self.made)
        process.delay, process.fail_next = self.delay, self.fail
        return process

    def live(self) -> int:
        """Processes that hold a slot: every one not yet reaped (a killed one counts until then)."""
        return sum(1 for p in self.made if not p.closed)

    async def ask(self, *texts: str, timeout: float = 5.0) -> str:
        request = Request(model="sonnet", conversation=conversation(*texts), stream=True, timeout=timeout)
        outcome = Outcome()
        return "".join([delta.text async for delta in self.engine.stream(request, outcome)])


def conversation(*texts: str) -> Conversation:
    return convert_messages(
        [{"role": "user" if index % 2 == 0 else "assistant", "content": text} for index, text in enumerate(texts)]
    )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def factory(**overrides: Any) -> Harness:
        made.append(Harness(tmp_path, **overrides))
        return made[-1]

    yield factory


async def eventually(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_processes_never_exceed_max_concurrency(harness: Any) -> None:
    h = harness(max_concurrency=2, warm_max=2)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, h.live())
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    h.delay = 0.05
    answers = await asyncio.gather(*(h.ask(f"question {n}") for n in range(8)))
    watcher.cancel()
    assert answers == ["hello"] * 8
    assert peak == 2, "eight requests at once reach the cap of two processes, and never pass it"
    assert len(h.made) >= 2
    await h.engine.close()


async def test_a_full_queue_answers_429_with_retry_after_after_the_queue_timeout(harness: Any) -> None:
    h = harness(max_concurrency=1, warm_max=1, queue_timeout=0.3)
    h.delay = 2.0
    first = asyncio.create_task(h.ask("slow question"))
    await eventually(lambda: bool(h.made) and h.made[0].uses == 1)
    started = time.monotonic()
    with pytest.raises(QueueFullError) as caught:
        await h.ask("another question")
    assert time.monotonic() - started >= 0.3
    assert caught.value.status_code == 429
    assert int(caught.value.headers["retry-after"]) >= 1
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await h.engine.close()


async def test_a_request_past_its_timeout_gets_504_and_its_process_is_killed(harness: Any) -> None:
    h = harness()
    h.delay = 30.0
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as caught:
        await h.ask("a question", timeout=0.3)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 2.0
    served = [p for p in h.made if p.uses]
    assert len(served) == 1 and served[0].dead
    await h.engine.close()


async def test_a_cancelled_request_kills_its_process_at_once_and_frees_its_slot(harness: Any) -> None:
    h = harness(max_concurrency=1, warm_max=1, queue_timeout=2.0)
    h.delay = 30.0
    task = asyncio.create_task(h.ask("a question the client gives up on"))
    await eventually(lambda: bool(h.made) and h.made[0].uses == 1)
    h.delay = 0.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.made[0].dead  # killed at once, not after a grace period
    await eventually(lambda: h.made[0].closed)  # reaped
    assert await h.ask("the next client") == "hello"  # the one slot is free again
    assert h.live() == 1  # its process, kept: the cancelled one is gone
    await h.engine.close()


async def test_a_warm_process_that_fails_before_answering_is_retried_once_on_a_new_one(harness: Any) -> None:
    h = harness(max_concurrency=3, warm_max=2)
    assert await h.ask("q1") == "hello"
    first = next(p for p in h.made if p.uses)
    first.fail_next = True
    assert await h.ask("q1", "hello", "q2") == "hello"
    assert first.dead
    retried = [p for p in h.made if p.uses and p is not first]
    assert len(retried) == 1
    await h.engine.close()


async def test_a_cold_process_that_fails_is_not_retried(harness: Any) -> None:
    h = harness(max_concurrency=2, warm_max=1, warm_enabled=False)
    h.fail = True
    with pytest.raises(CLIFailedError):
        await h.ask("q1")
    assert sum(1 for p in h.made if p.uses) == 1
    await h.engine.close()


async def test_a_rotated_credential_retires_idle_processes_of_the_old_one(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(max_concurrency=3, warm_max=2)
    assert await h.ask("q1") == "hello"
    old = [p for p in h.made if p.launch.credential.value == KEY_ONE]
    assert old
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY_TWO)
    assert await h.ask("q1", "hello", "q2") == "hello"
    await eventually(lambda: all(p.dead for p in old))
    served = [p for p in h.made if p.uses and p.launch.credential.value == KEY_TWO]
    assert len(served) == 1
    await h.engine.close()


async def test_a_process_idle_past_the_idle_timeout_is_retired(harness: Any) -> None:
    """The process holding the conversation goes; the floor's clean process stays, so the idle
    gateway holds exactly the floor."""
    h = harness(warm_idle_timeout=0.2, warm_floor=1)
    assert await h.ask("q1") == "hello"
    served = next(p for p in h.made if p.uses)
    await eventually(lambda: served.closed, timeout=3.0)
    await asyncio.sleep(0.3)
    assert [p.uses for p in h.made if not p.closed] == [0]
    await h.engine.close()


async def test_a_process_past_max_uses_is_not_kept(harness: Any) -> None:
    h = harness(warm_max_uses=1)
    assert await h.ask("q1") == "hello"
    first = next(p for p in h.made if p.uses)
    await eventually(lambda: first.dead)
    assert await h.ask("q1", "hello", "q2") == "hello"
    assert [p for p in h.made if p.uses][-1] is not first
    await h.engine.close()


async def test_a_process_past_max_age_serves_no_new_request(harness: Any) -> None:
    h = harness(warm_max_age=0.2)
    assert await h.ask("q1") == "hello"
    first = next(p for p in h.made if p.uses)
    await asyncio.sleep(0.3)
    assert await h.ask("q1", "hello", "q2") == "hello"
    assert first.dead
    assert [p for p in h.made if p.uses][-1] is not first
    await h.engine.close()
