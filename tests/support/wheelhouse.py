"""Fill a rendered project's ``wheelhouse/`` by running the project's own ``make wheelhouse``.

Containers and fleet hosts cannot be assumed to reach a package registry, so every test that
installs the gateway somewhere other than the host installs it from the project's wheelhouse
with ``pip install --no-index``. That wheelhouse is the one the target users run builds: a
``make wheelhouse`` that leaves a wheel out fails those installs
(tests/template/test_offline_install.py installs from it with the network really closed).

``make wheelhouse`` takes its ``pip`` from the project's virtualenv (``make venv``, which also
installs the dev tools: minutes). This interpreter's virtualenv stands in for it
(``VENV=<ours> -o <ours>/.installed``, as the ``make key`` test does): the target's own command
line runs unchanged. No cache of ours: only pip's own download and wheel cache is reused (where
pip keeps it), and a fresh machine works without it.

    from tests.support.wheelhouse import fill_wheelhouse
    fill_wheelhouse(project)      # -> project / "wheelhouse"
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# This interpreter's virtualenv (not resolved: a venv's python is a symlink to the base one).
VENV = Path(sys.executable).parent.parent


def make_wheelhouse(project: Path, *, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """Run ``make wheelhouse`` in ``project`` with this interpreter's virtualenv as its ``VENV``."""
    make = shutil.which("make")
    if make is None:
        raise AssertionError("make is not installed: the wheelhouse is built by the project's `make wheelhouse`")
    if not (VENV / "bin" / "pip").exists():
        raise AssertionError(f"{sys.executable} is not in a virtualenv with pip: `make wheelhouse` needs one as VENV")
    return subprocess.run(
        [make, "wheelhouse", f"VENV={VENV}", "-o", f"{VENV}/.installed"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fill_wheelhouse(project: Path) -> Path:
    """``make wheelhouse`` in ``project``; the filled ``project/wheelhouse`` (with the provider's wheel)."""
    house = project / "wheelhouse"
    for old in house.glob("litellm_claude_code-*.whl"):
        old.unlink()  # the provider's wheel is rebuilt from project/provider, never reused
    done = make_wheelhouse(project)
    if done.returncode != 0:
        raise AssertionError(f"make wheelhouse exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    if not list(house.glob("litellm_claude_code-*.whl")):
        raise AssertionError(f"make wheelhouse left no provider wheel in {house}\n{done.stdout[-4000:]}")
    return house
