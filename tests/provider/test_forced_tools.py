"""tool_choice and parallel_tool_calls emulated by the engine, with scripted processes (no CLI).

A forced ``tool_choice`` whose turn ends without a call gets one follow-up turn in the same
process, then a 502; the text Claude wrote is held back; ``parallel_tool_calls: false`` hands
back the first call. Each time the client got less than the process holds, the turn is cut off
rather than kept as the conversation's continuation. ``test_tool_choice.py`` runs the same
through the proxy with the bundled CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.types import Message
from litellm_claude_code import UpstreamServerError
from litellm_claude_code._cli import Binding, Launch
from litellm_claude_code._engine import Engine, Request
from litellm_claude_code._messages import Conversation, Turn
from litellm_claude_code._settings import Settings
from litellm_claude_code._streaming import Delta, Outcome
from litellm_claude_code._tools import tool_request

from tests.support.fake_process import (
    FakeProcess,
    answer_messages,
    conversation,
    credential,  # noqa: F401  (autouse: the engine's API key)
)
from tests.support.sdk_messages import TIME, WEATHER, tool_turn


class TurnsProcess(FakeProcess):
    """Answers each turn with the next of ``turns``; records the turns it was given and what it kept."""

    def __init__(self, launch: Launch, binding: Binding, registry: list[FakeProcess]) -> None:
        super().__init__(launch, binding, registry)
        self.turns: list[list[Message]] = []
        self.asked: list[tuple[str, bool]] = []
        self.committed: list[Turn] = []
        self.dropped = 0

    async def run(self, conversation: Conversation, *, follow_up: bool = False) -> AsyncIterator[Message]:
        self.asked.append((conversation.text, follow_up))
        self.completed = False
        for message in self.turns.pop(0):
            if type(message).__name__ == "ResultMessage":
                self.completed = True
            yield message

    def commit(self, answer: Turn) -> bool:
        self.committed.append(answer)
        return super().commit(answer) if self._user else True

    async def drop_turn(self) -> None:
        self.dropped += 1
        await super().drop_turn()


class Harness:
    def __init__(self, tmp_path: Path, turns: list[list[Message]]) -> None:
        self.made: list[FakeProcess] = []
        self.turns = turns
        self.engine = Engine(
            Settings(state_dir=tmp_path, max_concurrency=2, warm_max=2, queue_timeout=2.0), process_factory=self.make
        )

    def make(self, launch: Launch, binding: Binding) -> FakeProcess:
        process = TurnsProcess(launch, binding, self.made)
        process.turns = [list(turn) for turn in self.turns]
        return process

    async def ask(self, **params: Any) -> tuple[list[Delta], Outcome, TurnsProcess]:
        talk = conversation("weather in Paris?")
        asked = tool_request({"tools": [WEATHER, TIME], **params}, talk)
        request = Request(
            model="sonnet",
            conversation=talk,
            stream=True,
            timeout=5,
            tools=asked.tools,
            forced=asked.forced,
            forced_name=asked.name,
            single_call=asked.single,
        )
        outcome = Outcome()
        got = [delta async for delta in self.engine.stream(request, outcome)]
        await self.engine.close()
        return got, outcome, self.served()

    def served(self) -> TurnsProcess:
        """The process that answered (the pool may have started spares beside it)."""
        (process,) = [p for p in self.made if isinstance(p, TurnsProcess) and p.asked]
        return process


def called(got: list[Delta]) -> list[tuple[int, str | None]]:
    return [(d.tool_call.index, d.tool_call.name) for d in got if d.tool_call and d.tool_call.id]


async def test_required_hands_back_the_calls_and_holds_the_text_back(tmp_path: Path) -> None:
    got, outcome, process = await Harness(tmp_path, [tool_turn()]).ask(tool_choice="required")
    assert not [d for d in got if d.text], "text reached the client in forced mode"
    assert called(got) == [(0, "mcp__client__get_weather"), (1, "mcp__client__get_time")]
    assert outcome.finish_reason == "tool_calls" and outcome.text == ""
    assert process.asked == [("weather in Paris?", False)]  # one turn: no follow-up needed
    assert process.dropped == 1 and not process.committed  # the CLI holds text the client never got


async def test_a_forced_turn_without_a_call_is_asked_once_more_in_the_same_process(tmp_path: Path) -> None:
    harness = Harness(tmp_path, [answer_messages("It is sunny, I think."), tool_turn()])
    got, outcome, process = await harness.ask(tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert not [d for d in got if d.text]
    assert called(got)[0] == (0, "mcp__client__get_weather")
    assert outcome.finish_reason == "tool_calls" and [c.id for c in outcome.tool_calls] == ["t1", "t2"]
    assert [follow for _, follow in process.asked] == [False, True]
    assert "Call the tool mcp__client__get_weather now" in process.asked[1][0]
    assert outcome.usage.input_tokens == 3 + 5  # both turns counted
    assert process.dropped == 1 and not process.committed  # the follow-up is no turn of the client's


async def test_no_call_after_the_follow_up_is_a_502(tmp_path: Path) -> None:
    harness = Harness(tmp_path, [answer_messages("no"), answer_messages("still no")])
    with pytest.raises(UpstreamServerError, match="tool_choice asks for a tool call, but Claude ended its answer"):
        await harness.ask(tool_choice="required")
    assert len(harness.served().asked) == 2  # one follow-up, no more


async def test_parallel_tool_calls_false_hands_back_the_first_call(tmp_path: Path) -> None:
    got, outcome, process = await Harness(tmp_path, [tool_turn()]).ask(parallel_tool_calls=False)
    assert called(got) == [(0, "mcp__client__get_weather")]
    assert not [d for d in got if d.tool_call and d.tool_call.index > 0]
    assert [c.id for c in outcome.tool_calls] == ["t1"]
    assert "".join(d.text for d in got) == "Checking."  # not forced: the text is the answer's
    assert process.dropped == 1 and not process.committed  # the CLI holds a call the client never got


async def test_auto_with_every_call_keeps_the_turn(tmp_path: Path) -> None:
    got, outcome, process = await Harness(tmp_path, [tool_turn()]).ask()
    assert len(outcome.tool_calls) == 2 and "".join(d.text for d in got) == "Checking."
    assert process.dropped == 0 and len(process.committed) == 1
