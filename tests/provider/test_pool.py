"""The process pool's rules, with fake processes: choice, affinity, eviction, spares, limits.

No CLI runs here: :class:`FakeProcess` implements the pool's ``Process`` protocol with the same
planning function the real process uses (:func:`litellm_claude_code._process.plan_for`), so these
tests run in milliseconds and pin the rules; ``test_warm.py`` and ``test_conversations.py`` show
the same rules hold with the real CLI.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from litellm_claude_code._cli import Binding, Launch
from litellm_claude_code._credentials import Credential
from litellm_claude_code._errors import QueueFullError
from litellm_claude_code._messages import Conversation, chain_of, convert_messages
from litellm_claude_code._pool import ProcessPool
from litellm_claude_code._process import Plan
from litellm_claude_code._settings import Settings
from litellm_claude_code._slots import Slots

from tests.support.fake_process import FakeProcess, conversation

LAUNCH = Launch(Credential("ANTHROPIC_API_KEY", "sk-ant-key-one", "environment"))
ROTATED = Launch(Credential("ANTHROPIC_API_KEY", "sk-ant-key-two", "environment"))


@pytest.fixture
def make_pool(tmp_path: Path) -> Any:
    FakeProcess.made = []

    def factory(**overrides: Any) -> ProcessPool[FakeProcess]:
        values: dict[str, Any] = {
            "state_dir": tmp_path,
            "max_concurrency": 3,
            "warm_max": 2,
            "warm_floor": 0,
            "queue_timeout": 0.5,
        }
        values.update(overrides)
        settings = Settings(**values)
        return ProcessPool(settings, Slots(settings.max_concurrency), FakeProcess)

    return factory


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def ask(
    pool: ProcessPool[FakeProcess],
    conv: Conversation,
    *,
    tenant: str = "",
    model: str = "sonnet",
    launch: Launch = LAUNCH,
    answer: str = "answer",
    tools: Any = None,
    calls: bool = False,
) -> tuple[FakeProcess, Any]:
    binding = Binding(model, conv.system, tools=tools)
    lease = await pool.checkout(conv, binding, launch, tenant)
    lease.process.serve(conv, lease.plan, binding, answer, calls=calls)
    pool.checkin(lease.process, keep=True)
    await settle()
    return lease.process, lease


# --------------------------------------------------------------------------- affinity


async def test_a_follow_up_turn_goes_to_the_process_that_holds_the_conversation(make_pool: Any) -> None:
    pool = make_pool()
    first, lease = await ask(pool, conversation("q1"))
    assert not lease.warm and lease.cold_reason == "no_idle"
    other, _ = await ask(pool, conversation("another conversation"))
    assert other is not first  # a spare, not the process holding the first conversation
    again, lease = await ask(pool, conversation("q1", "answer", "q2"))
    assert again is first and lease.warm
    assert lease.plan == Plan(keep=2, append=(), rewind=False) and lease.plan.kind == "continued"
    assert pool.stats.continued == 1


async def test_an_edited_earlier_turn_is_never_served_by_the_process_holding_the_old_one(make_pool: Any) -> None:
    pool = make_pool()
    first, _ = await ask(pool, conversation("q1", "answer", "q2"))
    process, lease = await ask(pool, conversation("q1 EDITED", "answer", "q2", "answer", "q3"))
    assert process is not first and lease.warm and lease.plan.kind == "rebuilt"
    assert lease.plan.append == conversation("q1 EDITED", "answer", "q2", "answer", "q3").history
    assert first.held[0].chain == chain_of(conversation("q1").turns)[0]  # untouched


async def test_an_answer_the_client_changed_is_not_continued(make_pool: Any) -> None:
    pool = make_pool()
    first, _ = await ask(pool, conversation("q1"), answer="the real answer")
    process, lease = await ask(pool, conversation("q1", "a different answer", "q2"))
    assert process is not first and lease.plan.kind == "rebuilt"


async def test_a_regenerated_answer_cuts_back_to_the_shared_turns(make_pool: Any) -> None:
    pool = make_pool()
    first, _ = await ask(pool, conversation("q1", "answer", "q2"))
    again, lease = await ask(pool, conversation("q1", "answer", "q2 rephrased"))
    assert again is first and lease.plan == Plan(keep=2, append=(), rewind=True) and lease.plan.kind == "branched"


async def test_a_greeting_before_the_first_question_is_appended_live(make_pool: Any) -> None:
    pool = make_pool()
    await ask(pool, conversation("warm-up"))
    conv = convert_messages([{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "hi"}])
    _process, lease = await ask(pool, conv)
    assert lease.warm and lease.plan.keep == 0 and [t.role for t in lease.plan.append] == ["assistant"]


async def test_affinity_never_crosses_tenants(make_pool: Any) -> None:
    pool = make_pool(warm_max=3, max_concurrency=3)
    alice, _ = await ask(pool, conversation("same few-shot question"), tenant="alice")
    bob, lease = await ask(pool, conversation("same few-shot question", "answer", "next"), tenant="bob")
    assert bob is not alice and bob.tenant == "bob" and lease.plan.kind == "rebuilt"
    new, _ = await ask(pool, conversation("a new one"), tenant="bob")
    assert new is not alice  # alice's idle process serves alice only, even for a new conversation


async def test_a_process_with_a_system_prompt_is_not_given_a_request_without_one(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=2)
    with_system, _ = await ask(pool, conversation("q", system="be brief"))
    plain, lease = await ask(pool, conversation("q"))
    assert plain is not with_system and lease.cold_reason == "mismatch"


async def test_another_model_and_system_prompt_reuse_an_idle_process(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=2)
    first, _ = await ask(pool, conversation("q", system="app one"))
    again, lease = await ask(pool, conversation("q2", system="app two"), model="haiku")
    assert again is first and lease.warm and lease.plan == Plan(0, (), True)


async def test_a_new_system_prompt_mid_conversation_keeps_the_process(make_pool: Any) -> None:
    """A chat UI with the time in its system prompt: the same process serves the next turn, in
    place, or (haiku, whose session refuses the guarded switch) with the history written again."""
    pool = make_pool(warm_max=1, max_concurrency=2)
    for model, kind in (("sonnet", "continued"), ("haiku", "rebuilt")):
        first, _ = await ask(pool, conversation(f"{model} q1", system="time 10:00"), model=model)
        again, lease = await ask(pool, conversation(f"{model} q1", "answer", "q2", system="time 10:01"), model=model)
        assert again is first and lease.warm and lease.plan.kind == kind, (model, lease)


async def test_the_model_of_a_kept_conversation_does_not_change(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=2)
    first, _ = await ask(pool, conversation("q1"))
    other, lease = await ask(pool, conversation("q1", "answer", "q2"), model="opus")
    assert other is not first and lease.plan.kind == "rebuilt"


# --------------------------------------------------------------------------- warm set


async def test_sequential_traffic_keeps_warm_max_processes_ready(make_pool: Any) -> None:
    pool = make_pool(warm_max=3, max_concurrency=4)
    for index in range(4):
        await ask(pool, conversation(f"request {index}"))
    assert pool.idle == 3
    assert pool.slots.in_use == 3
    assert pool.stats.warm == 3 and pool.stats.requests == 4


async def test_the_process_that_just_served_is_kept_over_the_least_recently_used(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=4)
    procs = await asyncio.gather(
        *(pool.checkout(conversation(f"c{i}"), Binding("sonnet"), LAUNCH, "") for i in range(3))
    )
    for index, lease in enumerate(procs):
        lease.process.serve(conversation(f"c{index}"), lease.plan, Binding("sonnet"))
        await asyncio.sleep(0.01)
    for lease in procs:
        pool.checkin(lease.process, keep=True)
        await settle()
    kept = pool.idle_processes()
    assert procs[2].process in kept and procs[1].process in kept
    assert procs[0].process.closed  # least recently used: stopped


async def test_a_new_spec_is_served_warm_from_its_second_request(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=3)
    for index in range(3):
        await ask(pool, conversation(f"old app {index}", system="old app"))
    for index in range(3):
        _, lease = await ask(pool, conversation(f"new app {index}", system=f"new app, date {index}"), model="opus")
        assert lease.warm, f"request {index} of the new spec was cold ({lease.cold_reason})"


async def test_a_new_litellm_key_is_served_warm_from_its_second_request(make_pool: Any) -> None:
    """The warm set full of one key's processes holds nothing hostage: the next key's first
    request is cold, the rest are warm, and the old key's idle processes give way."""
    pool = make_pool(warm_max=2, max_concurrency=2)
    for index in range(4):
        await ask(pool, conversation(f"alice {index}"), tenant="alice")
    assert {p.tenant for p in pool.idle_processes()} == {"alice"} and pool.idle == 2
    for index in range(4):
        _, lease = await ask(pool, conversation(f"bob {index}"), tenant="bob")
        assert lease.warm == (index > 0), (index, lease.cold_reason)
    await ask(pool, conversation("bob again"), tenant="bob")
    assert [p.tenant for p in pool.idle_processes()].count("bob") >= 1


