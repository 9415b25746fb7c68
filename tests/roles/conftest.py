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
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.support` without relying on pytest's rootdir
    sys.path.insert(0, str(REPO))

from tests.support.docker import systemd_image as systemd_image_name  # noqa: E402
from tests.support.playbook import fail_report  # noqa: E402
from tests.support.template import make_template_repo, render  # noqa: E402
from tests.support.wheelhouse import fill_wheelhouse  # noqa: E402

BIN = Path(sys.executable).parent
SYSTEMD_IMAGE = systemd_image_name()
# The flags that run systemd as PID 1 here (--privileged fails on this machine kind). NET_ADMIN:
# the gateway role's firewall (an nftables table in the host's, here the container's, network
# namespace), as a real host has it.
SYSTEMD_RUN_FLAGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "NET_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
]
GATEWAYS = ("gw1", "gw2")
LB = "lb1"
# Redis shared by the gateways (roles/claude_code_redis): per-key limits count across the fleet.
REDIS = "redis1"
SLUG = "lcc-fleet"
REUSE = os.environ.get("LCC_FLEET_REUSE", "")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def run(cmd: list[str], *, check: bool = True, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], check=check, timeout=timeout)


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
    answers = {
        "project_slug": SLUG,
        "gateway_hosts": list(GATEWAYS),
        "lb_host": LB,
        "redis_host": REDIS,
        "package_source": "wheelhouse",
        # A fixed cap (not derived from the host) so the load tests know where refusals begin.
        "max_concurrency": 4,
    }
    return render(repo, workdir / SLUG, answers)


@pytest.fixture(scope="session")
def wheelhouse(rendered_project: Path) -> Path:
    """The project's wheelhouse, built by the project's own `make wheelhouse` (tests/support/wheelhouse.py)."""
    if REUSE:
        return rendered_project / "wheelhouse"
    return fill_wheelhouse(rendered_project)


# ------------------------------------------------------------------------------------------ fleet


@dataclass
class Fleet:
    project: Path
    prefix: str
    network: str
    upstream_port: int
    upstream_host: str
    master_key: str
    token: str
    # Tokens the fleet had before a rotation (a test that rotates appends the old one).
    retired_tokens: list[str] = field(default_factory=list)
    containers: dict[str, str] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    redis_password: str = field(default_factory=lambda: "redis-fleet-" + secrets.token_urlsafe(16))

    # ---- ansible
    def vars_file(self) -> Path:
        path = self.project / "test-vars.yml"
        data = {
            "claude_code_gateway_master_key": self.master_key,
            "claude_code_gateway_claude_token": self.token,
            "claude_code_gateway_extra_env": {
                "ANTHROPIC_BASE_URL": f"http://{self.upstream_host}:{self.upstream_port}",
            },
            "claude_code_gateway_health_timeout": 120,
            # The Docker host (the tests, the fake upstream) plays the scraper outside the inventory:
            # the tests reach each gateway directly. The firewall lets in only it, the load
            # balancer and localhost (test_fleet.py::test_only_the_load_balancer_and_the_scraper_reach_a_gateway).
            "claude_code_gateway_firewall_allow_addresses": [self.upstream_host],
            "claude_code_lb_expose_upstream_header": True,
            "claude_code_redis_password": self.redis_password,
            # Debian's unit sets PrivateUsers=true, which these containers cannot do (217/USER).
            "claude_code_redis_private_users": False,
        }
        path.write_text(json.dumps(data))
        path.chmod(0o600)
        return path

    def playbook(self, playbook: str = "ansible/site.yml", *extra: str) -> dict[str, Any]:
        cmd = [
            str(BIN / "ansible-playbook"),
            "-i",
            "ansible/inventory.yml",
            "-i",
            str(self.project / "docker-hosts.yml"),
            "-e",
            f"@{self.vars_file()}",
            playbook,
            *extra,
        ]
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.project / "ansible/ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }
        started = time.monotonic()
        proc = run(cmd, check=False, timeout=1200, cwd=self.project, env=env)
        recap = {
            m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(proc.stdout)
        }
        result = {
            "rc": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
            "recap": recap,
            "seconds": round(time.monotonic() - started, 1),
            "cmd": cmd,
        }
        self.runs.append(result)
        (self.project / f"ansible-run-{len(self.runs)}.log").write_text(proc.stdout + "\n" + proc.stderr)
        return result

    # ---- hosts
    def start_host(self, host: str, image: str) -> str:
        """Start a systemd container on the fleet's network (removed with the fleet)."""
        name = f"{self.prefix}-{host}"
        self.containers[host] = name
        docker("run", "-d", "--name", name, "--hostname", host, "--network", self.network, *SYSTEMD_RUN_FLAGS, image)
        return name

    def wait_host(self, host: str, timeout: float = 60) -> None:
        """Wait for systemd in the host to be up, then record its address."""
        name = self.containers[host]
        deadline = time.monotonic() + timeout
        while True:
            state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in {"running", "degraded"}:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: systemd is {state!r} after {timeout:.0f} s")
            time.sleep(1)
        self.ips[host] = docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
        ).stdout.strip()

    def sh(
        self, host: str, script: str, *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.containers[host], "bash", "-c", script, check=check, timeout=timeout)

    def main_pid(self, host: str) -> int:
        return int(self.sh(host, f"systemctl show -p MainPID --value {SLUG}.service").stdout.strip())

    def wait_active(self, host: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.sh(host, f"systemctl is-active {SLUG}.service", check=False).stdout.strip()
            ready = self.sh(
                host,
                "curl -fsS -o /dev/null http://127.0.0.1:4000/health/readiness 2>/dev/null"
                ' || python3 -c "import urllib.request as u; u.urlopen('
                "'http://127.0.0.1:4000/health/readiness', timeout=3)\"",
                check=False,
            )
            if state == "active" and ready.returncode == 0:
                return
            time.sleep(1)
        raise AssertionError(f"{host}: {SLUG} not ready after {timeout} s")

    # ---- HTTP
    @property
    def lb_url(self) -> str:
        return f"http://{self.ips[LB]}"

    def hosts_of(self, upstream_addr: str) -> list[str]:
        """The gateways nginx tried for one request, in order, from its ``X-Upstream-Addr`` header.

        The header is nginx's ``$upstream_addr``: ``IP:port`` per try, ``, `` between tries (the
        last one answered), `` : `` between upstream groups. An address of no fleet host fails.
        """
        by_address = {f"{ip}:4000": host for host, ip in self.ips.items()}
        tried = [addr.strip() for addr in re.split(r"[,:]\s", upstream_addr) if addr.strip()]
        assert tried, f"no upstream address in {upstream_addr!r} (claude_code_lb_expose_upstream_header off?)"
        unknown = [addr for addr in tried if addr not in by_address]
        assert not unknown, f"{upstream_addr!r}: {unknown} is no gateway of the fleet ({by_address})"
        return [by_address[addr] for addr in tried]

    def upstream(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.upstream_port}{path}", timeout=10) as resp:
            return json.load(resp)

    def upstream_requests(self) -> list[dict[str, Any]]:
        data = self.upstream("/_fake/requests")
        items = data.get("requests", data) if isinstance(data, dict) else data
        return [r for r in items if str(r.get("path", "")).startswith("/v1/messages")]


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
