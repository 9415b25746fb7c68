"""Deltas that piled up while the proxy was busy reach LiteLLM as one chunk (``_bridge.in_own_task``,
``_provider._merged``): the same text in fewer chunks, nothing held back, order and errors kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from litellm_claude_code._bridge import in_own_task
from litellm_claude_code._provider import _merged
from litellm_claude_code._streaming import Delta, ToolCallDelta


def test_adjacent_text_and_reasoning_are_joined_in_order() -> None:
    call = Delta(tool_call=ToolCallDelta(0, id="c1", name="f"))
    batch = [
        Delta(reasoning="th"),
        Delta(reasoning="ink"),
        Delta(text="Hel"),
        Delta(text="lo"),
        call,
        Delta(text="!"),
    ]
    assert _merged(batch) == [Delta(reasoning="think"), Delta(text="Hello"), call, Delta(text="!")]
    assert _merged([Delta(text="a")]) == [Delta(text="a")]


async def _collect(source: AsyncIterator[list[int]], pause: float) -> list[list[int]]:
    batches = []
    async for batch in source:
        batches.append(batch)
        await asyncio.sleep(pause)  # a busy consumer
    return batches


async def _numbers(count: int, gap: float) -> AsyncIterator[int]:
    for number in range(count):
        yield number
        await asyncio.sleep(gap)


async def test_a_consumer_that_keeps_up_gets_every_item_on_its_own() -> None:
    batches = await _collect(in_own_task(_numbers(5, 0.01)), 0)
    assert batches == [[0], [1], [2], [3], [4]]


async def test_items_that_piled_up_come_as_one_batch() -> None:
    batches = await _collect(in_own_task(_numbers(6, 0)), 0.05)
    assert [n for batch in batches for n in batch] == list(range(6))
    assert batches[0] == [0], "the first item is passed on at once, not held for a batch"
    assert len(batches) < 6, batches


async def test_items_before_an_error_are_passed_on_then_the_error() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise RuntimeError("boom")

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        async for batch in in_own_task(failing()):
            seen += batch
            await asyncio.sleep(0.01)
    assert seen == [1, 2]
