"""Fixtures for the end-to-end tests of this gateway.

The Docker tests build the image once per session from ./Dockerfile (tagged by a hash of
the build context, so an unchanged project reuses it), then run two containers on a private
Docker network: the fake Anthropic upstream (the same image, running
`python -m litellm_claude_code.testing.fake_anthropic`) and the gateway itself.

Environment:
  LCC_BASE_IMAGE       BASE_IMAGE build argument (default: the Dockerfile's, python:3.11-slim)
  LCC_PACKAGE_SOURCE   pypi | wheelhouse (default: wheelhouse when ./wheelhouse holds wheels,
                       else the project's answer, PACKAGE_SOURCE below)
  LCC_GATEWAY_IMAGE    use this image instead of building one
  LCC_COMPOSE_SERVICES_IMAGE  Redis and Prometheus image of tests/test_compose.py (default: built
                       from LCC_BASE_IMAGE with Debian's packages when that is set, else the
                       compose file's own images)
  LCC_TEST_RUN_ID      value of the RUN_LABEL label put on the image built, the network and
                       the containers (default: random), so that a wrapper can remove what a
                       run left behind: docker rm -f $(docker ps -aq --filter label=...)
  CI=true              a missing Docker engine fails the Docker tests instead of skipping them

Containers and the network are removed when the session ends; the image is kept (and reused
while the build context is unchanged): `docker image rm` it, or filter by RUN_LABEL.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import project  # scripts/project.py (pyproject.toml puts scripts/ on the path)
import pytest
import yaml

ROOT = project.ROOT
PROJECT = project.load()
SLUG = PROJECT.slug
PORT = PROJECT.listen_port
PROVIDER = PROJECT.provider_name
TOKEN_ENV = PROJECT.token_env
# The credential the gateway gets against the fake (a Bedrock or Vertex project: an API key).
FAKE_TOKEN_ENV = PROJECT.fake_token_env
PACKAGE_SOURCE = PROJECT.package_source
FAKE_PORT = 8787
FAKE_ALIAS = "fake-anthropic"
FAKE_TOKEN = "fake-claude-token-" + "0123456789"
BUILD_CONTEXT = (
    "Dockerfile",
    ".dockerignore",
    "requirements.txt",
    "requirements.lock",
    "config/litellm.yaml",
    "config/provider.env",
    "provider",
)
SKIP_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
RUN_LABEL = f"{SLUG}.test-run"
RUN_ID = os.environ.get("LCC_TEST_RUN_ID") or uuid.uuid4().hex[:12]
LABELS = {RUN_LABEL: RUN_ID}


def model_aliases() -> dict[str, str]:
    """alias -> Claude model, read from config/litellm.yaml (what the gateway really serves)."""
    config = yaml.safe_load((ROOT / "config" / "litellm.yaml").read_text())
    aliases: dict[str, str] = {}
    for entry in config["model_list"]:
        provider, _, model = entry["litellm_params"]["model"].partition("/")
        # Wildcard entries (claude-*: Claude's full ids, as Claude Code sends them) are no alias.
        if provider == PROVIDER and "*" not in entry["model_name"]:
            aliases[entry["model_name"]] = model
    return aliases


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """A tool a test needs is missing: a failure under CI=true, where every test must run; a
    skip that says what is missing on a workstation."""
    if in_ci():
        pytest.fail(f"required under CI=true: {message}")
    pytest.skip(message)


def live_unavailable() -> str | None:
    """Why the opt-in live test cannot run here (None: it can)."""
    if not os.environ.get(TOKEN_ENV, "").strip():
        return f"{TOKEN_ENV} is not set: the live test is opt-in"
    if PROJECT.cloud:
        return (
            f"{TOKEN_ENV} names a file on this machine, not in the container: "
            "`make smoke` makes the live call to the cloud instead"
        )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The live test talks to the real Claude API: without a credential it is deselected, not
    skipped (no run, CI's included, skips a test it requires)."""
    if live_unavailable() is None:
        return
    live = [item for item in items if item.get_closest_marker("live") is not None]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item.get_closest_marker("live") is None]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say why the live test did not run (the header is hidden under -q)."""
    if reason := live_unavailable():
        terminalreporter.write_line(f"live test deselected: {reason}")


# --------------------------------------------------------------------------- Docker


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The Docker engine; skips (fails under CI=true) when there is none."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # no engine, no socket, no SDK: all mean "no Docker"
        unavailable(f"Docker is not usable: {exc}")
    return client


def _context_digest(package_source: str, buildargs: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(buildargs, sort_keys=True).encode())
    for name in BUILD_CONTEXT:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and not SKIP_PARTS.intersection(file.parts):
                digest.update(str(file.relative_to(ROOT)).encode())
                digest.update(file.read_bytes())
    if package_source == "wheelhouse":
        for wheel in sorted((ROOT / "wheelhouse").iterdir()):
            digest.update(f"{wheel.name}:{wheel.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def _package_source() -> str:
    chosen = os.environ.get("LCC_PACKAGE_SOURCE")
    if chosen:
        return chosen
    if any((ROOT / "wheelhouse").glob("*.whl")):
        return "wheelhouse"
    return PACKAGE_SOURCE


@pytest.fixture(scope="session")
def gateway_image(docker_client: Any) -> str:
    """The gateway image built from ./Dockerfile, once per session (and reused across
    sessions while the build context is unchanged)."""
    if given := os.environ.get("LCC_GATEWAY_IMAGE"):
        return given
    package_source = _package_source()
    buildargs = {"PACKAGE_SOURCE": package_source}
    if base := os.environ.get("LCC_BASE_IMAGE"):
        buildargs["BASE_IMAGE"] = base
    tag = f"{SLUG}-test:{_context_digest(package_source, buildargs)}"
    return build_image(docker_client, tag, ROOT, buildargs=buildargs)


def build_image(
    docker_client: Any,
    tag: str,
    context: Path,
    *,
    dockerfile: str | None = None,
    buildargs: dict[str, str],
) -> str:
    """``tag``, built from ``context`` unless it exists (the tag carries a digest of its inputs)."""
    try:
        docker_client.images.get(tag)
        return tag
    except Exception:  # docker.errors.ImageNotFound: build it
        pass
    log: list[str] = []
    started = time.monotonic()
    for item in docker_client.api.build(
        path=str(context),
        dockerfile=dockerfile,
        tag=tag,
        buildargs=buildargs,
        labels=LABELS,
        rm=True,
        forcerm=True,
        decode=True,
    ):
        if "stream" in item:
            log.append(item["stream"])
        if "error" in item:
            tail = "".join(log[-40:])
            pytest.fail(f"docker build of {tag} failed: {item['error']}\n{tail}")
    print(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(method: str, url: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@dataclass
class FakeUpstream:
    """The fake Anthropic API, seen from the host (its control API under /_fake)."""

    url: str

    def requests(self) -> list[dict[str, Any]]:
        data = http_json("GET", f"{self.url}/_fake/requests")
        items: list[dict[str, Any]] = data["requests"] if isinstance(data, dict) else data
        return items

    def requests_with(self, marker: str) -> list[dict[str, Any]]:
        """Upstream requests whose messages contain `marker` (each test uses its own)."""
        return [r for r in self.requests() if marker in json.dumps(r.get("messages"))]

    def push(self, *scenarios: dict[str, Any]) -> None:
        for scenario in scenarios:
            http_json("POST", f"{self.url}/_fake/scenarios", scenario)


@dataclass
class Gateway:
    url: str
    master_key: str
    container: Any

    def logs(self) -> str:
        out, err = self.container.get_logs()
        return bytes(out + err).decode(errors="replace")


def _wait_http(url: str, timeout: float, container: Any) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, _ = http_get(url, timeout=3)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        container.reload()
        if container.status not in {"created", "running"}:
            break
        time.sleep(0.5)
    out, err = container.get_logs()
    logs = (out + err).decode(errors="replace")[-4000:]
    pytest.fail(f"{url} not healthy within {timeout:.0f} s ({last}); container logs:\n{logs}")


@pytest.fixture(scope="session")
def docker_network(docker_client: Any) -> Iterator[Any]:
    from testcontainers.core.network import Network

    with Network(docker_network_kw={"labels": LABELS}) as network:
        yield network


@pytest.fixture(scope="session")
def fake_upstream(gateway_image: str, docker_network: Any) -> Iterator[FakeUpstream]:
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(gateway_image)
        .with_command(
            [
                "python",
                "-m",
                "litellm_claude_code.testing.fake_anthropic",
                "--host",
                "0.0.0.0",
                "--port",
                str(FAKE_PORT),
            ]
        )
        # The image's litellm would otherwise try to download its cost map first (seconds).
        .with_env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .with_network(docker_network)
        .with_network_aliases(FAKE_ALIAS)
        .with_kwargs(labels=LABELS)
        .with_exposed_ports(FAKE_PORT)
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(FAKE_PORT)}"
        # Generous: on a loaded 2-core host its Python start alone took over a minute.
        _wait_http(f"{url}/_fake/health", 180, container)
        yield FakeUpstream(url)


def start_gateway(image: str, network: Any, env: dict[str, str], *, fake: bool = True) -> Any:
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(image)
        .with_network(network)
        .with_exposed_ports(PORT)
        .with_kwargs(labels=LABELS)
    )
    # As `docker run --env-file config/provider.env`: the image carries no provider settings.
    # Against the fake (the Anthropic API), a Bedrock or Vertex project's settings lose the cloud.
    settings = project.fake_provider_env() if fake else project.provider_env()
    for key, value in {**settings, **env}.items():
        container = container.with_env(key, value)
    return container


@pytest.fixture(scope="session")
def gateway(
    gateway_image: str, docker_network: Any, fake_upstream: FakeUpstream
) -> Iterator[Gateway]:
    master_key = "sk-test-" + secrets.token_urlsafe(32)  # sk- and at least 32 characters
    container = start_gateway(
        gateway_image,
        docker_network,
        {
            "LITELLM_MASTER_KEY": master_key,
            "ANTHROPIC_BASE_URL": f"http://{FAKE_ALIAS}:{FAKE_PORT}",
            FAKE_TOKEN_ENV: FAKE_TOKEN,
        },
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(PORT)}"
        _wait_http(f"{url}/health/readiness", 180, container)
        yield Gateway(url, master_key, container)


@pytest.fixture
def client(gateway: Gateway) -> Any:
    from openai import OpenAI

    return OpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.master_key, max_retries=0, timeout=120
    )


@pytest.fixture
def marker() -> str:
    """A unique string to find this test's requests in the upstream log."""
    return f"marker-{uuid.uuid4().hex[:12]}"
