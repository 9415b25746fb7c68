"""Where the secrets are while a real proxy serves, with the Claude credential in a ``*_FILE``.

The local half of the fleet promise "the Claude credential never appears in any process's
command line or environment visible to other users": a proxy of its own (the token only in
``CLAUDE_CODE_OAUTH_TOKEN_FILE``, the master key in its environment) serves a stream while
every process's ``/proc/<pid>/cmdline`` and ``environ`` are scanned. The CLI needs the token
in its environment; no other process may hold it, no command line may hold either secret,
and the proxy's master key never reaches a CLI process.
(tests/provider/test_integration.py checks the CLI's allow-listed environment in-process.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import (
    EXAMPLES,
    MASTER_KEY,
    Proxy,
    start_proxy,
    stop_proxy,
    wait_until,
)

pytestmark = pytest.mark.integration

TOKEN = "sk-ant-oat01-secret-scan-5b7d0c1e9f2a4638"


@pytest.fixture(scope="module")
def file_proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    workdir = tmp_path_factory.mktemp("secrets-proxy")
    token_file = workdir / "credentials" / "CLAUDE_CODE_OAUTH_TOKEN"
    token_file.parent.mkdir(mode=0o700)
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        workdir,
        upstream,
        # Empty counts as unset: the token file is the only credential.
        {"ANTHROPIC_API_KEY": "", "CLAUDE_CODE_OAUTH_TOKEN_FILE": str(token_file)},
    )
    yield proxy
    stop_proxy(proxy)


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # gone, or not ours to read


def scan(proxy: Proxy) -> tuple[list[str], list[str], list[int]]:
    """(problems found, CLI pids holding the token in their environment, CLI pids)."""
    clis = {p.pid for p in proxy.claude_processes()}
    problems, holders = [], []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        cmdline = read(proc / "cmdline")
        for name, secret in (("Claude token", TOKEN), ("master key", MASTER_KEY)):
            if secret.encode() in cmdline:
                problems.append(f"the {name} is in the command line of pid {pid}")
        environ = read(proc / "environ")
        if TOKEN.encode() in environ:
            if pid in clis:
                holders.append(pid)
            else:
                problems.append(f"the Claude token is in the environment of pid {pid} (not a CLI process)")
        if pid in clis and MASTER_KEY.encode() in environ:
            problems.append(f"the proxy's master key reached CLI process {pid}")
    return problems, holders, sorted(clis)


def test_no_secret_in_any_command_line_and_the_token_only_in_the_cli(
    file_proxy: Proxy, fake: FakeAnthropicServer
) -> None:
    marker = "secrets-scan-31f0"
    finished = threading.Event()
    texts: list[str] = []

    def serve() -> None:
        stream = file_proxy.client().chat.completions.create(
            model="sonnet",
            messages=[{"role": "user", "content": f"{marker} {directive(token_delay=0.3)}"}],
            stream=True,
        )
        texts.extend(c.choices[0].delta.content or "" for c in stream if c.choices)
        finished.set()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    # Scan while the CLI is mid-answer (the upstream request is in the fake's log).
    assert wait_until(lambda: any(marker in str(r["messages"]) for r in fake.messages_requests()), 60)
    problems, holders, clis = scan(file_proxy)
    assert clis, "no CLI process under the proxy while it streamed"
    assert holders, "the CLI did not get the token from the file: the scan would see nothing"
    worker.join(timeout=60)
    assert finished.is_set() and "".join(texts).startswith("fake reply"), texts
    # The token went upstream, read from the file.
    (request,) = [r for r in fake.messages_requests() if marker in str(r["messages"])]
    assert request["auth"] == TOKEN
    # And once more with the warm process idle.
    after, _, _ = scan(file_proxy)
    assert not problems + after, "\n".join(problems + after)
    # Nor in the proxy's log, or anywhere in its working directory but the credential file.
    assert TOKEN not in file_proxy.log_text()
    workdir = file_proxy.log.parent
    holding = [
        str(path)
        for path in workdir.rglob("*")
        if path.is_file() and path.name != "CLAUDE_CODE_OAUTH_TOKEN" and TOKEN.encode() in read(path)
    ]
    assert not holding, holding
