"""The gateway installs from the project's ``make wheelhouse`` with no route to any package index.

Render a wheelhouse project, run its own ``make wheelhouse`` (tests/support/wheelhouse.py),
pack the wheelhouse with the role's own ``pack.py`` and install it inside a container of the
session's base image started with ``--network none``, as the gateway role does on a host: a
virtualenv, ``pip install --no-index --find-links <wheelhouse> --require-hashes -r
requirements.lock`` (every wheel checked against the lock's SHA-256), the provider with
``--force-reinstall --no-deps``, ``pip check``, the bundled CLI against its pinned SHA-256
(``verify_bundled_cli``, as the role runs it). Before installing, the container must really have
no route: only ``lo``, an empty routing table, and a connection to the package index pip would
use (by name and by the address the host resolves it to) fails. Then the installed provider must
import and run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.docker import BUILD_BASE_IMAGES, base_image, require_docker
from tests.support.template import REPO_ROOT, RenderFn
from tests.support.wheelhouse import fill_wheelhouse

pytestmark = pytest.mark.docker

ROLE = REPO_ROOT / "roles" / "claude_code_gateway"
INSTALL_DIR = "/opt/offline-gw"
WHEELHOUSE = f"{INSTALL_DIR}/wheelhouse"
VENV = f"{INSTALL_DIR}/venv"
# The role's pip flags (tasks/install.yml; checked against it below).
PIP = [
    f"{VENV}/bin/pip",
    "install",
    "--disable-pip-version-check",
    "--no-input",
    "--no-index",
    "--find-links",
    WHEELHOUSE,
]
DEPENDENCIES = [*PIP, "--require-hashes", "-r", f"{INSTALL_DIR}/requirements.lock"]
VERIFY_CLI = "from litellm_claude_code._compat import verify_bundled_cli; print(verify_bundled_cli())"
PROVIDER = "litellm-claude-code"  # claude_code_gateway_provider_package

# Run inside the container before the install: prints what a connection to each index host does.
PROBE = r"""
import errno, json, socket, sys
hosts = json.loads(sys.argv[1])
result = {"interfaces": sorted(__import__("os").listdir("/sys/class/net")),
          "routes": open("/proc/net/route").read().splitlines()[1:], "attempts": []}
for host, port in hosts:
    try:
        socket.create_connection((host, port), timeout=5).close()
        outcome = "connected"
    except socket.gaierror as exc:
        outcome = "no-name:" + str(exc.errno)
    except OSError as exc:
        outcome = "unreachable" if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else "other:" + repr(exc)
    result["attempts"].append([host, port, outcome])
