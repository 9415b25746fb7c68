"""Tests of the fake server's prompt-cache simulation (Anthropic's documented rules).

Each test starts its own server so cache state never leaks between tests; a small
``cache_min_tokens`` keeps the prompts short unless the minimum itself is under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive
from litellm_claude_code.testing._cache import analyze
from litellm_claude_code.testing._planner import estimate_input_tokens
from litellm_claude_code.testing.fake_anthropic import _parse_args

MODEL = "claude-test-1"
KEY = "sk-ant-cache-key"
CC = {"type": "ephemeral"}
SYSTEM = "You are a careful assistant. " * 20  # ~ 150 estimated tokens


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(cache_min_tokens=50, cache_clock=clock) as server:
        yield server


def text(value: str, *, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": value}
    if cache is not None:
        block["cache_control"] = cache
    return block


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "system": SYSTEM, "messages": messages, **extra}


def post(fake: FakeAnthropicServer, payload: dict[str, Any], *, key: str = KEY, bearer: bool = False) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if bearer else {"x-api-key": key}
    return httpx.post(fake.base_url + "/v1/messages", json=payload, headers=headers, timeout=10)


def usage(fake: FakeAnthropicServer, payload: dict[str, Any], **kwargs: Any) -> dict[str, int]:
    resp = post(fake, payload, **kwargs)
    assert resp.status_code == 200, resp.text
    result: dict[str, int] = resp.json()["usage"]
    # Whatever the split, the three input figures add up to the request's total.
    total = result["input_tokens"] + result["cache_creation_input_tokens"] + result["cache_read_input_tokens"]
    assert total == max(estimate_input_tokens(payload), analyze(payload).total_tokens)
    return result


def chars(element: Any) -> int:
    """What one block weighs for the estimator: its JSON without cache_control
    (a string weighs as the text block it stands for)."""
    if isinstance(element, str):
        element = {"type": "text", "text": element}
    if isinstance(element, dict):
        element = {k: v for k, v in element.items() if k != "cache_control"}
    return len(json.dumps(element, ensure_ascii=False))


def turn1() -> list[dict[str, Any]]:
    return [{"role": "user", "content": [text("What is a prompt cache? " * 5, cache=CC)]}]


def turn2() -> list[dict[str, Any]]:
    messages = turn1()
    del messages[0]["content"][0]["cache_control"]  # the client moves its breakpoint
    return [
        *messages,
        {"role": "assistant", "content": [text("A store of prompt prefixes. " * 5)]},
        {"role": "user", "content": [text("And how long does it last? " * 5, cache=CC)]},
    ]


def test_first_request_writes_then_the_same_prompt_reads_all(fake: FakeAnthropicServer) -> None:
    payload = request(turn1())
    expected = (chars(SYSTEM) + chars(payload["messages"][0]["content"][0])) // 4
    first = usage(fake, payload)
    assert first["cache_creation_input_tokens"] == expected
    assert first["cache_read_input_tokens"] == 0
    second = usage(fake, payload)
    assert second["cache_read_input_tokens"] == expected
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] == first["input_tokens"]


def test_growing_conversation_reads_the_previous_prefix_and_writes_only_the_new_part(
    fake: FakeAnthropicServer,
) -> None:
    first = usage(fake, request(turn1()))
    payload = request(turn2())
    whole = (chars(SYSTEM) + sum(chars(m["content"][0]) for m in payload["messages"])) // 4
    second = usage(fake, payload)
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == whole - first["cache_creation_input_tokens"]
    assert usage(fake, payload)["cache_read_input_tokens"] == whole


def test_a_change_to_an_early_block_breaks_the_cache(fake: FakeAnthropicServer) -> None:
    usage(fake, request(turn1()))
    changed = usage(fake, request(turn1(), system=SYSTEM + "Today is Tuesday."))
    assert changed["cache_read_input_tokens"] == 0
    assert changed["cache_creation_input_tokens"] > 0


def numbered(count: int, *, breakpoint_at: int) -> dict[str, Any]:
    """One user message of ``count`` text blocks, the breakpoint on block ``breakpoint_at``."""
    blocks = [text(f"block number {i:03d} " * 4, cache=CC if i == breakpoint_at else None) for i in range(count)]
    return request([{"role": "user", "content": blocks}])


@pytest.mark.parametrize(("extra", "hit"), [(1, True), (19, True), (20, False), (30, False)])
def test_lookback_checks_the_breakpoint_and_the_19_boundaries_before_it(
    fake: FakeAnthropicServer, extra: int, hit: bool
) -> None:
    """A prefix cached at block c is found from a breakpoint at c + 19 (20 boundaries
    searched: its own and 19 before), not from c + 20."""
    cached = usage(fake, numbered(5, breakpoint_at=4))["cache_creation_input_tokens"]
    later = usage(fake, numbered(5 + extra, breakpoint_at=4 + extra))
    assert later["cache_read_input_tokens"] == (cached if hit else 0)


def test_a_second_breakpoint_reaches_back_where_one_cannot(fake: FakeAnthropicServer) -> None:
    """The documented remedy for long additions: an extra breakpoint near the old prefix."""
    cached = usage(fake, numbered(5, breakpoint_at=4))["cache_creation_input_tokens"]
    payload = numbered(40, breakpoint_at=39)
    payload["messages"][0]["content"][10]["cache_control"] = CC
    assert usage(fake, payload)["cache_read_input_tokens"] == cached


def test_prefixes_below_the_minimum_are_neither_written_nor_read() -> None:
    with FakeAnthropicServer() as fake:  # the real default minimum: 1024 tokens
        for _ in range(2):
            small = usage(fake, request(turn1()))
            assert small["cache_creation_input_tokens"] == small["cache_read_input_tokens"] == 0
        big = request([{"role": "user", "content": [text("lorem ipsum " * 400, cache=CC)]}])
        assert usage(fake, big)["cache_creation_input_tokens"] >= 1024
        assert usage(fake, big)["cache_read_input_tokens"] >= 1024


def test_the_cache_is_per_credential(fake: FakeAnthropicServer) -> None:
    usage(fake, request(turn1()))
    other = usage(fake, request(turn1()), key="sk-ant-someone-else")
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0
    # The same secret as a bearer token is the same credential.
    assert usage(fake, request(turn1()), bearer=True)["cache_read_input_tokens"] > 0


def test_the_cache_is_per_model(fake: FakeAnthropicServer) -> None:
    usage(fake, request(turn1()))
    other = usage(fake, request(turn1(), model="claude-other-2"))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


def test_cache_control_does_not_change_the_hashes(fake: FakeAnthropicServer) -> None:
    plain = request(turn1())
    marked = request(turn1(), system=[text(SYSTEM, cache={"type": "ephemeral", "ttl": "5m"})])
    marked["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    unmarked = request(turn1(), system=[text(SYSTEM)])
    del unmarked["messages"][0]["content"][0]["cache_control"]
    assert analyze(plain).hashes == analyze(marked).hashes == analyze(unmarked).hashes
    written = usage(fake, plain)["cache_creation_input_tokens"]
    assert usage(fake, marked)["cache_read_input_tokens"] == written


def test_string_content_is_one_text_block() -> None:
    assert analyze(request([{"role": "user", "content": "hi"}])).hashes == (
        analyze(request([{"role": "user", "content": [text("hi")]}])).hashes
    )


def test_message_boundaries_are_part_of_the_prompt() -> None:
    one = analyze(request([{"role": "user", "content": [text("a"), text("b")]}]))
    two = analyze(request([{"role": "user", "content": [text("a")]}, {"role": "user", "content": [text("b")]}]))
    assert one.hashes[-1] != two.hashes[-1]


def test_a_varying_billing_header_does_not_break_the_cache(fake: FakeAnthropicServer) -> None:
    def with_header(value: str) -> dict[str, Any]:
        header = text(f"x-anthropic-billing-header: cc_version=2.0.0; cch={value};")
        return request(turn1(), system=[header, text(SYSTEM)])

    written = usage(fake, with_header("aaaa"))["cache_creation_input_tokens"]
    again = usage(fake, with_header("bbbbbbbb"))
    assert again["cache_read_input_tokens"] == written
    assert again["cache_creation_input_tokens"] == 0
    record = fake.messages_requests()[-1]
    assert record["cache"]["blocks"] == 2  # system text + user text: the header is not a block


def test_entries_expire_after_their_ttl_and_reads_refresh_them(fake: FakeAnthropicServer, clock: Clock) -> None:
    payload = request(turn1())
    written = usage(fake, payload)["cache_creation_input_tokens"]
    clock.now += 299
    assert usage(fake, payload)["cache_read_input_tokens"] == written  # refreshed: 300 s from now
    clock.now += 299
    assert usage(fake, payload)["cache_read_input_tokens"] == written
    clock.now += 300
    expired = usage(fake, payload)
    assert expired["cache_read_input_tokens"] == 0 and expired["cache_creation_input_tokens"] == written


def test_one_hour_ttl(fake: FakeAnthropicServer, clock: Clock) -> None:
    payload = request(turn1())
    payload["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    usage(fake, payload)
    clock.now += 3000
    assert usage(fake, payload)["cache_read_input_tokens"] > 0
    clock.now += 3601
    assert usage(fake, payload)["cache_read_input_tokens"] == 0


def test_more_than_four_breakpoints_is_a_400(fake: FakeAnthropicServer) -> None:
    payload = numbered(6, breakpoint_at=5)
    for block in payload["messages"][0]["content"]:
        block["cache_control"] = CC
    resp = post(fake, payload)
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 6.",
    }
    bad_ttl = request(turn1())
    bad_ttl["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "2h"}
    assert post(fake, bad_ttl).status_code == 400


def test_tool_definitions_are_cacheable_blocks(fake: FakeAnthropicServer) -> None:
    tools = [
        {"name": f"tool_{i}", "description": "does a thing " * 20, "input_schema": {"type": "object"}} for i in range(3)
    ]
    tools[-1]["cache_control"] = CC
    payload = request([{"role": "user", "content": "hi"}], tools=tools)
    written = usage(fake, payload)["cache_creation_input_tokens"]
    assert written == sum(chars(t) for t in tools) // 4
    assert usage(fake, payload)["cache_read_input_tokens"] == written


def test_disabled_cache_reports_everything_as_input() -> None:
    with FakeAnthropicServer(cache=False, cache_min_tokens=50) as fake:
        for _ in range(2):
            payload = request(turn1())
            got = post(fake, payload).json()["usage"]
            assert got["cache_creation_input_tokens"] == got["cache_read_input_tokens"] == 0
            assert got["input_tokens"] == estimate_input_tokens(payload)
        assert fake.messages_requests()[-1]["cache"] is None
        assert fake.clear_cache() == 0


def test_streaming_usage_carries_the_cache_fields(fake: FakeAnthropicServer) -> None:
    def stream_usage() -> tuple[dict[str, int], dict[str, int]]:
        events: dict[str, dict[str, Any]] = {}
        with httpx.stream(
            "POST",
            fake.base_url + "/v1/messages",
            json={**request(turn1()), "stream": True},
            headers={"x-api-key": KEY},
            timeout=10,
        ) as resp:
            name = ""
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    events[name] = json.loads(line[len("data: ") :])
        return events["message_start"]["message"]["usage"], events["message_delta"]["usage"]

    start, delta = stream_usage()
    assert start["cache_creation_input_tokens"] == delta["cache_creation_input_tokens"] > 0
    assert start["cache_read_input_tokens"] == delta["cache_read_input_tokens"] == 0
    start, delta = stream_usage()
    assert start["cache_read_input_tokens"] == delta["cache_read_input_tokens"] > 0
    assert start["cache_creation_input_tokens"] == delta["cache_creation_input_tokens"] == 0
    assert start["input_tokens"] == delta["input_tokens"] > 0


def test_clear_cache_and_the_control_endpoint(fake: FakeAnthropicServer) -> None:
    payload = request(turn1())
    usage(fake, payload)
    assert fake.clear_cache() == 1
    assert usage(fake, payload)["cache_read_input_tokens"] == 0
    resp = httpx.delete(fake.base_url + "/_fake/cache", timeout=10)
    assert resp.json() == {"ok": True, "cleared": 1}
    assert usage(fake, payload)["cache_read_input_tokens"] == 0


def test_each_request_record_has_the_cache_figures(fake: FakeAnthropicServer) -> None:
    payload = request(turn1())
    first = usage(fake, payload)
    usage(fake, payload)
    records = fake.messages_requests()
    assert records[0]["cache"] == {
        "read": 0,
        "creation": first["cache_creation_input_tokens"],
        "input": first["input_tokens"],
        "breakpoints": 1,
        "blocks": 2,
    }
    assert records[1]["cache"]["read"] == first["cache_creation_input_tokens"]
    # A request rejected before the reply starts touches nothing.
    assert post(fake, payload, key="").status_code == 401
    assert fake.requests()[-1]["cache"] is None


def test_scenario_usage_still_overrides_the_simulation(fake: FakeAnthropicServer) -> None:
    payload = request([{"role": "user", "content": [text(directive(usage={"cache_read_input_tokens": 7}), cache=CC)]}])
    got = post(fake, payload).json()["usage"]
    assert got["cache_read_input_tokens"] == 7
    assert fake.messages_requests()[-1]["cache"]["read"] == 0


def test_a_failed_reply_writes_nothing(fake: FakeAnthropicServer) -> None:
    payload = request(turn1())
    payload["messages"][0]["content"].append(text(directive(error={"status": 529})))
    payload["messages"][0]["content"][-1]["cache_control"] = CC
    assert post(fake, payload).status_code == 529
    assert fake.clear_cache() == 0


def test_cli_flags() -> None:
    args = _parse_args(["--no-cache", "--cache-min-tokens", "5"])
    assert args.cache is False and args.cache_min_tokens == 5
    args = _parse_args([])
    assert args.cache is True and args.cache_min_tokens == 1024