async def test_a_request_without_a_system_prompt_is_not_starved_by_apps_with_one(make_pool: Any) -> None:
    """Three apps in turn, one without a system prompt: a process without one is spent last, so
    that app stays warm (least recently used alone would give it to another app every round)."""
    pool = make_pool(warm_max=2, max_concurrency=2)
    cold = []
    for index in range(12):
        system = ("app A", "app B", None)[index % 3]
        _, lease = await ask(pool, conversation(f"request {index}", system=system))
        if not lease.warm:
            cold.append((index, system, lease.cold_reason))
    # Exactly two: the first request (nothing started yet) and the first without a system prompt
    # (the only process then had one); every later request of the three apps is warm.
    assert cold == [(0, "app A", "no_idle"), (2, None, "mismatch")], cold


async def test_a_chat_that_just_spoke_keeps_its_process_while_others_can_be_spent(make_pool: Any) -> None:
    """Three requests without a system prompt fill three processes, then two chats with one
    arrive: the second chat takes the oldest of those three, not the process of the chat that
    answered just before, so each chat's follow-up finds its own process (the fleet's affinity
    test through nginx, on one gateway with four slots)."""
    pool = make_pool(warm_max=4, max_concurrency=4)
    for index in range(3):
        await ask(pool, conversation(f"hello {index}"))
    await settle()
    chats = {tag: conversation(f"{tag} q0", system=f"{tag} system") for tag in ("affine-0", "affine-1")}
    served = {}
    for tag, chat in chats.items():
        served[tag], _ = await ask(pool, chat)
    assert served["affine-0"] is not served["affine-1"]
    for tag in chats:
        follow_up = conversation(f"{tag} q0", "answer", f"{tag} q1", system=f"{tag} system")
        process, lease = await ask(pool, follow_up)
        assert process is served[tag] and lease.plan.kind == "continued", (tag, lease)


