"""Fixtures shared by the provider tests (the helpers behind them: tests/support/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import (
    CREDENTIAL_NAMES,
    EXAMPLES,
    UPSTREAM_KEY,
    Proxy,
    start_proxy,
    stop_proxy,
)

_MARKERS = {
    "integration": "runs real binaries (the bundled Claude Code CLI) against local fakes",
}


def pytest_configure(config: pytest.Config) -> None:
    """Declare our markers unless the top-level pytest config already does."""
    declared = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, help_text in _MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    """A started fake Anthropic Messages API on a free port, stopped afterwards."""
    with FakeAnthropicServer() as server:
        yield server


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeAnthropicServer]:
    """One fake Anthropic API for the whole session (tests clear it; see ``fake``)."""
    with FakeAnthropicServer() as server:
        yield server


@pytest.fixture(scope="session")
def claude_env(upstream: FakeAnthropicServer) -> Iterator[dict[str, str]]:
    """This process's environment as a deployment would set it: the fake upstream and an API key."""
    patch = pytest.MonkeyPatch()
    for name in CREDENTIAL_NAMES:
        patch.delenv(name, raising=False)
        patch.delenv(name + "_FILE", raising=False)
    patch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    patch.setenv("ANTHROPIC_BASE_URL", upstream.base_url)
    patch.setenv("ANTHROPIC_API_KEY", UPSTREAM_KEY)
    patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    yield {"ANTHROPIC_BASE_URL": upstream.base_url, "ANTHROPIC_API_KEY": UPSTREAM_KEY}
    patch.undo()


@pytest.fixture
def fake(upstream: FakeAnthropicServer, claude_env: dict[str, str]) -> FakeAnthropicServer:
    """The session's fake upstream, emptied for this test (log and queue)."""
    upstream.clear()
    upstream.set_accept_keys(None)
    return upstream


@pytest.fixture(scope="session")
def proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """``litellm --config examples/proxy_config.yaml`` against the fake upstream.

    Two CLI slots and a one-second queue, so the lifecycle limits are cheap to reach.
    """
    workdir = tmp_path_factory.mktemp("proxy")
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        workdir,
        upstream,
        {
            "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "2",
            "LITELLM_CLAUDE_CODE_QUEUE_TIMEOUT": "1",
            "LITELLM_CLAUDE_CODE_WARM_MAX": "1",
        },
    )
    yield proxy
    stop_proxy(proxy)


GATEWAY_KEY = "sk-cc-clients-person-0123456789abcdefghijklmnopqrstuvwx"


@dataclass(frozen=True)
class Gateway:
    """The generated project's gateway as a person reaches it: its proxy, its URL, a person's key."""

    proxy: Proxy
    project: Path
    key: str

    @property
    def url(self) -> str:
        """The base URL a client is given (no ``/v1``): what docs/clients.md calls the gateway."""
        return self.proxy.base_url


@pytest.fixture(scope="session")
def gateway(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The template rendered with its defaults, its ``config/litellm.yaml`` and ``config/provider.env``
    run as ``make run`` runs them, with a key store holding one person's key (no model limit, the
    default of ``make key``). The real clients' tests (``test_clients_*.py``) all use it: a client
    works on the generated project's defaults or the test fails.
    """
    from litellm_claude_code.keys import KeyRecord, hash_key, write_records

    from tests.support.template import make_template_repo, render

    base = tmp_path_factory.mktemp("gateway")
    project = render(make_template_repo(base / "template"), base / "project")
    env: dict[str, str] = {}
    for line in (project / "config" / "provider.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            env[name.strip()] = value.strip()
    store = base / "keys.json"
    write_records(store, [KeyRecord(name="person", sha256=hash_key(GATEWAY_KEY))])
    env["LITELLM_CLAUDE_CODE_KEYS_FILE"] = str(store)
    proxy = start_proxy(project / "config" / "litellm.yaml", base / "run", upstream, env)
    yield Gateway(proxy, project, GATEWAY_KEY)
    stop_proxy(proxy)
