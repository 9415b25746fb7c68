"""Process lifecycle through LiteLLM with the real CLI: slots, queue, timeouts, cancellation.

Warm processes are off here (``warm_enabled=False``) so that every CLI process counted
belongs to a request in flight. Two providers: one with two slots and a long queue (the
cap, timeouts, cancellation), one with a single slot and a one-second queue (the 429).
After every test no CLI process of ours is left, and no zombie.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import litellm
import psutil
import pytest
import pytest_asyncio
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import (
    async_wait_until,
    claude_processes,
    make_provider,
    process_environ,
    shutdown_provider,
    zombies,
)
from tests.support.upstream import retry_after

PROVIDER = "cc-lifecycle"
SINGLE = "cc-lifecycle-single"
SLOTS = 2
module_loop = pytest.mark.asyncio(loop_scope="module")
pytestmark = [pytest.mark.integration, module_loop]


def mark() -> str:
    return "m" + uuid.uuid4().hex[:12]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def carried(fake: FakeAnthropicServer, word: str) -> list[dict[str, Any]]:
    return [r for r in fake.messages_requests() if word in str(r.get("messages"))]


def gone(pid: int) -> bool:
    """The process no longer exists: killed and reaped (a zombie does not count as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_DEAD
    except psutil.NoSuchProcess:
        return True


def serving_pid(state_dir: Path) -> list[int]:
    """Pids of live CLI processes whose workspace is under ``state_dir``."""
    pids = []
    for proc in claude_processes():
        try:
            home = process_environ(proc.pid).get("HOME", "")
        except OSError:
            continue
        if home.startswith(str(state_dir)):
            pids.append(proc.pid)
    return pids


async def clean() -> None:
    """No CLI process of this test process is left, and no zombie."""
    assert await async_wait_until(lambda: not claude_processes(), 10), [p.pid for p in claude_processes()]
    assert await async_wait_until(lambda: not zombies(), 5), [p.pid for p in zombies()]


@pytest.fixture(scope="module")
def state_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: tmp_path_factory.mktemp(name) for name in (PROVIDER, SINGLE)}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def providers(claude_env: dict[str, str], state_dirs: dict[str, Path]) -> AsyncIterator[dict[str, Any]]:
    handlers = {
        PROVIDER: make_provider(
            state_dirs[PROVIDER], PROVIDER, warm_enabled=False, max_concurrency=SLOTS, queue_timeout=120
        ),
        SINGLE: make_provider(state_dirs[SINGLE], SINGLE, warm_enabled=False, max_concurrency=1, queue_timeout=1),
    }
    yield handlers
    for handler in handlers.values():
        await shutdown_provider(handler)
    await clean()


async def test_at_most_max_concurrency_cli_processes_at_once(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    requests = SLOTS + 3
    word = mark()
    counts: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            counts.append(len(serving_pid(state_dirs[PROVIDER])))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    litellm.acompletion(
                        model=f"{PROVIDER}/sonnet",
                        messages=user(f"n{i} {word} " + directive(text=f"answer {i}", delay=1.5)),
                    )
                    for i in range(requests)
                )
            ),
            240,
        )
    finally:
        done.set()
        await sampler
    elapsed = time.monotonic() - started
    assert sorted(r.choices[0].message.content for r in results) == sorted(f"answer {i}" for i in range(requests))
    assert len(carried(fake, word)) == requests
    assert max(counts) == SLOTS, f"process counts seen: {sorted(set(counts))}"
    # Three waves of at most two: the later requests really waited for a slot.
    assert elapsed >= 3 * 1.5
    await clean()


