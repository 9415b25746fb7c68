"""The generated config/litellm.yaml makes per-key limits hold across gateways that share a Redis.

Two real ``litellm`` proxies run the generated configuration unchanged, with one key store and
the fake Anthropic API; a real ``redis-server`` (started here, with a password, on a free port)
is shared through the environment contract ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``
that the gateway role and the compose file set. Requests alternate between the two proxies:

- with Redis, a key with ``rpm`` N gets N answers in total, then 429 from either proxy;
- without those variables (the same file: no Redis), each proxy counts alone and lets N each.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litellm_claude_code.keys import main as keys_main
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import MASTER_KEY, Proxy, free_port, start_proxy, stop_proxy
from tests.support.template import RenderFn

RPM = 3
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.fixture(scope="module")
def generated_config(render_project: RenderFn) -> Path:
    return render_project({}, name="shared-limits") / "config" / "litellm.yaml"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.password = "redis-test-" + secrets.token_urlsafe(16)
        self.workdir = workdir
        # The password goes in through a config file (0600), not the command line.
        conf = workdir / "redis.conf"
        conf.write_text(
            f'bind 127.0.0.1\nport {self.port}\nprotected-mode yes\nrequirepass "{self.password}"\n'
            f'save ""\nappendonly no\ndir {workdir}\nlogfile "{workdir / "redis.log"}"\n'
        )
        conf.chmod(0o600)
        self.process = subprocess.Popen(
            ["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while self.cli("PING") != "PONG":
            assert self.process.poll() is None and time.monotonic() < deadline, (workdir / "redis.log").read_text()
            time.sleep(0.1)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "REDISCLI_AUTH": self.password},
            timeout=10,
            check=False,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def issue(store: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert keys_main(["add", "--name", name, "--rpm", str(RPM), "--store", str(store)]) == 0
    return capsys.readouterr().out.strip()


def two_proxies(config: Path, workdir: Path, fake: FakeAnthropicServer, env: dict[str, str]) -> list[Proxy]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda i: start_proxy(config, workdir / f"proxy-{i}", fake, env), range(2)))


def alternate(proxies: list[Proxy], key: str, count: int) -> list[tuple[int, int, str | None]]:
    """(proxy index, status, Retry-After) of ``count`` requests sent to the proxies in turn."""
    answers = []
    for i in range(count):
        response = httpx.post(
            proxies[i % 2].base_url + "/v1/chat/completions",
            json={"model": "sonnet", "messages": [{"role": "user", "content": f"shared {i}"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        answers.append((i % 2, response.status_code, response.headers.get("retry-after")))
    return answers


def test_two_gateways_sharing_redis_allow_a_key_its_rpm_in_total(
    generated_config: Path,
    fake: FakeAnthropicServer,
    redis: Redis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "keys.json"
    shared_key = issue(store, "shared", capsys)
    alone_key = issue(store, "alone", capsys)
    base = {"LITELLM_CLAUDE_CODE_KEYS_FILE": str(store), "LITELLM_CLAUDE_CODE_WARM_MAX": "1"}
    with_redis = {**base, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port), "REDIS_PASSWORD": redis.password}

    proxies = two_proxies(generated_config, tmp_path / "redis", fake, with_redis)
    try:
        answers = alternate(proxies, shared_key, RPM + 3)
        # The password stays out of the proxies' logs.
        assert not any(redis.password in p.log_text() for p in proxies), "the Redis password is in a proxy's log"
    finally:
        for proxy in proxies:
            stop_proxy(proxy)
    assert [status for _, status, _ in answers] == [200] * RPM + [429] * 3, answers
    assert {i for i, status, _ in answers if status == 429} == {0, 1}, "both proxies must refuse the key"
    assert all(int(after or 0) > 0 for _, status, after in answers if status == 429), answers
    counters = redis.cli("--scan", "--pattern", "*")
    assert any(line.startswith("{api_key:") for line in counters.splitlines()), counters
    leaked = shared_key in counters or MASTER_KEY in counters  # a bool: a failure cannot print a key
    assert not leaked, "a key is in Redis"

    # The control: the same file without the Redis variables counts per proxy (and starts at all).
    proxies = two_proxies(generated_config, tmp_path / "alone", fake, base)
    try:
        answers = alternate(proxies, alone_key, 2 * RPM + 2)
    finally:
        for proxy in proxies:
            stop_proxy(proxy)
    assert [status for _, status, _ in answers] == [200] * (2 * RPM) + [429] * 2, answers
