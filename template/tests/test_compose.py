"""docker-compose.yml end to end: `make up`, a person's key streams, Prometheus scrapes, down.

The stack is the project's own compose file, brought up by `make up` with the gateway image the
session built (no second build) and pointed at the session's fake Anthropic upstream through an
override file that adds the upstream's network and the run's labels. Redis and Prometheus are
REDIS_IMAGE / PROMETHEUS_IMAGE: where no registry is reachable (LCC_BASE_IMAGE set, as in the
template's CI) both are one local image built from Debian packages on that base
(tests/images/compose-services.Dockerfile), else the compose file's defaults are pulled.

Secrets, the key store and .compose/ live in a temporary directory (the make variables
SECRETS_ENV, KEYS and COMPOSE_DIR), never in the project's own files.

Environment: LCC_COMPOSE_SERVICES_IMAGE uses that image for Redis and Prometheus.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    FAKE_ALIAS,
    FAKE_PORT,
    FAKE_TOKEN,
    LABELS,
    PORT,
    ROOT,
    RUN_ID,
    SLUG,
    TOKEN_ENV,
    FakeUpstream,
    build_image,
    http_get,
    model_aliases,
    unavailable,
)

pytestmark = pytest.mark.docker

SERVICES_DOCKERFILE = ROOT / "tests" / "images" / "compose-services.Dockerfile"
PROJECT_NAME = f"{SLUG}-compose-{RUN_ID}".replace(".", "-")
ALICE = ("--name", "alice", "--team", "platform")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compose_command() -> list[str]:
    """`docker compose` (v2) when the plugin is there, else `docker-compose` (v1), as `make up`."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    unavailable("neither `docker compose` nor `docker-compose` is installed")


@pytest.fixture(scope="session")
def services_image(docker_client: Any) -> str | None:
    """The Redis/Prometheus image: given, built from the local Debian base, or None (pull)."""
    if given := os.environ.get("LCC_COMPOSE_SERVICES_IMAGE"):
        return given
    base = os.environ.get("LCC_BASE_IMAGE")
    if not base:
        return None
    digest = hashlib.sha256(SERVICES_DOCKERFILE.read_bytes() + base.encode()).hexdigest()[:16]
    tag = f"{SLUG}-compose-services-test:{digest}"
    return build_image(
        docker_client,
        tag,
        SERVICES_DOCKERFILE.parent,
        dockerfile=SERVICES_DOCKERFILE.name,
        buildargs={"BASE_IMAGE": base},
    )