async def test_as_many_chats_as_warm_processes_settle_in_them_after_requests_without_a_system_prompt(
    make_pool: Any,
) -> None:
    """Two requests without a system prompt (a client's first contact), then four chats with one,
    interleaved turn by turn, on WARM_MAX=4: the chats settle in their own processes. The idle
    process left from those first requests is kept back for requests without a system prompt only
    while such a request is among the last WARM_MAX + 1; kept back regardless, each new chat cut
    the chat that would speak next, and every follow-up was rebuilt (`bench.py --conversation
    --warm-max 4`: no cache read at all). The fourth chat still arrives while the first contact
    is recent, so one follow-up is rebuilt; from the third turn on, every one continues."""
    pool = make_pool(warm_max=4, max_concurrency=8)
    for index in range(2):
        await ask(pool, conversation(f"first contact {index}"))
    tags = [f"chat-{index}" for index in range(4)]
    kinds: dict[str, list[str]] = {tag: [] for tag in tags}
    for turn in range(4):
        for tag in tags:
            texts: list[str] = []
            for earlier in range(turn):
                texts += [f"{tag} q{earlier}", "answer"]
            _, lease = await ask(pool, conversation(*texts, f"{tag} q{turn}", system=f"{tag} system"))
            kinds[tag].append(lease.plan.kind)
    rebuilt = [tag for tag, seen in kinds.items() for kind in seen[1:] if kind != "continued"]
    assert rebuilt == ["chat-0"], kinds  # the one follow-up the docstring names
    assert all(seen[2:] == ["continued"] * 2 for seen in kinds.values()), kinds


async def test_a_new_chat_waits_for_a_starting_spare_rather_than_cut_a_chat_that_just_spoke(tmp_path: Path) -> None:
    """A chat's first turn, while the only ready idle process holds the chat that just spoke and a
    spare is still starting (a loaded host, a gateway just restarted): the new chat waits for the
    spare. Cutting the other chat would cost its next turn a rebuild and, upstream, a prompt-cache
    miss on its whole history, far more than the rest of a start (the fleet's affinity test missed
    one follow-up in six this way under CI load)."""
    FakeProcess.made = []
    settings = Settings(state_dir=tmp_path, max_concurrency=3, warm_max=3)

    def factory(launch: Launch, binding: Binding) -> FakeProcess:
        return FakeProcess(launch, binding, hold_start=bool(FakeProcess.made))  # the first starts at once

    pool = ProcessPool(settings, Slots(3), factory, starting_limit=1)
    one = conversation("one q0", system="one")
    first, _ = await ask(pool, one)
    (spare,) = [p for p in pool.idle_processes() if p is not first]
    assert not spare.start_gate.is_set()

    two = conversation("two q0", system="two")
    waiter = asyncio.create_task(pool.checkout(two, Binding("sonnet", "two"), LAUNCH, ""))
    await settle()
    assert not waiter.done(), "the new chat took the process of the chat that just spoke"
    spare.start_gate.set()
    lease = await asyncio.wait_for(waiter, 2)
    assert lease.process is spare and lease.warm and lease.plan.kind == "new"
    lease.process.serve(two, lease.plan, Binding("sonnet", "two"))
    pool.checkin(lease.process, keep=True)

    follow_up = conversation("one q0", "answer", "one q1", system="one")
    process, lease = await ask(pool, follow_up)
    assert process is first and lease.plan.kind == "continued"
    for process in FakeProcess.made:
        process.start_gate.set()
    await pool.close()


