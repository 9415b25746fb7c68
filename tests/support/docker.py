"""Docker helpers: engine availability, local base images.

Importable by every test suite (``from tests.support.docker import ...``):

- :func:`require_docker` returns a docker client, or skips (under ``CI=true`` the skip fails).
- :func:`base_image` / :func:`systemd_image` name the local Debian images that
  ``tests/images/build-base-images.sh`` (:data:`BUILD_BASE_IMAGES`) builds without a registry.

The wheelhouse the containers install from is the project's own ``make wheelhouse``
(:mod:`tests.support.wheelhouse`).

Environment: ``LCC_BASE_IMAGE``, ``LCC_SYSTEMD_IMAGE`` (image names).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import in_ci  # noqa: F401 - re-exported for the suites

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_BASE_IMAGES = REPO_ROOT / "tests" / "images" / "build-base-images.sh"
DEFAULT_BASE_IMAGE = "litellm-claude-code/base:bookworm"
DEFAULT_SYSTEMD_IMAGE = "litellm-claude-code/systemd:bookworm"

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


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
    """The docker client; skips the test without Docker (a failure under CI=true: tests/conftest.py)."""
    client = docker_client()
    if client is None:
        pytest.skip("Docker engine not reachable (is dockerd running? docker info)")
    return client


def base_image() -> str:
    return os.environ.get("LCC_BASE_IMAGE") or DEFAULT_BASE_IMAGE


def systemd_image() -> str:
    return os.environ.get("LCC_SYSTEMD_IMAGE") or DEFAULT_SYSTEMD_IMAGE
