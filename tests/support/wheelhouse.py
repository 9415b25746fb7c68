"""Fill a rendered project's ``wheelhouse/`` from the host, as ``make wheelhouse`` would.

Containers and fleet hosts cannot be assumed to reach a package registry, so every test that
installs the gateway somewhere other than the host installs it from a wheelhouse built here,
with ``pip install --no-index``. The third-party wheels (``requirements.txt`` under
``requirements.lock``) are built once and cached across runs, keyed by the digest of those two
files; the provider's wheel is rebuilt on every call (it changes while it is developed).

    from tests.support.wheelhouse import fill_wheelhouse
    fill_wheelhouse(project)      # -> project / "wheelhouse"

Environment: ``XDG_CACHE_HOME`` (the cache lives in ``$XDG_CACHE_HOME/litellm-claude-code-tests``,
default ``~/.cache/...``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litellm-claude-code-tests"
# Debian 12's python3 is 3.11.2: redis requires async-timeout below 3.11.3, which a lock resolved
# on a newer 3.11 does not contain. Hosts and images built from Debian need its wheel too.
EXTRA_REQUIREMENTS = ("async-timeout>=4.0.3",)
PIP_WHEEL = (sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet")


def _run(cmd: list[str], *, timeout: float) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def lock_digest(project: Path) -> str:
    """The cache key of a project's dependency wheels: its requirements and lock, by name and content."""
    digest = hashlib.sha256()
    # The provider's own dependencies (provider/pyproject.toml) are wheels of the house too.
    for path in (project / "requirements.txt", project / "requirements.lock", project / "provider" / "pyproject.toml"):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One filler of the cache at a time (test sessions run in parallel on one machine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dependency_wheels(project: Path) -> Path:
    """The cached directory of third-party wheels for this project's lock (built on first use)."""
    deps = CACHE / f"deps-{lock_digest(project)}"
    with _exclusive(CACHE / f"{deps.name}.lock"):
        if not (deps / ".complete").exists():
            shutil.rmtree(deps, ignore_errors=True)
            deps.mkdir(parents=True)
            _run(
                [
                    *PIP_WHEEL,
                    "--wheel-dir",
                    str(deps),
                    "-c",
                    str(project / "requirements.lock"),
                    "-r",
                    str(project / "requirements.txt"),
                    str(project / "provider"),
                ],
                timeout=1200,
            )
            # The provider itself is rebuilt on every call (fill_wheelhouse): only its dependencies stay cached.
            for own in deps.glob("litellm_claude_code-*.whl"):
                own.unlink()
            (deps / ".complete").touch()
        if not (deps / ".extras-complete").exists():
            _run([*PIP_WHEEL, "--wheel-dir", str(deps), *EXTRA_REQUIREMENTS], timeout=300)
            (deps / ".extras-complete").touch()
    return deps


def fill_wheelhouse(project: Path) -> Path:
    """Fill ``project/wheelhouse`` with every wheel the gateway needs; return that directory.

    Dependency wheels are hard-linked from the cache (copied across file systems); the
    provider's wheel is built from ``project/provider`` each time, replacing an older one.
    """
    deps = dependency_wheels(project)
    house = project / "wheelhouse"
    house.mkdir(exist_ok=True)
    for wheel in deps.glob("*.whl"):
        target = house / wheel.name
        if not target.exists():
            try:
                os.link(wheel, target)
            except OSError:
                shutil.copy2(wheel, target)
    for old in house.glob("litellm_claude_code-*.whl"):
        old.unlink()
    _run([*PIP_WHEEL, "--no-deps", "--wheel-dir", str(house), str(project / "provider")], timeout=300)
    return house