async def test_a_ready_process_that_would_cut_is_taken_when_no_spare_is_starting(make_pool: Any) -> None:
    """The other side of the rule: with no fresh process idle or starting, a new chat takes the
    least recently used ready one and cuts its conversation (the cap is never exceeded for it)."""
    pool = make_pool(warm_max=2, max_concurrency=2)
    older, _ = await ask(pool, conversation("older"))
    await asyncio.sleep(0.01)
    await ask(pool, conversation("newer"))
    assert pool.idle == 2 and all(p.held for p in pool.idle_processes())
    lease = await pool.checkout(conversation("third"), Binding("sonnet"), LAUNCH, "")
    assert lease.process is older and lease.warm and lease.plan.rewind
    pool.checkin(lease.process, keep=False)
    await pool.close()


async def test_spares_follow_the_model_of_the_recent_traffic(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=3)
    for index in range(40):
        await ask(pool, conversation(f"sonnet {index}"), model="sonnet")
    for index in range(20):
        await ask(pool, conversation(f"opus {index}"), model="opus")
    lease = await pool.checkout(conversation("one more"), Binding("sonnet"), LAUNCH, "")
    before = len(FakeProcess.made)
    pool.checkin(lease.process, keep=False)  # retired: a spare takes its place
    await settle()
    spares = FakeProcess.made[before:]
    assert spares and all(p.binding.model == "opus" for p in spares)  # not sonnet, the all-time favourite


async def test_spares_start_no_more_than_the_starting_limit_at_once(tmp_path: Path) -> None:
    FakeProcess.made = []
    settings = Settings(state_dir=tmp_path, max_concurrency=6, warm_max=6, warm_floor=5)
    held: list[FakeProcess] = []

    def factory(launch: Launch, binding: Binding) -> FakeProcess:
        process = FakeProcess(launch, binding, hold_start=bool(held) or len(FakeProcess.made) > 0)
        held.append(process)
        return process

    pool = ProcessPool(settings, Slots(6), factory, starting_limit=2)
    await ask(pool, conversation("first"))
    starting = [p for p in FakeProcess.made if not p.start_gate.is_set()]
    assert len(starting) == 2 and pool.slots.in_use == 3
    for process in starting:
        process.start_gate.set()
    await settle()
    assert len(FakeProcess.made) == 5  # the next two, as the first two are up
    for process in FakeProcess.made:
        process.start_gate.set()
    await settle()
    assert len(FakeProcess.made) == 6 and pool.idle == 6
    await pool.close()


async def test_a_cold_start_caused_by_an_eviction_says_so(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=2)
    await ask(pool, conversation("q1"), tenant="alice")
    await asyncio.sleep(0.01)
    await ask(pool, conversation("q2"), tenant="alice")
    _, lease = await ask(pool, conversation("q3"), tenant="bob")  # alice's older process gives way
    assert lease.cold_reason == "mismatch"
    await asyncio.sleep(0.01)
    _, lease = await ask(pool, conversation("q4"), tenant="carol")  # alice's other one gives way
    assert lease.cold_reason == "mismatch"
    _, lease = await ask(pool, conversation("q5"), tenant="alice")  # had her processes been kept...
    assert not lease.warm and lease.cold_reason == "evicted"
    assert pool.stats.cold_reasons["evicted"] == 1


async def test_a_burst_waits_for_a_spare_that_is_starting(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=2)
    await ask(pool, conversation("prime"))
    assert pool.idle == 2
    spare = next(p for p in pool.idle_processes() if not p.held)
    other = next(p for p in pool.idle_processes() if p.held)
    a = await pool.checkout(conversation("x"), Binding("sonnet"), LAUNCH, "")
    b = await pool.checkout(conversation("y"), Binding("sonnet"), LAUNCH, "")
    assert {a.process, b.process} == {spare, other} and a.warm and b.warm


async def test_a_full_pool_refuses_after_the_queue_timeout(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=1, queue_timeout=0.2)
    lease = await pool.checkout(conversation("busy"), Binding("sonnet"), LAUNCH, "")
    started = time.monotonic()
    with pytest.raises(QueueFullError):
        await pool.checkout(conversation("waits"), Binding("sonnet"), LAUNCH, "")
    assert 0.15 < time.monotonic() - started < 2
    pool.checkin(lease.process, keep=False)


