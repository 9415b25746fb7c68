"""A client's schema cannot stall the gateway: the catastrophic pattern through the real stack.

One tenant sends a ``response_format`` (or a strict tool) whose pattern backtracks
exponentially in Python's ``re``, and the fake upstream answers with exactly the string that
sets it off (40 ``a`` and ``!``). Meanwhile another tenant streams and ``/health/liveliness``
is polled. Checked against the schema on the proxy's event loop with ``re``, that answer
would freeze the loop for days, and every request of the proxy with it; bounded, the attacker
gets a clear 502 and nobody else notices. The figures are printed (``pytest -s``): the worst
liveliness latency and the other tenant's time to first token, without and during the attack.

Its own proxy (keys per person, so the two tenants are two keys), so that a failure here
cannot leave the session's proxy frozen for the tests after it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from litellm_claude_code.keys import KeyRecord, hash_key, new_key, write_records
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.proxy_http import assert_no_traceback, error_message
from tests.support.stack import EXAMPLES, Proxy, is_claude, process_environ, start_proxy, stop_proxy, wait_until

pytestmark = pytest.mark.integration

# Room for the bystander's chat, the attacker's primed chat and the floor, so that none of the three
# evicts another and no CLI starts for the bystander during the measurement.
WARM_MAX = 3
EVIL = "a" * 40 + "!"
# Bounds on what the attack may add. A check runs at most 1 s (_structured.CHECK_SECONDS), in a thread;
# the rest is room for two cores shared with other test runs and with the attacker's CLI, which
# checks StructuredOutput against the schema itself (JavaScript's regex, for seconds, in its own
# process). Measured on the 2-core machine with other test runs beside: liveliness at worst 0.07 to
# 0.51 s during the attack (up to 0.40 s without it), the bystander's first token at most 0.5 s later
# than without. Frozen, the loop answers nothing until the client's timeout (POLL_TIMEOUT).
# In CI, with the fleet suite beside on the same 2 cores, the attacker CLI's own regex work took
# the bystander's first token 1.2 to 1.9 s past its calm figure: CPU shared, not the loop held
# (liveliness stayed under its bound). TTFT_EXTRA leaves room for that and stays below a stall,
# which shows as no first token within BYSTANDER_TIMEOUT.
LIVELINESS_BOUND = 1.0
TTFT_EXTRA = 2.5
# How long the bystander waits for a first token. In CI its calm first tokens took up to 3.7 s;
# a held loop would give none until the attacker's check ended (days, unbounded).
BYSTANDER_TIMEOUT = 15.0
POLL_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {"attacker": new_key(), "bystander": new_key()}


@pytest.fixture(scope="module")
def tenant_proxy(
    upstream: FakeAnthropicServer, keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    store = tmp_path_factory.mktemp("stall-keys") / "keys.json"
    write_records(store, [KeyRecord(name=name, sha256=hash_key(key)) for name, key in keys.items()])
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        tmp_path_factory.mktemp("stall-proxy"),
        upstream,
        {
            "LITELLM_CLAUDE_CODE_KEYS_FILE": str(store),
            "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "4",
            "LITELLM_CLAUDE_CODE_WARM_MAX": str(WARM_MAX),
        },
    )
    yield proxy
    stop_proxy(proxy)


class Poller:
    """``GET /health/liveliness`` in a loop on its own thread; the latency of each answer."""

    def __init__(self, proxy: Proxy) -> None:
        self.url = proxy.base_url + "/health/liveliness"
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=POLL_TIMEOUT) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get(self.url).status_code
                    if status != 200:
                        self.failures.append(f"HTTP {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(0.02)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(POLL_TIMEOUT + 5)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))


class Chat:
    """The bystander's one conversation, continued by each stream (10 tokens, 0.03 s apart).

    Continuing one chat keeps the bystander on its warm process, so no CLI starts for it while
    the two windows are measured: what the attack adds is the attack's, not a start-up's.
    """

    def __init__(self, proxy: Proxy, key: str) -> None:
        self.proxy = proxy
        self.key = key
        self.messages: list[dict[str, str]] = []

    def first_token(self, marker: str, timeout: float = BYSTANDER_TIMEOUT) -> float:
        """Seconds from sending the next turn to its first content; the answer joins the chat."""
        turn = {"role": "user", "content": f"{marker} {directive(tokens=10, token_delay=0.03)}"}
        body = {"model": "sonnet", "messages": [*self.messages, turn], "stream": True}
        pieces: list[str] = []
        started = time.monotonic()
        first = None
        with httpx.stream(
            "POST",
            self.proxy.base_url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=timeout,
        ) as response:
            assert response.status_code == 200, response.read().decode()
            for line in response.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                choices = json.loads(line.removeprefix("data:")).get("choices") or [{}]
                if content := (choices[0].get("delta") or {}).get("content"):
                    first = time.monotonic() - started if first is None else first
                    pieces.append(content)
        assert first is not None, "the bystander's stream had no content"
        self.messages += [turn, {"role": "assistant", "content": "".join(pieces)}]
        return first


def attack_body(kind: str, pattern: str, marker: str, value: str = EVIL) -> dict[str, Any]:
    """The attacker's request; the upstream answers it (after 0.3 s) with ``value`` for the pattern."""
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}, "required": ["s"]}
    name = "StructuredOutput" if kind == "response_format" else "f"
    prompt = f"{marker} {directive(text='', delay=0.3, tool_use={'name': name, 'input': {'s': value}})}"
    body: dict[str, Any] = {"model": "sonnet", "messages": [{"role": "user", "content": prompt}]}
    if kind == "response_format":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    else:
        body["tools"] = [{"type": "function", "function": {"name": "f", "strict": True, "parameters": schema}}]
    return body


