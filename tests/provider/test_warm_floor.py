"""Always warm: a real proxy started as the generated project starts it (the start-up hook of
``provider.env``) serves its first request warm, and so it does after a quiet period longer than
the idle timeout and the maximum age (both shortened here).

Warm or not is read from the provider's own log line for each request (``warm=``, ``cold_reason=``),
what an operator reads; the process table shows the idle gateway holds the floor and no more.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import EXAMPLES, Proxy, start_proxy, stop_proxy, wait_until

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 3.0
MAX_AGE = 8.0


@pytest.fixture(scope="module")
def floor_proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        tmp_path_factory.mktemp("floor"),
        upstream,
        {
            "LITELLM_WORKER_STARTUP_HOOKS": "litellm_claude_code.proxy_hooks:warm_up",
            "LITELLM_CLAUDE_CODE_WARM_FLOOR": "1",
            "LITELLM_CLAUDE_CODE_WARM_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
            "LITELLM_CLAUDE_CODE_WARM_WINDOW": str(IDLE_TIMEOUT),
            "LITELLM_CLAUDE_CODE_WARM_MAX_AGE": str(MAX_AGE),
        },
    )
    yield proxy
    stop_proxy(proxy)


def request_lines(proxy: Proxy) -> list[str]:
    return [line for line in proxy.log_text().splitlines() if "claude_code_request " in line]


def ask(proxy: Proxy, fake: FakeAnthropicServer, *messages: str) -> str:
    """One chat completion; the provider's log line for it."""
    before = len(request_lines(proxy))
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i, text in enumerate(messages)]
    reply = proxy.client().chat.completions.create(model="sonnet", messages=turns)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    assert wait_until(lambda: len(request_lines(proxy)) > before, 10)
    (line,) = request_lines(proxy)[before:]
    return line


def test_the_port_opens_with_the_floor_warm(floor_proxy: Proxy) -> None:
    """The start-up hook ran before uvicorn opened the port, and said the floor was warm."""
    log = floor_proxy.log_text()
    warm_up = re.search(r"claude_code_warm_up floor=1 ready=1 outcome=warm waited_ms=\d+", log)
    assert warm_up, log[-3000:]
    assert warm_up.start() < log.index("Uvicorn running on"), "the port opened before the floor was warm"


def test_the_first_request_after_start_up_is_warm(floor_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    line = ask(floor_proxy, fake, "the first question after a start")
    assert " warm=true " in line, line


def test_warm_after_a_quiet_period_longer_than_the_idle_timeout_and_the_maximum_age(
    floor_proxy: Proxy, fake: FakeAnthropicServer
) -> None:
    """Quiet for longer than both: the conversation's process idled out, the floor was replaced as
    it aged, and a new chat and the old chat's next turn are both served warm."""
    ask(floor_proxy, fake, "a chat before the quiet")
    quiet_from = time.monotonic()
    time.sleep(MAX_AGE + 2)
    assert time.monotonic() - quiet_from > max(IDLE_TIMEOUT, MAX_AGE)
    idle = floor_proxy.claude_processes()
    assert len(idle) == 1, f"the idle gateway should hold the floor alone: {[p.pid for p in idle]}"
    new_chat = ask(floor_proxy, fake, "a new chat after the quiet")
    assert " warm=true " in new_chat and " conversation=new " in new_chat, new_chat
    assert wait_until(lambda: len(floor_proxy.claude_processes()) == 2, 20), "the floor was not refilled"
    old_chat = ask(floor_proxy, fake, "a chat before the quiet", "answer", "and after it")
    assert " warm=true " in old_chat, old_chat


def test_the_floor_is_replaced_before_it_ages_out(floor_proxy: Proxy) -> None:
    """Over two maximum ages of quiet, a clean process is always alive: a replacement starts
    before the old one is stopped (sampled every 50 ms)."""
    deadline = time.monotonic() + MAX_AGE + 2
    seen: set[int] = set()
    while time.monotonic() < deadline:
        pids = {p.pid for p in floor_proxy.claude_processes()}
        assert pids, "no CLI process alive: the floor lapsed"
        seen |= pids
        time.sleep(0.05)
    assert len(seen) >= 2, "the floor was never replaced over two maximum ages"
