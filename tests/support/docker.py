"""Docker helpers: engine availability, local base images, the host-built wheelhouse.

Importable by every test suite (``from tests.support.docker import ...``):

- :func:`require_docker` returns a docker client, or skips; under ``CI=true`` it fails.
- :func:`ensure_base_images` builds the local Debian images with
  ``tests/images/build-base-images.sh`` when they are missing (no registry is needed).
- :func:`build_wheelhouse` fills a rendered project's ``wheelhouse/`` with every wheel the
  gateway needs, built by the host's pip: the third-party wheels once per lock (cached
  across sessions), the provider's wheel on every call (it changes while it is developed).

Environment: ``LCC_BASE_IMAGE``, ``LCC_SYSTEMD_IMAGE`` (image names), ``LCC_CACHE_DIR``
(default ``~/.cache/litellm-claude-code``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_BASE_IMAGES = REPO_ROOT / "tests" / "images" / "build-base-images.sh"
DEFAULT_BASE_IMAGE = "litellm-claude-code/base:bookworm"
DEFAULT_SYSTEMD_IMAGE = "litellm-claude-code/systemd:bookworm"
SKIP_PARTS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def docker_client() -> Any | None:
    """A connected docker client, or None when there is no usable engine."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception:  # no SDK, no socket, engine down: all mean "no Docker"
        return None
    return client


def require_docker() -> Any:
    """The docker client; skips the test without Docker, fails instead under CI=true."""
    client = docker_client()
    if client is None:
        message = "Docker engine not reachable (is dockerd running? docker info)"
        if in_ci():
            pytest.fail(f"{message}: Docker tests must not skip under CI=true")
        pytest.skip(message)
    return client


def base_image() -> str:
    return os.environ.get("LCC_BASE_IMAGE") or DEFAULT_BASE_IMAGE


def systemd_image() -> str:
    return os.environ.get("LCC_SYSTEMD_IMAGE") or DEFAULT_SYSTEMD_IMAGE


def ensure_base_images(client: Any) -> tuple[str, str]:
    """(base image, systemd image), building whichever is missing."""
    images = (base_image(), systemd_image())
    missing = []
    for image in images:
        try:
            client.images.get(image)
        except Exception:  # docker.errors.ImageNotFound
            missing.append(image)
    if missing:
        env = {**os.environ, "LCC_BASE_IMAGE": images[0], "LCC_SYSTEMD_IMAGE": images[1]}
        done = subprocess.run(
            ["bash", str(BUILD_BASE_IMAGES)], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"building base images {missing} failed:\n{done.stdout}\n{done.stderr}")
    return images


def cache_dir() -> Path:
    root = os.environ.get("LCC_CACHE_DIR") or Path.home() / ".cache" / "litellm-claude-code"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tree_digest(*paths: Path) -> str:
    """sha256 over file names and contents (caches skipped), for cache keys and tags."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for file in files:
            if file.is_file() and not SKIP_PARTS.intersection(file.parts):
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def _pip(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def third_party_wheels(project: Path) -> Path:
    """Wheels of requirements.txt under requirements.lock, cached per (lock, Python, platform)."""
    requirements = project / "requirements.txt"
    lock = project / "requirements.lock"
    key = hashlib.sha256(
        requirements.read_bytes()
        + lock.read_bytes()
        + sysconfig.get_platform().encode()
        + f"{sys.version_info[0]}.{sys.version_info[1]}".encode()
    ).hexdigest()[:16]
    target = cache_dir() / f"wheels-{key}"
    with _locked(cache_dir() / "wheels.lock"):
        if not (target / ".complete").exists():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            _pip("wheel", "--quiet", "--wheel-dir", str(partial), "-c", str(lock), "-r", str(requirements), cwd=project)
            (partial / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
    return target


def build_wheelhouse(project: Path) -> Path:
    """Fill ``project/wheelhouse`` with every wheel the gateway needs; return it.

    Third-party wheels are hard-linked from the cache (copied across file systems); the
    provider's wheel is built from ``project/provider`` each time.
    """
    wheelhouse = project / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    for old in wheelhouse.glob("*.whl"):
        old.unlink()
    for wheel in third_party_wheels(project).glob("*.whl"):
        try:
            os.link(wheel, wheelhouse / wheel.name)
        except OSError:
            shutil.copy2(wheel, wheelhouse / wheel.name)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheelhouse), "./provider", cwd=project)
    return wheelhouse