def orphans(proxy: Proxy) -> list[int]:
    """CLI processes of this proxy (their HOME is under its state directory) no longer below it."""
    below = {p.pid for p in proxy.claude_processes()}
    found = []
    for proc in psutil.process_iter():
        try:
            home = process_environ(proc.pid).get("HOME", "") if is_claude(proc) else ""
            if home.startswith(str(proxy.state_dir)) and proc.pid not in below:
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def bystander_window(chat: Chat, tag: str, until: threading.Event, at_least: int) -> list[float]:
    """The bystander's turns one after another, until ``until`` is set and ``at_least`` ran."""
    ttfts: list[float] = []
    while not until.is_set() or len(ttfts) < at_least:
        try:
            ttfts.append(chat.first_token(f"bystander-{tag}-{len(ttfts)}"))
        except httpx.HTTPError:  # no answer within BYSTANDER_TIMEOUT: as late as can be, and no use waiting more
            ttfts.append(float("inf"))
            break
    return ttfts


@pytest.mark.parametrize(
    ("kind", "pattern", "says"),
    [
        ("response_format", "^(a+)+$", "does not match the response_format schema"),
        ("response_format", "^(a|a)+$", "ran past the 1 s a check may take on a 41-character string"),
        ("strict_tool", "^(a+)+$", "do not match its strict schema"),
        ("strict_tool", "^(a|a)+$", "ran past the 1 s a check may take on a 41-character string"),
    ],
    ids=["format-nested", "format-alternation", "strict-nested", "strict-alternation"],
)
def test_a_catastrophic_pattern_does_not_stall_the_other_tenant(
    tenant_proxy: Proxy, fake: FakeAnthropicServer, keys: dict[str, str], kind: str, pattern: str, says: str
) -> None:
    proxy = tenant_proxy
    tag = f"{kind}-{pattern.count('|')}"
    chat = Chat(proxy, keys["bystander"])
    for n in range(2):  # the bystander's chat is on its warm process
        chat.first_token(f"bystander-warm-{tag}-{n}", timeout=60)
    # The attacker's process for its schema is started by a harmless request first, so that its CLI
    # starting (a CPU-second) does not load the machine during the measurement.
    primer = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json=attack_body(kind, pattern, f"primer-{tag}", value="aaaa"),
        headers={"Authorization": f"Bearer {keys['attacker']}"},
        timeout=60,
    )
    assert primer.status_code == 200, primer.text

    # Without the attack: the same streams and polls, for comparison.
    no_attack = threading.Event()
    no_attack.set()
    with Poller(proxy) as quiet:
        calm = bystander_window(chat, f"calm-{tag}", no_attack, at_least=4)

    # During the attack: the bystander streams and the poller polls until the attacker has its answer.
    answer: dict[str, Any] = {}

    def attack() -> None:
        started = time.monotonic()
        try:
            answer["response"] = httpx.post(
                proxy.base_url + "/v1/chat/completions",
                json=attack_body(kind, pattern, f"attacker-{tag}"),
                headers={"Authorization": f"Bearer {keys['attacker']}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            answer["error"] = repr(exc)
        answer["seconds"] = time.monotonic() - started
        finished.set()

    finished = threading.Event()
    with Poller(proxy) as loud:
        threading.Thread(target=attack, daemon=True).start()
        # Streams run back to back from before the attacker's answer is checked until after it.
        during = bystander_window(chat, f"during-{tag}", finished, at_least=3)
        finished.wait(40)

    print(
        f"\n[{kind} {pattern}] liveliness worst: {quiet.worst * 1000:.0f} ms without, {loud.worst * 1000:.0f} ms "
        f"during ({len(loud.latencies)} polls); bystander time to first token: max {max(calm) * 1000:.0f} ms "
        f"without ({len(calm)} streams), max {max(during) * 1000:.0f} ms during ({len(during)} streams); "
        f"attacker answered in {answer.get('seconds', float('nan')):.2f} s"
    )
    response = answer.get("response")
    assert isinstance(response, httpx.Response), f"the attacker got no answer: {answer}"
    assert response.status_code == 502, response.text
    assert says in error_message(response), response.text
    assert_no_traceback(response.text)
    assert not loud.failures, f"liveliness failed during the attack: {loud.failures}"
    assert loud.worst <= LIVELINESS_BOUND, f"liveliness took {loud.worst:.2f} s during the attack"
    assert max(during) <= max(calm) + TTFT_EXTRA, f"the bystander's first token: {during} during, {calm} without"
    # Only idle warm processes remain under the proxy, and no CLI process of it lives on outside it.
    assert wait_until(lambda: len(proxy.claude_processes()) <= WARM_MAX, 15, interval=0.2), [
        (p.pid, p.status()) for p in proxy.claude_processes()
    ]
    assert orphans(proxy) == []
    requests = [r for r in fake.messages_requests() if f"attacker-{tag}" in json.dumps(r["messages"])]
    assert len(requests) == 1  # the answer came from the upstream once: nothing was retried
