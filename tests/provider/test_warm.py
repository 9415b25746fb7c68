"""Warm Claude Code processes: safe, bounded and failure-proof.

Every test drives the real provider (through ``litellm.acompletion``), the real SDK and the
real bundled CLI against the fake upstream, and asserts on what can be observed from the
outside: the fake's request log (messages, system prompt, credential), the process table
(pids, states, zombies) and the pool's counters.

Which process served a request is read from the upstream log: the CLI names its session in
every request's ``metadata.user_id``, and every CLI process runs one session of its own (a cut
of its conversation keeps the session), so two upstream requests that name the same session
were sent by the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import litellm
import psutil
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import (
    async_wait_until,
    claude_processes,
    make_provider,
    shutdown_provider,
    wait_until,
    zombies,
)
from tests.support.upstream import served_by, user_turns

pytestmark = pytest.mark.integration

_NAMES = itertools.count(1)

# Generous: the machine has two cores shared with other test runs, and a cold CLI start
# costs about a CPU-second.
SETTLE = 30.0


class Warm:
    """One provider instance for one test, with helpers to ask it and to look at its processes."""

    def __init__(self, provider: Any, name: str, state_dir: Path, baseline: set[int]) -> None:
        self.provider = provider
        self.name = name
        self.state_dir = state_dir
        self.baseline = baseline

    @property
    def engine(self) -> Any:
        return self.provider.engine()

    @property
    def pool(self) -> Any:
        return self.engine.pool

    async def ask(
        self, text: str, *, system: str | None = None, stream: bool = False, model: str = "sonnet", **params: Any
    ) -> str:
        messages: list[dict[str, str]] = []
        if system is not None:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": text})
        if stream:
            response = await litellm.acompletion(
                model=f"{self.name}/{model}", messages=messages, stream=True, timeout=120, **params
            )
            parts = [chunk.choices[0].delta.content or "" async for chunk in response]
            return "".join(parts)
        response = await litellm.acompletion(model=f"{self.name}/{model}", messages=messages, timeout=120, **params)
        return str(response.choices[0].message.content)

    def pids(self) -> set[int]:
        """Live CLI processes started during this test (not zombies)."""
        return {p.pid for p in claude_processes()} - self.baseline

    def workspaces(self) -> set[str]:
        runs = self.state_dir / "run"
        return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


@pytest.fixture
async def make_warm(tmp_path: Path, fake: FakeAnthropicServer) -> AsyncIterator[Any]:
    """``make_warm(**settings)``: a provider with its own state dir; all of them shut down afterwards."""
    made: list[Warm] = []

    def factory(**overrides: Any) -> Warm:
        values: dict[str, Any] = {
            "max_concurrency": 2,
            "warm_max": 1,
            "queue_timeout": 120.0,
            "request_timeout": 120.0,
        }
        values.update(overrides)
        name = f"cc-warm-{next(_NAMES)}"
        state_dir = tmp_path / name
        baseline = {p.pid for p in claude_processes()}
        warm = Warm(make_provider(state_dir, name, **values), name, state_dir, baseline)
        made.append(warm)
        return warm

    try:
        yield factory
    finally:
        fake.set_accept_keys(None)
        fake.set_default(token_delay=None)
        for warm in made:
            await shutdown_provider(warm.provider)
    for warm in made:
        assert await async_wait_until(lambda w=warm: not w.pids(), 15), f"CLI processes left behind: {warm.pids()}"


# --------------------------------------------------------------------------- helpers


def workspace_of(request: dict[str, Any]) -> str:
    """The CLI session (hence the process) that sent this upstream request."""
    return served_by(request)


def everything(request: dict[str, Any]) -> str:
    """All an upstream request carried: body and headers, as one string to search."""
    return json.dumps(request["body"]) + json.dumps(request["headers"]) + (request.get("system_text") or "")


def only_request(fake: FakeAnthropicServer, marker: str) -> dict[str, Any]:
    """The one upstream request whose user turn carries ``marker``."""
    found = [r for r in fake.messages_requests() if any(marker in t for t in user_turns(r))]
    assert len(found) == 1, f"expected one upstream request with {marker!r}, got {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- zero context leakage


async def test_reused_process_carries_nothing_of_the_previous_request(
    make_warm: Any, fake: FakeAnthropicServer
) -> None:
    warm = make_warm()
    system = "You are the leak test. Same system prompt for both requests."
    secret_a, reply_a = "SECRET-ALPHA-7f3a91", "REPLY-ALPHA-c0ffee"
    secret_b = "SECRET-BRAVO-42d0e8"

    answer_a = await warm.ask(f"remember {secret_a} " + directive(text=f"noted {reply_a}"), system=system)
    assert reply_a in answer_a
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE), "the process was not kept warm"
    (idle_pid,) = warm.pids()
    hits_before = warm.pool.stats.warm

    answer_b = await warm.ask(f"what did I ask you to remember? {secret_b}", system=system)
    assert answer_b

    req_a, req_b = only_request(fake, secret_a), only_request(fake, secret_b)
    # The second request really was served by the reused process: same workspace, same pid.
    assert workspace_of(req_a) == workspace_of(req_b)
    assert warm.pool.stats.warm == hits_before + 1
    assert psutil.pid_exists(idle_pid) and idle_pid in warm.pids()
    # ... and carried nothing of the first: not its prompt, not its answer.
    seen = everything(req_b)
    assert secret_a not in seen
    assert reply_a not in seen
    assert user_turns(req_b) == [f"what did I ask you to remember? {secret_b}"]
    assert not any(m.get("role") == "assistant" for m in req_b["messages"])
    assert system in req_b["system_text"]


async def test_another_system_prompt_and_model_reuse_a_process_and_carry_nothing_over(
    make_warm: Any, fake: FakeAnthropicServer
) -> None:
    warm = make_warm(warm_max=1)
    await warm.ask("first PROMPT-ONE", system="System secret SYS-SECRET-ONE")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    hits = warm.pool.stats.warm
    await warm.ask("second PROMPT-TWO", system="System secret SYS-SECRET-TWO", model="haiku")

    req_1, req_2 = only_request(fake, "PROMPT-ONE"), only_request(fake, "PROMPT-TWO")
    assert workspace_of(req_1) == workspace_of(req_2), "the idle process should have been bound late"
    assert warm.pool.stats.warm == hits + 1
    assert req_1["model"] != req_2["model"] and "haiku" in req_2["model"]
    assert "SYS-SECRET-ONE" not in everything(req_2)
    assert "PROMPT-ONE" not in everything(req_2)
    assert "SYS-SECRET-TWO" in req_2["system_text"]
    assert user_turns(req_2) == ["second PROMPT-TWO"]


async def test_a_process_given_a_system_prompt_never_serves_a_request_without_one(
    make_warm: Any, fake: FakeAnthropicServer
) -> None:
    warm = make_warm(warm_max=1)
    await warm.ask("with NOSYS-1", system="System secret SYS-SECRET-NOSYS")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    await warm.ask("without NOSYS-2")
    req_1, req_2 = only_request(fake, "NOSYS-1"), only_request(fake, "NOSYS-2")
    assert workspace_of(req_1) != workspace_of(req_2)
    assert "SYS-SECRET-NOSYS" not in everything(req_2)


async def test_process_started_with_one_key_never_serves_another(
    make_warm: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = make_warm()
    key_a, key_b = "sk-ant-key-AAAA-0001", "sk-ant-key-BBBB-0002"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key_a)
    await warm.ask("with key KEYTEST-A")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    (pid_a,) = warm.pids()

    monkeypatch.setenv("ANTHROPIC_API_KEY", key_b)
    fake.set_accept_keys([key_b])  # a process still holding key A would now get a 401
    answer = await warm.ask("with key KEYTEST-B")
    assert answer.startswith("fake reply from")

    req_a, req_b = only_request(fake, "KEYTEST-A"), only_request(fake, "KEYTEST-B")
    assert req_a["auth"] == key_a
    assert req_b["auth"] == key_b and req_b["status"] == 200
    assert workspace_of(req_a) != workspace_of(req_b)
    assert key_a not in everything(req_b)
    # The key-A process was retired, not kept next to the key-B one.
    assert await async_wait_until(lambda: pid_a not in warm.pids(), SETTLE)
    assert all(r["auth"] == key_b for r in fake.messages_requests() if r["time"] >= req_b["time"])


async def test_api_key_then_oauth_token_uses_the_token(
    make_warm: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, claude_env: dict[str, str]
) -> None:
    warm = make_warm()
    await warm.ask("api key TOKTEST-1")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    token = "sk-ant-oat01-test-token-0003"
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", token)  # preferred over ANTHROPIC_API_KEY
    await warm.ask("oauth TOKTEST-2")

    req_1, req_2 = only_request(fake, "TOKTEST-1"), only_request(fake, "TOKTEST-2")
    assert req_1["auth"] == claude_env["ANTHROPIC_API_KEY"] and req_1["auth_scheme"] == "x-api-key"
    assert req_2["auth"] == token and req_2["auth_scheme"] == "bearer"
    assert "x-api-key" not in req_2["headers"]
    assert workspace_of(req_1) != workspace_of(req_2)


# --------------------------------------------------------------------------- verified reset


async def test_reset_is_verified_across_many_reuses(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(warm_max=1)
    rounds = 6  # one cold start, then five reuses
    for index in range(rounds):
        await warm.ask(f"turn ROUND-{index}-marker " + directive(text=f"answer ANSWER-{index}"))
    requests = [only_request(fake, f"ROUND-{index}-marker") for index in range(rounds)]
    assert len({workspace_of(r) for r in requests}) == 1, "all six should be served by one process"
    assert warm.pool.stats.warm >= rounds - 1
    for index, request in enumerate(requests):
        turns = user_turns(request)
        assert len(turns) == 1, f"request {index} carried {len(turns)} user turns"
        assert f"ROUND-{index}-marker" in turns[0]
        assert not any(m.get("role") == "assistant" for m in request["messages"])
        seen = everything(request)
        for earlier in range(index):
            assert f"ROUND-{earlier}-marker" not in seen
            assert f"ANSWER-{earlier}" not in seen


# --------------------------------------------------------------------------- bounded


async def test_burst_stays_within_max_concurrency_and_warm_max(make_warm: Any, fake: FakeAnthropicServer) -> None:
    concurrency, warm_max = 3, 2
    warm = make_warm(max_concurrency=concurrency, warm_max=warm_max)
    await warm.ask("prime BURST-PRIME")  # leaves warm processes behind: the burst mixes warm and cold
    fake.set_default(token_delay=0.05)  # 12 tokens, ~0.6 s of streaming per request

    samples: list[int] = []
    stop = threading.Event()

    def sample_processes() -> None:
        while not stop.is_set():
            samples.append(len(warm.pids()))
            stop.wait(0.02)

    pool_sizes: list[int] = []
    slots_in_use: list[int] = []

    async def sample_pool() -> None:
        while True:
            pool_sizes.append(warm.pool.idle)
            slots_in_use.append(warm.engine.slots.in_use)
            await asyncio.sleep(0.01)

    sampler = threading.Thread(target=sample_processes, daemon=True)
    sampler.start()
    pool_task = asyncio.create_task(sample_pool())
    try:
        answers = await asyncio.gather(*(warm.ask(f"burst BURST-{i}") for i in range(2 * concurrency)))
        # Let the pool settle (resets, returns, replacement starts) while still sampling.
        await asyncio.sleep(3)
        settled = await async_wait_until(lambda: len(warm.pids()) <= warm_max and warm.pool.idle <= warm_max, SETTLE)
    finally:
        stop.set()
        sampler.join(10)
        pool_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pool_task
        fake.set_default(token_delay=None)

    assert all(a.startswith("fake reply from") for a in answers)
    assert len([r for r in fake.messages_requests() if r["status"] == 200]) == 2 * concurrency + 1
    assert max(samples) <= concurrency, f"{max(samples)} CLI processes at once, cap {concurrency}"
    assert max(samples) >= 2, "the burst never ran two processes at once: it tested nothing"
    assert max(slots_in_use) <= concurrency
    assert max(pool_sizes) <= warm_max
    assert settled, f"{len(warm.pids())} processes / {warm.pool.idle} warm after the burst"
    assert not zombies()


async def test_idle_warm_process_stops_after_idle_timeout(make_warm: Any, fake: FakeAnthropicServer) -> None:
    # No floor (WARM_MAX=1 leaves it to the chat), and the recent peak leaves its window as the
    # chat idles out: nothing is left running.
    warm = make_warm(warm_idle_timeout=2.0, warm_window=2.0)
    await warm.ask("idle IDLE-1")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    (pid,) = warm.pids()
    (workspace,) = warm.workspaces()
    started = time.monotonic()
    assert await async_wait_until(lambda: not warm.pids(), SETTLE), "the idle process was never stopped"
    waited = time.monotonic() - started
    assert waited >= 1.0, f"stopped after {waited:.1f} s, before its idle timeout"
    assert warm.pool.idle == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert await async_wait_until(lambda: not zombies(), 10)
    assert await async_wait_until(lambda: workspace not in warm.workspaces(), SETTLE), "workspace left behind"


async def test_max_uses_retires_a_process(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(warm_max_uses=2)
    for index in range(5):
        await warm.ask(f"uses USES-{index}-x")
        await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    served = [workspace_of(only_request(fake, f"USES-{index}-x")) for index in range(5)]
    # Two requests per process, then a fresh one (started in the background after the second use).
    assert served[0] == served[1] != served[2] == served[3] != served[4]
    assert len(set(served)) == 3


async def test_max_age_retires_a_process(make_warm: Any, fake: FakeAnthropicServer) -> None:
    max_age = 8.0
    warm = make_warm(warm_max_age=max_age)
    await warm.ask("age AGE-1")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    await warm.ask("age AGE-2")  # young: reused
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    (pid,) = warm.pids()
    first, second = workspace_of(only_request(fake, "AGE-1")), workspace_of(only_request(fake, "AGE-2"))
    assert first == second, "a young warm process should have been reused"
    # Idle in the pool until past its age (the idle timeout, 300 s, is far away).
    (idle,) = warm.pool.idle_processes()
    created = idle.created_at
    await asyncio.sleep(max(0.0, created + max_age + 0.5 - time.monotonic()))
    await warm.ask("age AGE-3")
    third = workspace_of(only_request(fake, "AGE-3"))
    assert third != first, "a process past WARM_MAX_AGE served a new request"
    assert await async_wait_until(lambda: pid not in warm.pids(), SETTLE), "the aged process kept running"


# --------------------------------------------------------------------------- failures


async def _one_idle_process(warm: Warm, marker: str) -> tuple[int, str]:
    await warm.ask(f"warm up {marker}")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE)
    (pid,) = warm.pids()
    (workspace,) = warm.workspaces()
    return pid, workspace


async def test_killed_warm_process_is_replaced(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm()
    pid, workspace = await _one_idle_process(warm, "KILL-0")
    os.kill(pid, signal.SIGKILL)
    assert await async_wait_until(lambda: pid not in warm.pids(), 10)
    discarded = warm.pool.stats.discarded

    answer = await warm.ask("after kill KILL-1")
    assert answer.startswith("fake reply from")
    request = only_request(fake, "KILL-1")
    assert request["status"] == 200
    assert workspace_of(request) != workspace
    assert warm.pool.stats.discarded > discarded
    assert await async_wait_until(lambda: not zombies(), 10), "the killed process was never reaped"
    assert await async_wait_until(lambda: workspace not in warm.workspaces(), SETTLE), "workspace left behind"


async def test_hung_warm_process_is_replaced(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm()
    pid, workspace = await _one_idle_process(warm, "STOP-0")
    os.kill(pid, signal.SIGSTOP)
    try:
        answer = await warm.ask("after stop STOP-1")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert answer.startswith("fake reply from")
    request = only_request(fake, "STOP-1")
    assert request["status"] == 200
    assert workspace_of(request) != workspace
    assert await async_wait_until(lambda: pid not in warm.pids(), SETTLE), "the hung process was left running"
    assert await async_wait_until(lambda: not zombies(), 10)
    assert await async_wait_until(lambda: workspace not in warm.workspaces(), SETTLE), "workspace left behind"


async def test_warm_process_hung_while_starting_is_replaced(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(warm_max_uses=1)  # each request ends by starting a replacement in the background
    await warm.ask("first START-0")
    # The used process is stopped; its replacement starts once it is reaped.
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE, interval=0.002)
    (entry,) = warm.pool.entries()
    # Freeze the replacement as soon as its launcher records its pid: before its handshake.
    assert await async_wait_until(lambda: entry.process.pid is not None, SETTLE, interval=0.002)
    pid = entry.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        assert not entry.task.done(), "the replacement finished starting before it could be frozen"
        started = time.monotonic()
        answer = await warm.ask("after frozen start START-1")
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert answer.startswith("fake reply from")
    assert only_request(fake, "START-1")["status"] == 200
    # Far less than the SDK's own 60 s handshake timeout: the frozen start was given up on.
    assert elapsed < 45, f"the request waited {elapsed:.0f} s for a frozen warm process"
    assert await async_wait_until(lambda: pid not in warm.pids(), SETTLE), "the frozen process was left running"
    assert await async_wait_until(lambda: not zombies(), 10)


async def test_rotated_key_file_retires_old_key_processes(
    make_warm: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old_key, new_key = "sk-ant-file-OLD-0004", "sk-ant-file-NEW-0005"
    key_file = tmp_path / "anthropic_api_key"
    key_file.write_text(old_key + "\n")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(key_file))
    warm = make_warm(warm_max=2, max_concurrency=3, warm_floor=0)
    # Two old-key processes: one idle after the request, one started in the background.
    await asyncio.gather(warm.ask("old ROT-0a"), warm.ask("old ROT-0b"))
    assert await async_wait_until(lambda: warm.pool.idle == 2, SETTLE)
    old_pids = warm.pids()
    assert len(old_pids) == 2

    key_file.write_text(new_key + "\n")  # the operator rotates the key; the old one is revoked
    fake.set_accept_keys([new_key])
    answer = await warm.ask("new ROT-1")
    assert answer.startswith("fake reply from")

    request = only_request(fake, "ROT-1")
    assert request["auth"] == new_key and request["status"] == 200
    assert not [r for r in fake.messages_requests() if r["status"] == 401], "an old-key process was used"
    assert await async_wait_until(lambda: not (old_pids & warm.pids()), SETTLE), "old-key processes kept running"
    for pid in warm.pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # stopped since (a spare beyond the recent peak): it holds nothing any more
        assert old_key.encode() not in environ


# --------------------------------------------------------------------------- shutdown, and warm off


async def test_close_leaves_no_process_behind(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(max_concurrency=3, warm_max=2)
    await asyncio.gather(warm.ask("close CLOSE-1"), warm.ask("close CLOSE-2"))
    assert await async_wait_until(lambda: warm.pool.idle == 2, SETTLE)
    pids = warm.pids()
    assert len(pids) == 2
    await warm.engine.close()
    assert not warm.pids()
    assert warm.engine.slots.in_use == 0
    assert await async_wait_until(lambda: not zombies(), 10)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    assert not warm.workspaces()


async def test_close_while_a_warm_process_is_still_starting(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(max_concurrency=2, warm_max=2, warm_max_uses=1)
    # With one use per process, the end of the request starts a replacement in the background.
    await warm.ask("close STARTING-1")
    assert await async_wait_until(lambda: warm.pool.idle == 1, SETTLE, interval=0.002)
    await warm.engine.close()
    assert not warm.pids()
    assert await async_wait_until(lambda: not warm.pids() and not zombies(), 10)
    assert warm.engine.slots.in_use == 0
    assert not warm.workspaces()


def test_exit_of_a_script_stops_the_sync_loop_and_leaves_no_workspace(
    tmp_path: Path, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What runs at a script's exit closes the sync API's engine and stops its loop thread.

    The loop thread is a daemon: left running through interpreter exit, it could create a
    spare's workspace after the engine's last-resort kill had passed, and that directory
    outlived the script (seen once in a few dozen runs of examples/basic_completion.py).
    """
    from litellm_claude_code import _provider

    at_exit: list[tuple[Any, tuple[Any, ...]]] = []
    monkeypatch.setattr(_provider.atexit, "register", lambda func, *args: at_exit.append((func, args)))
    name = f"cc-warm-{next(_NAMES)}"
    state_dir = tmp_path / name
    baseline = {p.pid for p in claude_processes()}
    # One use per process: the end of the request starts a replacement, as a script exits.
    provider = make_provider(state_dir, name, max_concurrency=2, warm_max=2, warm_max_uses=1)
    response = litellm.completion(model=f"{name}/sonnet", messages=[{"role": "user", "content": "exit EXIT-1"}])
    assert response.choices[0].message.content
    assert len(at_exit) == 1, "the sync API's loop thread must register one exit handler"
    thread = provider._loop_thread
    func, args = at_exit[0]
    func(*args)
    assert not thread._thread.is_alive(), "the loop thread still runs after the exit handler"
    warm = Warm(provider, name, state_dir, baseline)
    assert wait_until(lambda: not warm.pids(), 10), f"CLI processes left behind: {warm.pids()}"
    time.sleep(0.5)  # nothing may start after the handler: the loop is stopped
    assert not warm.workspaces() and not warm.pids()


async def test_warm_disabled_starts_one_process_per_request(make_warm: Any, fake: FakeAnthropicServer) -> None:
    warm = make_warm(warm_enabled=False, warm_max=2)
    for index in range(3):
        await warm.ask(f"cold COLD-{index}-x", stream=index == 1)
        gone = await async_wait_until(lambda: not warm.pids() and not warm.workspaces(), 10)
        assert gone, "a process outlived its request with warm processes off"
    served = {workspace_of(only_request(fake, f"COLD-{index}-x")) for index in range(3)}
    assert len(served) == 3
    stats = warm.pool.stats
    assert (stats.started, stats.warm, stats.cold_reasons["disabled"]) == (3, 0, 3)
