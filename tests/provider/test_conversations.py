"""Conversations: Claude gets the client's real turns, and a follow-up turn costs only itself.

Every test drives the real provider (``litellm.acompletion``, or the real proxy with the
``openai`` client), the real SDK and the bundled CLI against the fake upstream, and asserts on
what the upstream received (each message's role and content), which process sent it (the CLI
session named in the request's metadata) and the provider's log line for the request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.proxy_http import log_fields
from tests.support.stack import MASTER_KEY, Proxy, async_wait_until, make_provider, shutdown_provider
from tests.support.upstream import dialogue, served_by, texts

pytestmark = pytest.mark.integration

_NAMES = itertools.count(1)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
SETTLE = 30.0


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


class Chat:
    """One provider for one test, and a client that keeps its conversations like a chat UI does."""

    def __init__(self, provider: Any, name: str) -> None:
        self.provider = provider
        self.name = name

    @property
    def pool(self) -> Any:
        return self.provider.engine().pool

    async def send(self, messages: list[dict[str, Any]], *, stream: bool = False, **params: Any) -> str:
        params.setdefault("model", f"{self.name}/sonnet")
        if stream:
            response = await litellm.acompletion(messages=messages, stream=True, timeout=120, **params)
            return "".join([chunk.choices[0].delta.content or "" async for chunk in response])
        response = await litellm.acompletion(messages=messages, timeout=120, **params)
        return str(response.choices[0].message.content)

    async def converse(self, first: list[dict[str, Any]], follow_ups: list[str], **params: Any) -> list[dict[str, Any]]:
        """Send ``first``, then each follow-up with the whole history, as a chat UI does; the history."""
        messages = list(first)
        for index, question in enumerate([None, *follow_ups]):
            if question is not None:
                messages.append({"role": "user", "content": question})
            answer = await self.send(messages, stream=index % 2 == 1, **params)
            messages.append({"role": "assistant", "content": answer})
        return messages


@pytest.fixture
async def make_chat(tmp_path: Path, fake: FakeAnthropicServer) -> AsyncIterator[Any]:
    made: list[Chat] = []

    def factory(**overrides: Any) -> Chat:
        values: dict[str, Any] = {"max_concurrency": 3, "warm_max": 2, "queue_timeout": 60.0}
        values.update(overrides)
        name = f"cc-conv-{next(_NAMES)}"
        chat = Chat(make_provider(tmp_path / name, name, **values), name)
        made.append(chat)
        return chat

    try:
        yield factory
    finally:
        for chat in made:
            await shutdown_provider(chat.provider)


@pytest.fixture
def request_lines(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The provider's per-request log lines, as they are written."""
    logger = logging.getLogger("litellm_claude_code")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("claude_code_request "):
                lines.append(message)

    handler = Collect()
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def field(line: str, name: str) -> str:
    return next(part.split("=", 1)[1] for part in line.split() if part.startswith(name + "="))


def requests_with(fake: FakeAnthropicServer, marker: str) -> list[dict[str, Any]]:
    return [r for r in fake.messages_requests() if any(marker in t for _, t in texts(r))]


def last_request_with(fake: FakeAnthropicServer, marker: str) -> dict[str, Any]:
    found = [r for r in fake.messages_requests() if texts(r) and marker in texts(r)[-1][1]]
    assert found, f"no upstream request ended with a turn carrying {marker!r}"
    return found[-1]


# --------------------------------------------------------------------------- real turns