@dataclass
class Stack:
    gateway_url: str
    prometheus_url: str
    compose_dir: Path
    master_key: str
    person_key: str
    env: dict[str, str]
    make_vars: list[str]
    compose: list[str]

    def compose_run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.compose, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def containers(self) -> list[str]:
        listed = subprocess.run(
            [
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"label=com.docker.compose.project={PROJECT_NAME}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return listed.stdout.split()

    def logs(self) -> str:
        return self.compose_run("logs", "--no-color", "--tail", "60").stdout[-6000:]


def make(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:
        unavailable("make is not installed")
    return subprocess.run(
        ["make", "-s", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(predicate: Any, timeout: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what} within {timeout:.0f} s; compose logs:\n{stack.logs()}")


@pytest.fixture(scope="module")
def stack(
    gateway_image: str,
    services_image: str | None,
    docker_network: Any,
    fake_upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    compose = compose_command()
    tmp = tmp_path_factory.mktemp("compose")
    master_key = "sk-compose-" + secrets.token_urlsafe(16)
    secrets_env = tmp / "secrets.env"
    secrets_env.write_text(f"LITELLM_MASTER_KEY={master_key}\n{TOKEN_ENV}={FAKE_TOKEN}\n")
    secrets_env.chmod(0o600)
    keys = tmp / "keys" / "keys.json"
    # A person's key, issued by the project's key CLI (what `make key` runs).
    issued = subprocess.run(
        [sys.executable, "-m", "litellm_claude_code.keys", "add", "--store", str(keys), *ALICE],
        capture_output=True,
        text=True,
        check=True,
    )
    person_key = issued.stdout.strip()
    override = tmp / "compose.test.yml"
    labels = dict(LABELS)
    override.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "gateway": {
                        "environment": {"ANTHROPIC_BASE_URL": f"http://{FAKE_ALIAS}:{FAKE_PORT}"},
                        "networks": ["default", "upstream"],
                        "labels": labels,
                    },
                    "redis": {"labels": labels},
                    "prometheus": {"labels": labels},
                },
                "networks": {
                    "default": {"labels": labels},
                    "upstream": {"external": True, "name": docker_network.name},
                },
                "volumes": {"prometheus-data": {"labels": labels}},
            }
        )
    )
    gateway_port, prometheus_port = free_port(), free_port()
    # The compose file's variables: `make up` sets them from its own (the make variables below),
    # and the test's own compose commands (exec, top, port) need them too.
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT_NAME,
        "COMPOSE_FILE": os.pathsep.join([str(ROOT / "docker-compose.yml"), str(override)]),
        "PROMETHEUS_PORT": str(prometheus_port),
        "SECRETS_ENV": str(secrets_env),
        "COMPOSE_DIR": str(tmp / ".compose"),
        "KEYS_DIR": str(keys.parent),
        "GATEWAY_IMAGE": gateway_image,
        "GATEWAY_PORT": str(gateway_port),
        "SECRETS_GID": str(os.getgid()),
    }
    if services_image:
        env.update(REDIS_IMAGE=services_image, PROMETHEUS_IMAGE=services_image)
    make_vars = [
        f"SECRETS_ENV={secrets_env}",
        f"KEYS={keys}",
        f"COMPOSE_DIR={tmp / '.compose'}",
        f"IMAGE={gateway_image}",
        f"GATEWAY_PORT={gateway_port}",
        f"PYTHON={sys.executable}",
        "UP_ARGS=--no-build",
    ]
    started = time.monotonic()
    up = make(["up", *make_vars], env, timeout=300)
    result = Stack(
        f"http://127.0.0.1:{gateway_port}",
        f"http://127.0.0.1:{prometheus_port}",
        tmp / ".compose",
        master_key,
        person_key,
        env,
        make_vars,
        compose,
    )
    try:
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}\n{result.logs()}"
        wait_for(
            lambda: _status(f"{result.gateway_url}/health/readiness") == 200,
            240,
            "the compose gateway was not ready",
            result,
        )
        print(f"compose stack up and ready in {time.monotonic() - started:.0f} s")
        yield result
    finally:
        down = make(["down", *make_vars, "DOWN_ARGS=-v"], env, timeout=180)
        leftover = result.containers()
        if leftover:
            subprocess.run(["docker", "rm", "-f", "-v", *leftover], capture_output=True)
        assert down.returncode == 0, f"make down failed:\n{down.stdout}\n{down.stderr}"
        assert not leftover, f"`make down` left containers: {leftover}"


def _status(url: str, headers: dict[str, str] | None = None) -> int | None:
    try:
        return http_get(url, headers=headers, timeout=5)[0]
    except OSError:
        return None


def prometheus_query(stack: Stack, query: str) -> dict[str, Any]:
    url = f"{stack.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    status, body = http_get(url, timeout=10)
    data: dict[str, Any] = json.loads(body or b"{}")
    data["http_status"] = status
    return data


def test_compose_files_are_private_and_prometheus_holds_only_the_scrape_key(stack: Stack) -> None:
    from litellm_claude_code.keys import metrics_key

    assert stat.S_IMODE((stack.compose_dir / "metrics_key").stat().st_mode) == 0o640
    assert stat.S_IMODE((stack.compose_dir / "redis.env").stat().st_mode) == 0o600
    # The Makefile derives it with the standard library: the same key as the provider's.
    assert (stack.compose_dir / "metrics_key").read_text().strip() == metrics_key(stack.master_key)
    assert not (stack.compose_dir / "master_key").exists(), "Prometheus holds the master key"