async def test_a_waiting_request_gets_the_process_returned(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=1, queue_timeout=5)
    lease = await pool.checkout(conversation("q1"), Binding("sonnet"), LAUNCH, "")
    waiter = asyncio.create_task(pool.checkout(conversation("q1", "answer", "q2"), Binding("sonnet"), LAUNCH, ""))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    lease.process.serve(conversation("q1"), lease.plan, Binding("sonnet"))
    pool.checkin(lease.process, keep=True)
    second = await asyncio.wait_for(waiter, 2)
    assert second.process is lease.process and second.plan.kind == "continued"


async def test_a_request_needing_a_new_process_evicts_the_least_recently_used(make_pool: Any) -> None:
    pool = make_pool(warm_max=2, max_concurrency=2)
    first, _ = await ask(pool, conversation("q1"), tenant="alice")
    await asyncio.sleep(0.01)
    second, _ = await ask(pool, conversation("q2"), tenant="alice")
    assert pool.slots.in_use == 2
    _new, lease = await ask(pool, conversation("elsewhere", "answer", "q"), tenant="bob")
    assert lease.cold_reason == "mismatch" and lease.plan.kind == "rebuilt"
    assert first.closed and not second.closed
    assert pool.slots.in_use == 2
    assert _new in pool.idle_processes()  # the process that just served is kept


@pytest.mark.parametrize("room", ["cut", "evicted"])
async def test_a_chat_waiting_for_its_tool_results_is_given_up_after_the_others(
    make_pool: Any, monkeypatch: pytest.MonkeyPatch, room: str
) -> None:
    """An agent's chat whose answer was a tool call comes back with the results in seconds: when a
    new chat needs room, a plain chat gives way though the agent's is the least recently used,
    whether the new chat takes an idle process over (every slot taken: ``cut``) or starts its own
    (another tool set) and the idle set overflows (``evicted``). Past ``TOOL_RESULT_WAIT`` it is an
    ordinary chat again: least recently used, first to go."""
    tools = (("grep", "{}"),) if room == "evicted" else None
    for wait, expected in ((30.0, "chat"), (0.0, "agent")):
        monkeypatch.setattr("litellm_claude_code._pool.TOOL_RESULT_WAIT", wait)
        pool = make_pool(warm_max=2, max_concurrency=2 if room == "cut" else 3)
        agent, _ = await ask(pool, conversation("run the tests"), calls=True)
        await asyncio.sleep(0.01)
        chat, _ = await ask(pool, conversation("hello"))
        newcomer, lease = await ask(pool, conversation("a new chat"), tools=tools)
        given_up = {"agent": agent, "chat": chat}[expected]
        kept = chat if given_up is agent else agent
        if room == "cut":
            assert newcomer is given_up and lease.plan.kind == "new", (wait, lease)
        else:
            assert lease.cold_reason == "mismatch" and given_up.closed, (wait, lease)
        assert kept.uses == 1 and not kept.closed, wait
        if expected == "chat":  # the results come back to the process that holds the calls
            _, back = await ask(pool, conversation("run the tests", "answer", "the results"))
            assert back.process is agent and back.plan.kind == "continued"
        await pool.close()


async def test_never_more_processes_than_the_cap(make_pool: Any) -> None:
    pool = make_pool(warm_max=3, max_concurrency=3, queue_timeout=5)
    peak = 0

    async def one(index: int) -> None:
        nonlocal peak
        conv = conversation(f"history {index}", "answer", "q") if index % 2 else conversation(f"q{index}")
        lease = await pool.checkout(conv, Binding("sonnet"), LAUNCH, "")
        live = [p for p in FakeProcess.made if not p.closed]
        peak = max(peak, len(live))
        await asyncio.sleep(0.01)
        lease.process.serve(conv, lease.plan, Binding("sonnet"))
        pool.checkin(lease.process, keep=True)

    await asyncio.gather(*(one(i) for i in range(20)))
    await settle()
    assert peak == 3, "twenty requests at once reach the cap, and never pass it"
    assert len([p for p in FakeProcess.made if not p.closed]) == 3


# --------------------------------------------------------------------------- retirement


async def test_a_rotated_credential_retires_idle_processes(make_pool: Any) -> None:
    pool = make_pool()
    old, _ = await ask(pool, conversation("q1"))
    new, lease = await ask(pool, conversation("q1", "answer", "q2"), launch=ROTATED)
    assert new is not old and not lease.warm
    assert all(p.closed for p in FakeProcess.made if p.launch == LAUNCH)


