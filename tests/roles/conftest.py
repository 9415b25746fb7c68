"""Fleet fixtures: systemd hosts in Docker provisioned by the generated project's playbook.

One converge per test session (session-scoped ``fleet`` and ``converged``), shared by every
``test_fleet*.py`` module: the modules run in file-name order and each leaves the fleet healthy
(and its settings as converged) for the next. Render a project from the template
(2 gateways + 1 load balancer + 1 Redis, wheelhouse mode), start four systemd containers on a private
Docker network and the fake Anthropic upstream on the Docker host, then run
``ansible-playbook -i ansible/inventory.yml -i <docker hosts> ansible/site.yml`` from the
project, exactly as an operator would (plus a connection inventory and test variables).

Containers and the network are removed at the end, also when a test or the converge fails.
Set ``LCC_FLEET_KEEP=1`` to keep them for debugging: the run then writes ``fleet-state.json``
in its scratch directory, and ``LCC_FLEET_REUSE=<that file>`` makes a later run use the kept,
converged fleet as it is (no render, no converge, no cleanup; the fake upstream restarts on
the same port), so a test under development runs in seconds. Never set it in CI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.support` without relying on pytest's rootdir
    sys.path.insert(0, str(REPO))

from tests.support.docker import systemd_image as systemd_image_name  # noqa: E402
from tests.support.fleet import ANSWERS, GATEWAYS, LB, REDIS, SLUG, Fleet, docker, run  # noqa: E402
from tests.support.playbook import fail_report  # noqa: E402
from tests.support.template import make_template_repo, render  # noqa: E402
from tests.support.wheelhouse import fill_wheelhouse  # noqa: E402

SYSTEMD_IMAGE = systemd_image_name()
REUSE = os.environ.get("LCC_FLEET_REUSE", "")


# ------------------------------------------------------------------------------------------ session


@pytest.fixture(scope="session")
def systemd_image() -> str:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.skip("no Docker engine (under CI=true this skip fails: tests/conftest.py)")
    if docker("image", "inspect", SYSTEMD_IMAGE, check=False).returncode != 0:
        run(["bash", str(REPO / "tests/images/build-base-images.sh")], timeout=900)
    return SYSTEMD_IMAGE


@pytest.fixture(scope="session")
def fake_upstream_port() -> Iterator[int]:
    """The fake Anthropic API on every address of the Docker host (the hosts reach it over the bridge)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "provider/src"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "litellm_claude_code.testing.fake_anthropic",
            "--host",
            "0.0.0.0",
            "--port",
            str(_reused()["upstream_port"] if REUSE else 0),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        match = None
        while match is None and len(seen) < 50:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening on http://\S+:(\d+)", line)
        assert match, f"fake upstream did not start: {''.join(seen)[-2000:]}"
        # Keep draining stderr so the pipe never fills up.

        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        yield int(match.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """Our own scratch directory: pytest's numbered basetemp dirs are pruned by concurrent runs."""
    if REUSE:
        yield Path(REUSE).parent
        return
    path = Path(tempfile.mkdtemp(prefix="lcc-fleet-"))
    yield path
    if os.environ.get("LCC_FLEET_KEEP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rendered_project(workdir: Path) -> Path:
    """The project rendered from the working tree, through the same helper every template test uses."""
    if REUSE:
        return Path(_reused()["project"])
    repo = make_template_repo(workdir / "template-repo")
    return render(repo, workdir / SLUG, ANSWERS)


@pytest.fixture(scope="session")
def wheelhouse(rendered_project: Path) -> Path:
    """The project's wheelhouse, built by the project's own `make wheelhouse` (tests/support/wheelhouse.py)."""
    if REUSE:
        return rendered_project / "wheelhouse"
    return fill_wheelhouse(rendered_project)


# ------------------------------------------------------------------------------------------ fleet


def _reused() -> dict[str, Any]:
    """The kept fleet that ``LCC_FLEET_REUSE`` names."""
    data: dict[str, Any] = json.loads(Path(REUSE).read_text())
    return data


def _save_state(fleet: Fleet, workdir: Path) -> Path:
    state = {k: str(v) if isinstance(v, Path) else v for k, v in vars(fleet).items() if k != "runs"}
    path = workdir / "fleet-state.json"
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
    return path


def _docker_network_gateway(network: str) -> str:
    info = json.loads(docker("network", "inspect", network).stdout)[0]
    return info["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="session")
def fleet(
    systemd_image: str, rendered_project: Path, wheelhouse: Path, fake_upstream_port: int, workdir: Path
) -> Iterator[Fleet]:
    if REUSE:
        state = _reused()
        state["project"] = Path(state["project"])
        kept = Fleet(**state)
        yield kept
        _save_state(kept, workdir)
        return
    prefix = f"lcc-fleet-{uuid.uuid4().hex[:6]}"
    network = prefix
    keep = os.environ.get("LCC_FLEET_KEEP") == "1"
    docker("network", "create", network)
    fleet = Fleet(
        project=rendered_project,
        prefix=prefix,
        network=network,
        upstream_port=fake_upstream_port,
        upstream_host=_docker_network_gateway(network),
        # The master key rule (litellm_claude_code._master_key): sk- and at least 32 characters.
        master_key="sk-fleet-" + secrets.token_urlsafe(32),
        token="sk-ant-oat01-fleet-" + secrets.token_urlsafe(16),
    )
    try:
        for host in (*GATEWAYS, LB, REDIS):
            fleet.start_host(host, systemd_image)
        for host in (*GATEWAYS, LB, REDIS):
            fleet.wait_host(host)
        hosts = {
            "all": {
                "vars": {
                    "ansible_connection": "community.docker.docker",
                    "ansible_python_interpreter": "/usr/bin/python3",
                },
                "children": {
                    "gateways": {"hosts": {h: {"ansible_host": fleet.containers[h]} for h in GATEWAYS}},
                    "lb": {"hosts": {LB: {"ansible_host": fleet.containers[LB]}}},
                    "redis": {"hosts": {REDIS: {"ansible_host": fleet.containers[REDIS]}}},
                },
            }
        }
        (rendered_project / "docker-hosts.yml").write_text(json.dumps(hosts, indent=2))
        if keep:
            print(f"\nkept fleet: LCC_FLEET_REUSE={_save_state(fleet, workdir)}", file=sys.stderr)
        yield fleet
    finally:
        if keep:
            _save_state(fleet, workdir)
        else:
            for name in fleet.containers.values():
                docker("rm", "-f", "-v", name, check=False)
            docker("network", "rm", network, check=False)


@pytest.fixture(scope="session")
def converged(fleet: Fleet) -> Fleet:
    """The fleet after its first converge (``fleet.runs[0]``), shared by every fleet module."""
    if REUSE:
        return fleet
    first = fleet.playbook()
    assert first["rc"] == 0, "converge failed: " + fail_report(first)
    return fleet
