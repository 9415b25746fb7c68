"""The real clients the tests drive the gateway with: pinned here, installed by ``.ci/run``.

Python clients (the ``openai`` and ``anthropic`` SDKs, pydantic-ai, LangChain, the OpenAI
Agents SDK) are pinned in ``requirements-dev.txt`` and imported by the tests. The command-line
clients are installed outside the test venv, into ``.clients/`` at the repository's root (or
``LCC_CLIENTS_DIR``):

- Claude Code and Codex from npm (``.clients/npm/bin/claude``, ``.clients/npm/bin/codex``).
  Claude Code is pinned to the newest release whose ``engines`` admits Debian 12's Node.js 20
  (2.1.197; 2.1.332, the one claude-agent-sdk bundles, wants Node.js 22). npm 11 skips its
  postinstall script; the package's binary runs without it.
- aider in a venv of its own (``.clients/aider/bin/aider``): it pins its own litellm and openai.

``python -m tests.support.clients install`` installs what is missing (``.ci/run`` calls it);
the tests find each binary with :func:`binary`, which skips when it is absent (a failure under
``CI=true``, tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NPM_CLIENTS: dict[str, tuple[str, str]] = {
    # binary name: (npm package, version)
    "claude": ("@anthropic-ai/claude-code", "2.1.197"),
    "codex": ("@openai/codex", "0.171.0"),
}
AIDER_VERSION = "0.86.2"


def clients_dir() -> Path:
    return Path(os.environ.get("LCC_CLIENTS_DIR") or ROOT / ".clients")


def path_of(name: str) -> Path:
    """Where the binary ``name`` (``claude``, ``codex``, ``aider``) is installed."""
    if name == "aider":
        return clients_dir() / "aider" / "bin" / "aider"
    return clients_dir() / "npm" / "bin" / name


def binary(name: str) -> Path:
    """The installed client ``name``, or a skip that says how to install it."""
    path = path_of(name)
    if not path.exists():
        pytest.skip(f"{name} is not installed at {path}: run `python -m tests.support.clients install`")
    return path


def install() -> None:
    """Install the pinned command-line clients that are missing (idempotent)."""
    base = clients_dir()
    base.mkdir(parents=True, exist_ok=True)
    missing = [f"{pkg}@{ver}" for name, (pkg, ver) in NPM_CLIENTS.items() if not path_of(name).exists()]
    if missing:
        subprocess.run(
            ["npm", "install", "-g", "--no-fund", "--no-audit", "--prefix", str(base / "npm"), *missing],
            check=True,
        )
    if not path_of("aider").exists():
        venv = base / "aider"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"aider-chat=={AIDER_VERSION}"],
            check=True,
        )
    for name in [*NPM_CLIENTS, "aider"]:
        print(f"{name}: {path_of(name)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.support.clients install")
    install()