async def test_worn_out_and_old_processes_are_not_reused(make_pool: Any) -> None:
    pool = make_pool(warm_max_uses=1)
    first, _ = await ask(pool, conversation("q1"))
    assert first.closed  # one use, then retired
    pool = make_pool(warm_max_age=0.05)
    first, _ = await ask(pool, conversation("q1"))
    await asyncio.sleep(0.1)
    again, lease = await ask(pool, conversation("q1", "answer", "q2"))
    # Not the old process: a spare started in its time, replaced as it aged (the recent peak
    # wants one), rebuilds the conversation.
    assert again is not first and time.monotonic() - again.created_at < 0.05 + 0.01
    assert lease.plan.kind == "rebuilt"


async def test_a_dead_idle_process_is_replaced(make_pool: Any) -> None:
    pool = make_pool(warm_max=1, max_concurrency=2)
    first, _ = await ask(pool, conversation("q1"))
    first.dead = True
    again, lease = await ask(pool, conversation("q1", "answer", "q2"))
    assert again is not first and not lease.warm and lease.plan.kind == "rebuilt"


async def test_close_stops_everything_and_starts_nothing_after(make_pool: Any) -> None:
    pool = make_pool()
    process, _ = await ask(pool, conversation("q1"))
    await pool.close()
    assert all(p.closed for p in FakeProcess.made)
    assert pool.slots.in_use == 0
    pool.checkin(process, keep=True)
    await settle()
    assert pool.idle == 0


async def test_spares_are_started_with_the_tools_most_requests_ask_for(make_pool: Any) -> None:
    from litellm_claude_code._tools import tool_request

    tools = tool_request({"tools": [{"type": "function", "function": {"name": "f"}}]}, conversation("x")).tools
    pool = make_pool(warm_max=2, max_concurrency=3)
    for index in range(3):
        await ask(pool, conversation(f"agent {index}"), tools=tools)
    await settle()
    assert pool.idle_processes() and all(p.binding.tools == tools for p in pool.idle_processes())
    # A request without tools never gets one of them: it starts its own process.
    _, lease = await ask(pool, conversation("plain"))
    assert not lease.warm and lease.cold_reason == "mismatch"
    assert lease.process.binding.tools is None


# -- the floor, the recent peak, start-up (issue: always warm, sized to demand) ---------------


def clean_ready(pool: ProcessPool[FakeProcess]) -> list[FakeProcess]:
    """Idle processes that are started, never used and not near their maximum age."""
    return [
        entry.process
        for entry in pool.entries()
        if entry.task.done() and entry.process.uses == 0 and not entry.process.dead and not entry.process.closed
    ]


async def test_warm_up_starts_the_floor_before_any_request(make_pool: Any) -> None:
    pool = make_pool(warm_floor=2, warm_max=3, max_concurrency=4)
    assert await pool.warm_up(LAUNCH, timeout=1.0) is True
    assert len(clean_ready(pool)) == 2 and len(FakeProcess.made) == 2  # the floor, nothing more
    _, lease = await ask(pool, conversation("the first request after start-up"))
    assert lease.warm and lease.cold_reason is None
    await settle()
    assert len(clean_ready(pool)) == 2, "the clean process the request took was not replaced"
    await pool.close()


