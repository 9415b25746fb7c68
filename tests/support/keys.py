"""The key store's command line (``python -m litellm_claude_code.keys``), as ``make key`` runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.stack import REPO


def keys_cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the key store's CLI on ``store`` with this interpreter and the working tree's provider.

    Returns the finished process whatever its exit status: callers check it (a refusal is what
    some tests expect).
    """
    return subprocess.run(
        [sys.executable, "-m", "litellm_claude_code.keys", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "provider" / "src")},
        check=False,
        timeout=60,
    )


def keys_cli_ok(store: Path, *args: str) -> str:
    """``keys_cli`` that must succeed: its standard output, stripped."""
    done = keys_cli(store, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