async def test_a_request_that_waits_past_the_queue_timeout_gets_429_with_retry_after(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    word = mark()
    holder = asyncio.create_task(
        litellm.acompletion(model=f"{SINGLE}/sonnet", messages=user(f"hold {word} " + directive(text="held", delay=8)))
    )
    try:
        assert await async_wait_until(lambda: bool(carried(fake, word)), 60), "the first request never got upstream"
        started = time.monotonic()
        with pytest.raises(litellm.RateLimitError) as caught:
            await litellm.acompletion(model=f"{SINGLE}/sonnet", messages=user(f"queued {word}-2"))
        waited = time.monotonic() - started
        assert caught.value.status_code == 429
        assert int(retry_after(caught.value) or 0) >= 1
        assert "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY" in str(caught.value)
        assert 0.8 <= waited < 30  # it waited for the queue timeout (1 s), not for the holder (8 s)
        assert not carried(fake, f"{word}-2")
        assert len(serving_pid(state_dirs[SINGLE])) == 1
    finally:
        response = await asyncio.wait_for(holder, 90)
    assert response.choices[0].message.content == "held"
    await clean()


async def test_a_request_past_its_timeout_gets_504_and_its_process_is_killed(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    word = mark()
    pids: set[int] = set()

    async def watch() -> None:
        while True:
            pids.update(serving_pid(state_dirs[PROVIDER]))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    try:
        with pytest.raises(litellm.Timeout) as caught:
            await litellm.acompletion(
                model=f"{PROVIDER}/sonnet",
                messages=user(f"slow {word} " + directive(text="too late", delay=60)),
                timeout=6,
            )
    finally:
        watcher.cancel()
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT" in str(caught.value)
    assert 5 <= elapsed < 40
    assert carried(fake, word), "the request never reached upstream"
    assert len(pids) == 1
    (pid,) = pids
    assert await async_wait_until(lambda: gone(pid), 2), f"CLI {pid} still there after the timeout"
    await clean()


async def test_a_cancelled_request_has_its_process_gone_within_two_seconds(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    word = mark()
    task = asyncio.create_task(
        litellm.acompletion(model=f"{PROVIDER}/sonnet", messages=user(f"cancel {word} " + directive(delay=60)))
    )
    assert await async_wait_until(lambda: bool(carried(fake, word)), 60), "the request never reached upstream"
    (pid,) = serving_pid(state_dirs[PROVIDER])
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await async_wait_until(lambda: gone(pid), 2), f"CLI {pid} still there 2 s after the cancel"
    assert time.monotonic() - cancelled_at < 2.5
    await clean()


async def test_an_abandoned_stream_has_its_process_gone_within_two_seconds(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    """The proxy's case: the client goes away mid-stream and the handler's generator is closed."""
    word = mark()
    handler = providers[PROVIDER]
    stream = handler.astreaming(
        model="sonnet",
        messages=user(f"abandon {word} " + directive(tokens=200, token_delay=0.2)),
        optional_params={},
        litellm_params={},
    )
    first = await asyncio.wait_for(anext(stream), 60)
    assert first["text"]
    (pid,) = serving_pid(state_dirs[PROVIDER])
    await asyncio.wait_for(stream.aclose(), 15)
    closed_at = time.monotonic()
    assert await async_wait_until(lambda: gone(pid), 2), f"CLI {pid} still there 2 s after the stream was dropped"
    assert time.monotonic() - closed_at < 2.5
    (request,) = carried(fake, word)
    await clean()
    assert request["stream"] is True


async def test_a_cancelled_litellm_stream_has_its_process_gone_within_two_seconds(
    providers: dict[str, Any], fake: FakeAnthropicServer, state_dirs: dict[str, Path]
) -> None:
    word = mark()
    got_first = asyncio.Event()

    async def consume() -> None:
        stream = await litellm.acompletion(
            model=f"{PROVIDER}/sonnet",
            messages=user(f"stream cancel {word} " + directive(tokens=200, token_delay=0.2)),
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 60)
    (pid,) = serving_pid(state_dirs[PROVIDER])
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await async_wait_until(lambda: gone(pid), 2), f"CLI {pid} still there 2 s after the cancel"
    assert time.monotonic() - cancelled_at < 2.5
    await clean()


async def test_the_slots_are_all_free_again_after_timeouts_and_cancellations(
    providers: dict[str, Any], fake: FakeAnthropicServer
) -> None:
    """After every failure path above, the full capacity serves requests at once."""
    word = mark()
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                litellm.acompletion(
                    model=f"{PROVIDER}/sonnet", messages=user(f"after {i} {word} " + directive(text="ok", delay=6))
                )
                for i in range(SLOTS)
            )
        ),
        120,
    )
    assert [r.choices[0].message.content for r in results] == ["ok"] * SLOTS
    requests = carried(fake, word)
    assert len(requests) == SLOTS
    # Both were upstream at the same time: neither waited (6 s) for a slot a leak would have kept.
    times = sorted(r["time"] for r in requests)
    assert times[-1] - times[0] < 5, times
    assert time.monotonic() - started < 60
    await clean()