print(json.dumps(result))
"""


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def index_hosts() -> list[tuple[str, int]]:
    """(host, port) of every package index pip would use here, and the addresses the host
    resolves them to: pip's default index and any http(s) index or find-links pip is configured with."""
    from pip._internal.models.index import PyPI

    urls = {PyPI.simple_url}
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        urls.update(os.environ.get(key, "").split())
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    for line in listed.splitlines():
        if "index-url" in line or "find-links" in line:
            urls.update(line.split("=", 1)[1].strip("'\" ").split())
    hosts: set[tuple[str, int]] = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            hosts.add((parts.hostname, port))
            try:
                hosts.update(
                    (str(info[4][0]), port) for info in socket.getaddrinfo(parts.hostname, port, socket.AF_INET)
                )
            except OSError:
                pass  # the host cannot resolve it either: the name attempt alone
    return sorted(hosts)


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def offline_image() -> str:
    require_docker()
    image = base_image()
    if docker("image", "inspect", image).returncode != 0:
        done = subprocess.run(["bash", str(BUILD_BASE_IMAGES)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"building {image} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return image


def test_role_installs_with_these_pip_flags() -> None:
    """The flags below are the role's: a change there must be made here too."""
    tasks = (ROLE / "tasks" / "install.yml").read_text()
    for flag in (
        "'--disable-pip-version-check', '--no-input'",
        "['--no-index', '--find-links'",
        "['--require-hashes', '-r', claude_code_gateway_install_dir ~ '/requirements.lock']",
    ):
        assert flag in tasks, flag
    assert "'--force-reinstall', '--no-deps'" in tasks
    assert VERIFY_CLI in tasks
    assert f"claude_code_gateway_provider_package: {PROVIDER}" in (ROLE / "defaults" / "main.yml").read_text()


def test_wheelhouse_installs_with_the_network_closed(
    offline_image: str, render_project: RenderFn, tmp_path: Path
) -> None:
    project = render_project({"package_source": "wheelhouse"}, name="offline")
    started = time.monotonic()
    house = fill_wheelhouse(project)
    built = time.monotonic() - started
    archive = tmp_path / "wheelhouse.tar"
    subprocess.run([sys.executable, str(ROLE / "files" / "pack.py"), str(house), str(archive)], check=True)
    hosts = index_hosts()
    assert hosts, "no package index host to probe"

    name = f"lcc-offline-{uuid.uuid4().hex[:8]}"
    mounts = [
        f"{archive}:/src/wheelhouse.tar:ro",
        f"{project / 'requirements.txt'}:/src/requirements.txt:ro",
        f"{project / 'requirements.lock'}:/src/requirements.lock:ro",
    ]
    # LITELLM_LOCAL_MODEL_COST_MAP: as config/provider.env sets it for the unit (no fetch at import).
    flags = ["--network", "none", "--name", name, "-e", "LITELLM_LOCAL_MODEL_COST_MAP=True"]
    run = docker("run", "-d", *flags, *[f"-v{m}" for m in mounts], offline_image, "sleep", "1800")
    assert run.returncode == 0, run.stderr

    def sh(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return docker("exec", name, *argv, timeout=timeout)

    try:
        # 1. Really no route: a connection to every index host (name and address) fails.
        probe = sh("python3", "-c", PROBE, json.dumps(hosts), timeout=120)
        assert probe.returncode == 0, probe.stderr
        seen = json.loads(probe.stdout)
        assert seen["interfaces"] == ["lo"] and seen["routes"] == [], seen
        assert len(seen["attempts"]) == len(hosts), seen
        for host, port, outcome in seen["attempts"]:
            # An address cannot fail on its name: it must find no route.
            expected = ("unreachable",) if is_address(host) else ("no-name:", "unreachable")
            assert outcome.startswith(expected), (host, port, outcome)

        # 2. The role's install, step by step.
        for step in (
            ["mkdir", "-p", WHEELHOUSE],
            ["tar", "-xf", "/src/wheelhouse.tar", "-C", WHEELHOUSE],
            ["cp", "/src/requirements.txt", "/src/requirements.lock", INSTALL_DIR],
            ["python3", "-m", "venv", VENV],
            DEPENDENCIES,
            [*PIP, "--force-reinstall", "--no-deps", PROVIDER],
            [f"{VENV}/bin/pip", "check"],
            [f"{VENV}/bin/python", "-c", VERIFY_CLI],
        ):
            done = sh(*step, timeout=600)
            assert done.returncode == 0, (
                f"{' '.join(step)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )

        # 3. The installed gateway runs: the handler the proxy config names imports, the key tool runs.
        handler = sh(
            f"{VENV}/bin/python",
            "-c",
            "import claude_agent_sdk, litellm, litellm_claude_code; from litellm_claude_code import handler; "
            "print(litellm_claude_code.__file__)",
        )
        assert handler.returncode == 0 and handler.stdout.startswith(f"{VENV}/lib/"), handler.stdout + handler.stderr
        keys = sh(f"{VENV}/bin/python", "-m", "litellm_claude_code.keys", "--help")
        assert keys.returncode == 0 and "usage:" in keys.stdout, keys.stdout + keys.stderr
    finally:
        docker("rm", "-f", "-v", name)
    print(f"\nmake wheelhouse {built:.0f} s, {len(list(house.glob('*.whl')))} wheels; probed {hosts}")