async def test_warm_up_gives_up_after_its_bounded_wait(tmp_path: Path) -> None:
    FakeProcess.made = []
    settings = Settings(state_dir=tmp_path, max_concurrency=3, warm_max=2, warm_floor=1)
    pool = ProcessPool(settings, Slots(3), lambda launch, binding: FakeProcess(launch, binding, hold_start=True))
    started = time.monotonic()
    assert await pool.warm_up(LAUNCH, timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 1.0
    await pool.close()


async def test_warm_up_with_no_floor_starts_nothing(make_pool: Any) -> None:
    pool = make_pool(warm_floor=0)
    assert await pool.warm_up(LAUNCH, timeout=1.0) is True
    assert FakeProcess.made == []


async def test_a_new_chat_never_waits_while_the_floor_holds(make_pool: Any) -> None:
    """One person after another starting chats (human-paced): every new chat gets a clean process,
    no chat is cut, and the chats keep their processes."""
    pool = make_pool(warm_floor=1, warm_max=4, max_concurrency=5)
    await pool.warm_up(LAUNCH, timeout=1.0)
    chats = []
    for index in range(3):
        process, lease = await ask(pool, conversation(f"chat {index}"))
        assert lease.warm and not lease.plan.rewind, (index, lease)
        chats.append(process)
        await settle()
    for index, process in enumerate(chats):
        again, lease = await ask(pool, conversation(f"chat {index}", "answer", "more"))
        assert again is process and lease.plan.affinity
    await pool.close()


async def test_the_floor_survives_the_idle_timeout(make_pool: Any) -> None:
    """Quiet longer than the idle timeout: the conversation's process goes, the floor stays."""
    pool = make_pool(warm_floor=1, warm_idle_timeout=0.05, warm_window=0.05)
    await pool.warm_up(LAUNCH, timeout=1.0)
    chat, _ = await ask(pool, conversation("q1"))
    await settle()
    (floor,) = clean_ready(pool)  # the clean process that replaced the one the chat took
    await asyncio.sleep(0.3)
    assert chat.closed, "an idle conversation outlived the idle timeout"
    assert clean_ready(pool) == [floor] and pool.idle == 1, "the floor was stopped (and restarted) for idling"
    _, lease = await ask(pool, conversation("after the quiet"))
    assert lease.warm
    await pool.close()


async def test_the_floor_is_replaced_before_it_ages_out(make_pool: Any) -> None:
    """A clean process near its maximum age gets a replacement, and is stopped only once the
    replacement is ready: sampled all along, a ready clean process is always there."""
    pool = make_pool(warm_floor=1, warm_max_age=0.5)
    await pool.warm_up(LAUNCH, timeout=1.0)
    first = clean_ready(pool)[0]
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        assert clean_ready(pool), "the floor lapsed"
        await asyncio.sleep(0.005)
    assert first.closed, "the first clean process outlived its maximum age"
    assert len(FakeProcess.made) >= 3  # replaced at least twice in 1.2 s of a 0.5 s age
    _, lease = await ask(pool, conversation("after two replacements"))
    assert lease.warm
    await pool.close()


async def test_the_floor_is_not_replaced_while_its_replacement_cannot_start(tmp_path: Path) -> None:
    """The old clean process is kept (and still serves, until its maximum age) while the
    replacement is starting: stopped only once the floor is ready without it."""
    FakeProcess.made = []
    settings = Settings(state_dir=tmp_path, max_concurrency=3, warm_max=2, warm_floor=1, warm_max_age=0.5)

    def factory(launch: Launch, binding: Binding) -> FakeProcess:
        return FakeProcess(launch, binding, hold_start=bool(FakeProcess.made))

    pool = ProcessPool(settings, Slots(3), factory)
    await pool.warm_up(LAUNCH, timeout=1.0)
    first = FakeProcess.made[0]
    await asyncio.sleep(first.created_at + 0.46 - time.monotonic())  # within the refresh margin (a tenth)
    pool.reap_once()  # what the reaper does every tick, here at a known moment
    await settle()
    assert len(FakeProcess.made) == 2 and not first.closed, "a replacement starts before the old one is stopped"
    FakeProcess.made[1].start_gate.set()
    await settle()
    pool.reap_once()
    await settle()
    assert time.monotonic() - first.created_at < 0.5  # stopped for its replacement, not for its age
    assert first.closed and clean_ready(pool) == [FakeProcess.made[1]]
    await pool.close()


async def test_the_warm_set_follows_the_recent_peak_and_shrinks_after_it(make_pool: Any) -> None:
    """A burst of four: after it, four clean spares wait beside the four chats, so a burst as
    large finds one each; once the peak leaves the window, the spares beyond the floor are
    stopped, and the chats stay until their idle timeout."""
    pool = make_pool(warm_floor=1, warm_max=8, max_concurrency=9, warm_window=0.3, warm_idle_timeout=30)
    await pool.warm_up(LAUNCH, timeout=1.0)

    async def burst(name: str) -> list[Any]:
        leases = await asyncio.gather(
            *(pool.checkout(conversation(f"{name} {i}"), Binding("sonnet"), LAUNCH, "") for i in range(4))
        )
        for index, lease in enumerate(leases):
            lease.process.serve(conversation(f"{name} {index}"), lease.plan, Binding("sonnet"))
            pool.checkin(lease.process, keep=True)
        for _ in range(20):
            await settle()
        return leases

    first = await burst("burst")
    assert pool.demand() == 4
    assert len(clean_ready(pool)) == 4 and pool.idle == 8
    await asyncio.sleep(0.5)
    assert pool.demand() == 0
    assert len(clean_ready(pool)) == 1 and pool.idle == 5, "the spares beyond the floor outlived the peak"
    assert all(not lease.process.closed for lease in first), "a chat was stopped before its idle timeout"
    await pool.close()


async def test_a_burst_as_large_as_the_recent_peak_is_warm(make_pool: Any) -> None:
    pool = make_pool(warm_floor=1, warm_max=8, max_concurrency=9)
    await pool.warm_up(LAUNCH, timeout=1.0)
    for name in ("first", "second"):
        leases = await asyncio.gather(
            *(pool.checkout(conversation(f"{name} {i}"), Binding("sonnet"), LAUNCH, "") for i in range(3))
        )
        if name == "second":
            assert all(lease.warm and not lease.plan.rewind for lease in leases), leases
        for index, lease in enumerate(leases):
            lease.process.serve(conversation(f"{name} {index}"), lease.plan, Binding("sonnet"))
            pool.checkin(lease.process, keep=True)
        for _ in range(20):
            await settle()
    await pool.close()


async def test_the_floor_is_kept_within_warm_max(make_pool: Any) -> None:
    """warm_max 2 with a floor of 1: conversations have one idle process between them; the least
    recently used gives way, never the floor."""
    pool = make_pool(warm_floor=1, warm_max=2, max_concurrency=4)
    await pool.warm_up(LAUNCH, timeout=1.0)
    (floor,) = clean_ready(pool)
    chats = []
    for name in ("c1", "c2"):
        # Served by a process of their own (allow_warm=False), used after the floor was made.
        conv = conversation(name)
        lease = await pool.checkout(conv, Binding("sonnet"), LAUNCH, "", allow_warm=False)
        lease.process.serve(conv, lease.plan, Binding("sonnet"))
        pool.checkin(lease.process, keep=True)
        chats.append(lease.process)
        await settle()
    assert chats[0].closed and not chats[1].closed and not floor.closed
    assert pool.idle == 2 and clean_ready(pool) == [floor]
    await pool.close()


async def test_spares_cover_each_apps_tools_in_turn(make_pool: Any) -> None:
    """Three apps, each with tools of its own (a process lists them once, at start), after a
    burst of three: the spares cover the three tool sets, so a next burst of the three apps is
    warm (before, every spare took the commonest tool set and the others started cold)."""
    from litellm_claude_code._tools import tool_request

    def tools_named(name: str) -> Any:
        return tool_request({"tools": [{"type": "function", "function": {"name": name}}]}, conversation("x")).tools

    sets = [tools_named(name) for name in ("search", "calendar", "deploy")]
    pool = make_pool(warm_floor=1, warm_max=8, max_concurrency=9)
    await pool.warm_up(LAUNCH, timeout=1.0)

    async def burst(tag: str, weights: tuple[int, ...]) -> list[Any]:
        convs = [(conversation(f"{tag} {i} {j}"), tools) for i, tools in enumerate(sets) for j in range(weights[i])]
        leases = await asyncio.gather(
            *(pool.checkout(conv, Binding("sonnet", tools=tools), LAUNCH, "") for conv, tools in convs)
        )
        for (conv, tools), lease in zip(convs, leases, strict=True):
            lease.process.serve(conv, lease.plan, Binding("sonnet", tools=tools))
            pool.checkin(lease.process, keep=True)
        for _ in range(20):
            await settle()
        return leases

    await burst("first", (2, 1, 1))  # the search app is the commonest
    clean_tools = {entry.process.binding.tools for entry in pool.entries() if entry.process.uses == 0}
    assert set(sets) <= clean_tools, clean_tools  # and the start-up floor's, without tools
    again = await burst("second", (1, 1, 1))
    assert all(lease.warm and not lease.plan.rewind for lease in again), [lease.cold_reason for lease in again]
    await pool.close()


async def test_sustained_new_chats_at_concurrency_start_no_process_per_request(make_pool: Any) -> None:
    """Four clients, each sending one new chat after another, on a cap of four: once the processes
    exist, a new chat cuts the least recently used conversation (warm) and no process is started
    per request. Refilling the floor regardless (an idle chat giving way while others were served)
    cost a CLI start per request: about a CPU-second each, a third of the throughput at c=4 and 8."""
    pool = make_pool(warm_floor=1, warm_max=4, max_concurrency=4, queue_timeout=5)
    await pool.warm_up(LAUNCH, timeout=1.0)
    counter = iter(range(10_000))

    async def client() -> None:
        for _ in range(10):
            conv = conversation(f"new chat {next(counter)}")
            lease = await pool.checkout(conv, Binding("sonnet"), LAUNCH, "")
            await asyncio.sleep(0.005)
            lease.process.serve(conv, lease.plan, Binding("sonnet"))
            pool.checkin(lease.process, keep=True)
            await asyncio.sleep(0)

    await asyncio.gather(*(client() for _ in range(4)))
    made_after_warm_up = len(FakeProcess.made)
    await asyncio.gather(*(client() for _ in range(4)))
    await settle()
    assert len(FakeProcess.made) == made_after_warm_up, "processes were started per request under steady load"
    assert made_after_warm_up <= 5  # the floor and the four the first round needed
    await pool.close()
