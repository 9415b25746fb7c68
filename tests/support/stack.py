"""The real stack the provider tests drive: CLI process accounting, providers, a proxy process.

Shared by tests/provider (through its conftest's fixtures and by direct import). The tests share
one fake upstream (a thread) and, for the proxy tests, one `litellm` proxy process: starting
either is the slow part. Each provider test module gets its own provider instance (own state
directory, registered under its own provider name) and closes it at the end, so no CLI process
outlives the module that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from litellm_claude_code.testing import FakeAnthropicServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
UPSTREAM_KEY = "sk-ant-test-upstream-key-0001"
MASTER_KEY = "sk-master-test-0123456789abcdefghij"

CREDENTIAL_NAMES = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")

# Processes (proxy servers) whose subtrees the orphan checks leave alone: their CLI
# processes belong to them, and the proxy fixture cleans them up.
FOREIGN_ROOTS: set[int] = set()


def bundled_claude() -> Path:
    from litellm_claude_code import bundled_cli_path

    return bundled_cli_path()


def is_claude(proc: psutil.Process) -> bool:
    try:
        if proc.name() == "claude":
            return True
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return bool(cmdline) and Path(cmdline[0]).name == "claude"


def _descendants(root: psutil.Process | None = None) -> list[psutil.Process]:
    root = root or psutil.Process()
    foreign: set[int] = set()
    for pid in FOREIGN_ROOTS:
        if pid == root.pid:
            continue  # asked about that proxy itself (Proxy.claude_processes): its subtree is the answer
        with contextlib.suppress(psutil.Error):
            foreign.add(pid)
            foreign.update(p.pid for p in psutil.Process(pid).children(recursive=True))
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in children if p.pid not in foreign]


def claude_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Live (non-zombie) Claude Code CLI processes below ``root`` (default: this test process)."""
    found = []
    for proc in _descendants(root):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if is_claude(proc):
            found.append(proc)
    return found


def zombies(root: psutil.Process | None = None) -> list[psutil.Process]:
    found = []
    for proc in _descendants(root):
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


async def async_wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


def process_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_provider(state_dir: Path, name: str, **overrides: Any) -> Any:
    """A provider instance with its own settings, registered with LiteLLM as ``name``."""
    from litellm_claude_code import ClaudeCodeProvider, Settings, register

    values: dict[str, Any] = {"state_dir": state_dir, "cli_max_retries": 0}
    values.update(overrides)
    provider = ClaudeCodeProvider(Settings(**values))
    register(name, provider)
    return provider


async def shutdown_provider(provider: Any) -> None:
    """Stop every warm process of ``provider`` (this loop's engine and the sync API's)."""
    await provider.aclose()


def shutdown_provider_sync(provider: Any) -> None:
    provider.close()


# --------------------------------------------------------------------------- the proxy


class Proxy:
    """A running ``litellm --config ...`` process."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path, state_dir: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.state_dir = state_dir

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, api_key: str = MASTER_KEY, **kwargs: Any) -> Any:
        import openai

        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key=api_key, **kwargs)

    def claude_processes(self) -> list[psutil.Process]:
        return claude_processes(psutil.Process(self.process.pid)) if self.process.poll() is None else []


def start_proxy(
    config: Path,
    workdir: Path,
    upstream: FakeAnthropicServer,
    extra_env: dict[str, str],
    command: list[str] | None = None,
) -> Proxy:
    """``litellm --config config`` (or ``command`` with the same arguments) against ``upstream``."""
    port = free_port()
    state_dir = workdir / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_NAMES}
    env.update(
        {
            "ANTHROPIC_BASE_URL": upstream.base_url,
            "ANTHROPIC_API_KEY": UPSTREAM_KEY,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_CLAUDE_CODE_STATE_DIR": str(state_dir),
            "LITELLM_CLAUDE_CODE_CLI_MAX_RETRIES": "0",
            "LITELLM_CLAUDE_CODE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env)
    log = workdir / "proxy.log"
    litellm_bin = Path(sys.executable).parent / "litellm"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(command or [str(litellm_bin)]), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    FOREIGN_ROOTS.add(process.pid)
    proxy = Proxy(process, f"http://127.0.0.1:{port}", log, state_dir)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_proxy(proxy)
            raise RuntimeError(f"the proxy exited with {process.returncode}:\n{proxy.log_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(proxy.base_url + "/health/liveliness", timeout=2).status_code == 200:
                return proxy
        time.sleep(0.25)
    stop_proxy(proxy)
    raise RuntimeError(f"the proxy did not become healthy:\n{proxy.log_text()[-4000:]}")


def stop_proxy(proxy: Proxy) -> None:
    """SIGTERM the proxy's process group, then SIGKILL whatever is left of it."""
    process = proxy.process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    FOREIGN_ROOTS.discard(process.pid)
