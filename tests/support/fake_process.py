"""The one stand-in for a Claude Code process in the unit tests of the pool and the engine.

``ProcessPool`` and ``Engine`` take a process factory (``Engine(settings, process_factory=...)``,
``ProcessPool(settings, slots, factory)``): the seam that lets their rules be tested without a
CLI. :class:`FakeProcess` has the process's interface (``start``, ``plan``, ``prepare``, ``run``,
``commit``, ``drop_turn``, ``kill``, ``close``) and keeps what it holds the way the real one
does (``plan_for`` decides reuse for both), so a test that passes here tests the rule, not the
double. The real process is covered by the real-CLI tests (``test_warm.py``, ``test_proxy.py``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from claude_agent_sdk.types import AssistantMessage, Message, ResultMessage, StreamEvent, TextBlock
from litellm_claude_code import CLIFailedError
from litellm_claude_code._cli import Binding, Launch
from litellm_claude_code._messages import Conversation, Turn, assistant_text_turn, chain_of, convert_messages
from litellm_claude_code._process import HeldTurn, Plan, plan_for

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


def conversation(*texts: str, system: str | None = None) -> Conversation:
    """A conversation of alternating user and assistant texts, starting with the user."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for index, text in enumerate(texts):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    return convert_messages(messages)


class FakeProcess:
    """A process that starts at once (or once ``start_gate`` is set) and answers from its script.

    Each one is appended to ``registry`` (by default the class's ``made``, which a fixture
    empties). ``delay`` is slept before the first message (a slow upstream); ``fail_next``
    raises before anything is yielded (a warm process found dead); ``answer`` is the text of
    each turn. :meth:`serve` does to it what the engine does with a lease, for the pool's tests
    that drive the pool without an engine.
    """

    made: ClassVar[list[FakeProcess]] = []

    def __init__(
        self,
        launch: Launch,
        binding: Binding,
        registry: list[FakeProcess] | None = None,
        *,
        hold_start: bool = False,
    ) -> None:
        self.launch = launch
        self.binding = Binding(binding.model, None, binding.max_output_tokens, binding.tools)
        self.held: list[HeldTurn] = []
        self.tenant: str | None = None
        self.created_at = time.monotonic()
        self.last_used = self.created_at
        self.uses = 0
        self.completed = False
        self.awaits_tool_results = False
        self.dead = False
        self.closed = False
        self.delay = 0.0
        self.fail_next = False
        self.answer = "hello"
        self.start_gate = asyncio.Event()
        if not hold_start:
            self.start_gate.set()
        self._user: HeldTurn | None = None
        self.registry = FakeProcess.made if registry is None else registry
        self.registry.append(self)

    def plan(self, conversation: Conversation, binding: Binding, tenant: str) -> Plan | None:
        return plan_for(self.held, self.binding, self.tenant, conversation, binding, tenant)

    async def start(self) -> None:
        await self.start_gate.wait()

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
        self.awaits_tool_results = False
        self.last_used = time.monotonic()
        self._user = HeldTurn("user", conversation.chain()[-1], str(uuid.uuid4()))
        if self.fail_next:
            self.fail_next = False
            raise CLIFailedError("Claude Code CLI failed: the process is gone")
        if self.delay:
            await asyncio.sleep(self.delay)
        for message in answer_messages(self.answer):
            if isinstance(message, ResultMessage):
                self.completed = True
            yield message

    def commit(self, answer: Turn) -> bool:
        if self._user is None or not self.completed or self._user.chain is None:
            return False
        self.held.append(self._user)
        self.held.append(HeldTurn("assistant", chain_of((answer,), start=self._user.chain)[0], str(uuid.uuid4())))
        self._user = None
        self.awaits_tool_results = any(block.get("type") == "tool_use" for block in answer.content)
        return True

    async def drop_turn(self) -> None:
        self._user = None
        self.completed = True

    def serve(
        self, conversation: Conversation, plan: Plan, binding: Binding, answer: str = "answer", *, calls: bool = False
    ) -> None:
        """What the engine does with a lease, without one: fit the process, run the turn, record it.

        ``calls``: the answer handed the client tool calls (the process then waits for their results).
        """
        del self.held[plan.keep :]
        start = self.held[-1].chain if self.held else ""
        for turn, chain in zip(plan.append, chain_of(plan.append, start=start or ""), strict=True):
            self.held.append(HeldTurn(turn.role, chain, "written"))
        self.binding = binding
        self.uses += 1
        self.last_used = time.monotonic()
        chains = chain_of((*conversation.turns, assistant_text_turn(answer)))
        self.held.append(HeldTurn("user", chains[-2], f"user-{self.uses}"))
        self.held.append(HeldTurn("assistant", chains[-1], f"answer-{self.uses}"))
        self.completed = True
        self.awaits_tool_results = calls


@pytest.fixture(autouse=True)
def credential(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's credential: ``ANTHROPIC_API_KEY`` alone, whatever the environment holds.

    Autouse in each module that imports it (the engine's tests), and only there.
    """
    for name in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY_FILE", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY_ONE)