@pytest.mark.parametrize("turns", [2, 3, 10])
async def test_every_turn_reaches_claude_as_a_turn_of_its_own(
    make_chat: Any, fake: FakeAnthropicServer, turns: int
) -> None:
    chat = make_chat()
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    first = [
        {"role": "system", "content": f"System of the {turns}-turn test."},
        {"role": "user", "content": [text(f"T{turns} question 0 with a picture"), image]},
    ]
    follow_ups = [f"T{turns} question {i} " + directive(text=f"T{turns} answer {i}") for i in range(1, turns)]
    history = await chat.converse(first, follow_ups)

    last = last_request_with(fake, f"T{turns} question {turns - 1}")
    expected: list[tuple[str, list[dict[str, Any]]]] = [
        (
            "user",
            [
                text(f"T{turns} question 0 with a picture"),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        ),
    ]
    for message in history[2:-1]:
        expected.append((message["role"], [text(message["content"])]))
    assert dialogue(last) == expected
    assert last["system_text"].endswith(f"System of the {turns}-turn test.")
    # Nothing of the client's is quoted inside another turn.
    for role, content in texts(last):
        assert content.count("question") == (1 if role == "user" else 0), (role, content)


async def test_a_follow_up_is_written_to_the_process_that_answered(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat()
    await chat.converse([{"role": "user", "content": "AFF question 0"}], [f"AFF question {i}" for i in range(1, 5)])
    sessions = {served_by(r) for r in requests_with(fake, "AFF question 0")}
    assert len(sessions) == 1, "one process should have served the whole conversation"
    kinds = [field(line, "conversation") for line in request_lines]
    assert kinds == ["new", "continued", "continued", "continued", "continued"]
    assert [field(line, "warm") for line in request_lines][1:] == ["true"] * 4


async def test_as_many_chats_as_warm_processes_each_keep_their_own(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    """A client's first contact without a system prompt, then four chats with one, interleaved
    turn by turn as a shared gateway sees them, on WARM_MAX=4: the chats settle in their own
    processes (the process left from the first contact is cut, not a chat's), so from the third
    turn on every follow-up is continued in the process that answered the turn before. Before,
    that process was kept back for requests without a system prompt and each new chat cut the chat
    that would speak next: every follow-up was rebuilt."""
    # No floor: WARM_MAX's four idle places all go to chats (a floor takes one of them).
    chat = make_chat(warm_max=4, max_concurrency=6, warm_floor=0)
    for index in range(2):
        await chat.send([{"role": "user", "content": f"FIRST contact {index}"}])
    histories = {tag: [{"role": "system", "content": f"System of chat {tag}."}] for tag in ("A", "B", "C", "D")}
    kinds: dict[str, list[str]] = {tag: [] for tag in histories}
    for turn in range(3):
        for tag, messages in histories.items():
            messages.append({"role": "user", "content": f"CHAT {tag} question {turn}"})
            seen = len(request_lines)
            messages.append({"role": "assistant", "content": await chat.send(messages, stream=turn % 2 == 1)})
            (line,) = request_lines[seen:]
            kinds[tag].append(field(line, "conversation"))
    assert all(seen[0] == "new" and seen[2] == "continued" for seen in kinds.values()), kinds
    assert sum(seen[1] != "continued" for seen in kinds.values()) <= 1, kinds
    for tag in histories:
        (last,) = requests_with(fake, f"CHAT {tag} question 2")
        assert [role for role, _ in texts(last)] == ["user", "assistant"] * 2 + ["user"], texts(last)


async def test_odd_but_real_histories_work(make_chat: Any, fake: FakeAnthropicServer) -> None:
    chat = make_chat()
    await chat.send(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "assistant", "content": "ODD Hello! How can I help?"},
            {"role": "user", "content": "ODD first part"},
            {"role": "user", "content": "ODD second part"},
            {"role": "assistant", "content": "ODD reply"},
            {"role": "developer", "content": "ODD answer in French from now on."},
            {"role": "user", "content": "ODD last"},
        ]
    )
    request = last_request_with(fake, "ODD last")
    assert dialogue(request) == [
        ("assistant", [text("ODD Hello! How can I help?")]),
        ("user", [text("ODD first part"), text("ODD second part")]),
        ("assistant", [text("ODD reply")]),
        ("user", [text("ODD last")]),
    ]
    assert request["system_text"].endswith("Be brief.\n\nODD answer in French from now on.")


# --------------------------------------------------------------------------- affinity: hit and miss


async def test_an_edited_history_is_rebuilt_never_served_from_the_old_one(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat()
    history = await chat.converse([{"role": "user", "content": "EDIT secret original 0"}], ["EDIT question 1"])
    edited = [{"role": "user", "content": "EDIT changed 0"}, *history[1:], {"role": "user", "content": "EDIT q2"}]
    await chat.send(edited)
    request = last_request_with(fake, "EDIT q2")
    assert texts(request)[0] == ("user", "EDIT changed 0")
    assert "secret original" not in str(request["body"])
    assert field(request_lines[-1], "conversation") == "rebuilt"
    assert field(request_lines[-1], "cold_reason") == "-"  # warm: cut back to nothing, then written as real turns


async def test_regenerating_the_last_answer_cuts_back_in_the_same_process(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat()
    history = await chat.converse([{"role": "user", "content": "REGEN q0"}], ["REGEN q1"])
    await chat.send(history[:-1])  # the same history again, without the answer: "regenerate"
    first, again = requests_with(fake, "REGEN q1")[0], requests_with(fake, "REGEN q1")[-1]
    assert served_by(first) == served_by(again)
    assert dialogue(again) == dialogue(first)
    assert field(request_lines[-1], "conversation") == "branched"


async def test_affinity_never_crosses_litellm_keys(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat()
    alice = {"user_api_key_hash": "hash-of-alice-key"}
    history = await chat.converse([{"role": "user", "content": "KEYS q0"}], [], metadata=alice)
    await chat.send([*history, {"role": "user", "content": "KEYS q1 by bob"}], metadata={"user_api_key_hash": "bob"})
    alice_request, bob_request = requests_with(fake, "KEYS q0")[0], last_request_with(fake, "KEYS q1 by bob")
    assert served_by(alice_request) != served_by(bob_request)
    assert field(request_lines[-1], "conversation") == "rebuilt"


async def test_affinity_never_crosses_credentials(
    make_chat: Any, fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = make_chat()
    history = await chat.converse([{"role": "user", "content": "CRED q0"}], [])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-another-credential-0009")
    await chat.send([*history, {"role": "user", "content": "CRED q1"}])
    before, after = requests_with(fake, "CRED q0")[0], last_request_with(fake, "CRED q1")
    assert after["auth"] == "sk-ant-another-credential-0009"
    assert served_by(before) != served_by(after)
    assert texts(after)[:2] == [*texts(before)[:1], ("assistant", history[1]["content"])]


async def test_a_process_killed_between_turns_is_rebuilt_as_real_turns(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat(warm_max=1, max_concurrency=2)
    history = await chat.converse([{"role": "user", "content": "KILL q0"}], ["KILL q1"])
    (held,) = [p for p in chat.pool.idle_processes() if p.held]
    os.kill(held.pid, signal.SIGKILL)
    await chat.send([*history, {"role": "user", "content": "KILL q2"}])
    request = last_request_with(fake, "KILL q2")
    assert [role for role, _ in texts(request)] == ["user", "assistant", "user", "assistant", "user"]
    assert field(request_lines[-1], "conversation") == "rebuilt"


async def test_an_answer_cut_by_max_tokens_keeps_the_process_and_the_earlier_turns(
    make_chat: Any, fake: FakeAnthropicServer, request_lines: list[str]
) -> None:
    chat = make_chat(warm_max=1, max_concurrency=2)
    history = await chat.converse([{"role": "user", "content": "CUT q0"}], [])
    long_answer = directive(text="CUTWORD " * 30)
    cut = await chat.send([*history, {"role": "user", "content": "CUT q1 " + long_answer}], max_tokens=5)
    assert field(request_lines[-1], "finish_reason") == "length"
    assert await async_wait_until(lambda: chat.pool.idle == 1, SETTLE)
    (process,) = chat.pool.idle_processes()
    assert len(process.held) == 2, "the cut turn should be gone, the earlier one kept"
    await chat.send([*history, {"role": "user", "content": "CUT q1 again"}])
    again = last_request_with(fake, "CUT q1 again")
    assert cut.startswith("CUTWORD")
    assert "CUTWORD" not in str(again["body"])  # the cut answer, and the CLI's own "resume" turns, are gone
    assert "Output token limit" not in str(again["body"])
    assert [role for role, _ in texts(again)] == ["user", "assistant", "user"]
    assert field(request_lines[-1], "conversation") == "continued"


# --------------------------------------------------------------------------- zero leakage


async def test_concurrent_conversations_never_see_each_other(make_chat: Any, fake: FakeAnthropicServer) -> None:
    chat = make_chat(max_concurrency=3, warm_max=3)

    async def one(name: str) -> None:
        await chat.converse(
            [{"role": "user", "content": f"LEAK-{name} secret {name}-0"}],
            [f"LEAK-{name} secret {name}-{i}" for i in range(1, 4)],
        )

    names = [f"C{i}" for i in range(5)]
    await asyncio.gather(*(one(name) for name in names))
    for name in names:
        for request in requests_with(fake, f"LEAK-{name} "):
            body = str(request["body"])
            for other in names:
                if other != name:
                    assert f"LEAK-{other} " not in body, f"{other}'s turns reached {name}'s upstream request"


# --------------------------------------------------------------------------- through the proxy


def test_a_conversation_through_the_proxy_with_the_openai_client(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    client = proxy.client()
    messages: list[dict[str, Any]] = [{"role": "system", "content": "PROXYCONV system"}]
    call_ids = []
    for index in range(4):
        messages.append({"role": "user", "content": f"PROXYCONV q{index} " + directive(text=f"PROXYCONV a{index}")})
        raw = client.chat.completions.with_raw_response.create(
            model="claude-code/sonnet", messages=messages, stream=bool(index % 2)
        )
        call_ids.append(raw.headers["x-litellm-call-id"])
        if index % 2:
            answer = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
        else:
            answer = raw.parse().choices[0].message.content
        messages.append({"role": "assistant", "content": answer})
    last = last_request_with(fake, "PROXYCONV q3")
    assert [role for role, _ in texts(last)] == ["user", "assistant"] * 3 + ["user"]
    assert [t for role, t in texts(last) if role == "assistant"] == ["PROXYCONV a0", "PROXYCONV a1", "PROXYCONV a2"]
    assert len({served_by(r) for r in requests_with(fake, "PROXYCONV q0")}) == 1
    # This test's own requests' log lines (the session's proxy log also holds earlier modules'):
    # a new chat, then each follow-up continued in the process holding it.
    kinds = [log_fields(proxy, call_id)["conversation"] for call_id in call_ids]
    assert kinds == ["new", "continued", "continued", "continued"], kinds


def test_a_tool_message_without_its_call_is_a_400_naming_the_message(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": "claude-code/sonnet",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "tool", "tool_call_id": "call_x", "content": "orphan result"},
            ],
        },
        timeout=60,
    )
    assert response.status_code == 400
    assert "messages[1]" in response.text and "call_x" in response.text
    assert "Traceback" not in response.text
    assert not fake.messages_requests()


def test_from_the_second_turn_on_the_prompt_is_read_from_the_cache(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    """The fake simulates Anthropic's prompt cache (breakpoints, 20-block lookback, 1,024-token
    minimum); what it read back reaches the client as ``prompt_tokens_details.cached_tokens``."""
    client = proxy.client()
    messages: list[dict[str, Any]] = [{"role": "system", "content": "CACHECONV system"}]
    prompts: list[int] = []
    for index in range(5):
        messages.append({"role": "user", "content": f"CACHECONV q{index} " + "words of the turn " * 300})
        if index % 2:
            stream = client.chat.completions.create(
                model="claude-code/sonnet", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            chunks = list(stream)
            answer = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
            usage = next(chunk.usage for chunk in reversed(chunks) if chunk.usage)
        else:
            response = client.chat.completions.create(model="claude-code/sonnet", messages=messages)
            answer, usage = str(response.choices[0].message.content), response.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        upstream = last_request_with(fake, f"CACHECONV q{index}")["cache"]
        # What the client is told is what the upstream counted: cached tokens are part of the prompt.
        assert usage.prompt_tokens_details.cached_tokens == upstream["read"]
        assert usage.prompt_tokens == upstream["read"] + upstream["creation"] + upstream["input"]
        if index == 0:
            assert upstream["read"] == 0 and upstream["creation"] > 0, (upstream, usage)
        else:
            # Everything the previous turn sent is read back; only the new turns are not.
            assert upstream["read"] >= 0.95 * prompts[-1], (index, upstream, prompts)
        prompts.append(usage.prompt_tokens)
        messages.append({"role": "assistant", "content": answer})


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
async def test_every_model_alias_takes_a_system_prompt_and_a_new_one_mid_conversation(
    make_chat: Any, fake: FakeAnthropicServer, warm: bool
) -> None:
    """A process started for ``haiku`` could not be given a system prompt (the CLI does not match
    that alias in ``only_if_model_is_current``); a chat UI changes its system prompt every turn."""
    chat = make_chat(warm_enabled=warm)
    for model in ("haiku", "opus", "sonnet"):
        tag = f"SYSALIAS-{model}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": f"{tag} at 10:00"},
            {"role": "user", "content": f"{tag} q0"},
        ]
        answer = await chat.send(messages, model=f"{chat.name}/{model}")
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": f"{tag} q1"}]
        messages[0] = {"role": "system", "content": f"{tag} at 10:01"}
        await chat.send(messages, model=f"{chat.name}/{model}")
        first, last = last_request_with(fake, f"{tag} q0"), last_request_with(fake, f"{tag} q1")
        assert first["system_text"].endswith(f"{tag} at 10:00")
        assert last["system_text"].endswith(f"{tag} at 10:01")
        assert model in last["model"]
        assert [role for role, _ in texts(last)] == ["user", "assistant", "user"]