def test_a_persons_key_streams_through_the_compose_gateway(
    stack: Stack, fake_upstream: FakeUpstream, marker: str
) -> None:
    from openai import OpenAI

    client = OpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key=stack.person_key, max_retries=0, timeout=120
    )
    alias = sorted(model_aliases())[0]
    stream = client.chat.completions.create(
        model=alias,
        messages=[{"role": "user", "content": f"compose stream {marker}"}],
        stream=True,
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices]
    pieces = [p for p in pieces if p]
    assert len(pieces) >= 3, pieces
    assert "fake reply" in "".join(pieces)
    assert fake_upstream.requests_with(marker), "the request did not reach the fake upstream"
    wrong = OpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key="sk-cc-unknown", max_retries=0, timeout=60
    )
    with pytest.raises(Exception, match="401"):
        wrong.chat.completions.create(model=alias, messages=[{"role": "user", "content": "x"}])


def test_prometheus_scraped_the_gateway(stack: Stack) -> None:
    # Traffic first (the streaming test ran before, this one must not depend on the order).
    auth = {"Authorization": f"Bearer {stack.person_key}"}
    status, _ = http_get(f"{stack.gateway_url}/v1/models", auth)
    assert status == 200

    def scraped() -> list[dict[str, Any]]:
        found = prometheus_query(
            stack, 'litellm_proxy_total_requests_metric_total{api_key_alias="alice"}'
        )
        series = found.get("data", {}).get("result", [])
        return [s for s in series if float(s["value"][1]) > 0]

    series = wait_for(scraped, 90, "Prometheus had no gateway metric with a value > 0", stack)
    assert all(s["metric"]["job"] == SLUG for s in series), series
    up = prometheus_query(stack, "up")["data"]["result"]
    assert [s["value"][1] for s in up] == ["1"], up
    capacity = prometheus_query(stack, "claude_code_max_concurrency")["data"]["result"]
    assert capacity, "claude_code_max_concurrency was not scraped"
    assert float(capacity[0]["value"][1]) > 0, capacity


def test_every_dashboard_query_is_valid_promql(stack: Stack) -> None:
    """The real Prometheus accepts every query of monitoring/grafana-dashboard.json."""
    dashboard = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())
    grafana = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20, exprs
    for expr in exprs:
        query = expr
        for var, value in grafana.items():
            query = query.replace(var, value)
        for var in ("$instance", "$key", "$alias"):
            query = query.replace(var, ".*")
        answer = prometheus_query(stack, query)
        assert answer.get("status") == "success", (expr, answer)


def test_redis_needs_its_password_and_shows_it_nowhere(stack: Stack) -> None:
    script = 'redis-cli ping; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping'
    done = stack.compose_run("exec", "-T", "redis", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "NOAUTH" in done.stdout, done.stdout
    assert "PONG" in done.stdout, done.stdout
    password = stack.compose_run("exec", "-T", "redis", "sh", "-c", 'printf %s "$REDIS_PASSWORD"')
    assert len(password.stdout) >= 32
    for service in ("redis", "gateway", "prometheus"):
        top = stack.compose_run("top", service)
        assert top.returncode == 0, top.stderr
        assert password.stdout not in top.stdout, service
        assert stack.master_key not in top.stdout, service


def test_only_loopback_ports_are_published(stack: Stack) -> None:
    for service, port in (("gateway", PORT), ("prometheus", 9090)):
        done = stack.compose_run("port", service, str(port))
        assert done.stdout.strip().startswith("127.0.0.1:"), (service, done.stdout, done.stderr)
    redis = stack.compose_run("port", "redis", "6379")
    assert not redis.stdout.strip() or redis.stdout.strip() == ":0", redis.stdout
