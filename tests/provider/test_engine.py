"""The engine's request loop with fake processes: slots, queueing, timeouts, cancellation, retries.

No CLI runs here: :class:`FakeProcess` is injected through ``Engine(settings,
process_factory=...)`` and answers with scripted SDK messages (``StreamEvent``,
``AssistantMessage``, ``ResultMessage``), so these rules are pinned in seconds; the real-CLI
tests (``test_warm.py``, ``test_lifecycle.py``) show the same with the bundled binary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litellm_claude_code import CLIFailedError, QueueFullError, RequestTimeoutError
from litellm_claude_code._cli import Binding, Launch
from litellm_claude_code._engine import Engine, Request
from litellm_claude_code._settings import Settings
from litellm_claude_code._streaming import Outcome

from tests.support.fake_process import (
    KEY_ONE,
    KEY_TWO,
    FakeProcess,
    conversation,
    credential,  # noqa: F401  (autouse: the engine's API key)
)


class Harness:
    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {"state_dir": tmp_path, "max_concurrency": 2, "warm_max": 2, "queue_timeout": 2.0}
        values.update(overrides)
        self.made: list[FakeProcess] = []
        self.delay = 0.0  # given to each new process: how long it waits before answering
        self.fail = False  # each new process fails its first turn
        self.engine = Engine(Settings(**values), process_factory=self.make)

    def make(self, launch: Launch, binding: Binding) -> FakeProcess:
        process = FakeProcess(launch, binding, self.made)
        process.delay, process.fail_next = self.delay, self.fail
        return process

    def live(self) -> int:
        """Processes that hold a slot: every one not yet reaped (a killed one counts until then)."""
        return sum(1 for p in self.made if not p.closed)

    async def ask(self, *texts: str, timeout: float = 5.0) -> str:
        request = Request(model="sonnet", conversation=conversation(*texts), stream=True, timeout=timeout)
        outcome = Outcome()
        return "".join([delta.text async for delta in self.engine.stream(request, outcome)])


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
