"""The fleet of tests/roles/: the answers its project is rendered with, the ``Fleet`` handle, and
the secret scans, in one place for tests/roles/conftest.py and every ``test_fleet*.py`` module.

The answers are constants here because the tests depend on them (the gateways' names, the slug
in every path and unit, the concurrency cap the load tests size their runs by): conftest.py
renders the project with :data:`ANSWERS`, so a changed answer changes what every test expects.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
GATEWAYS = ("gw1", "gw2")
LB = "lb1"
# Redis shared by the gateways (roles/claude_code_redis): per-key limits count across the fleet.
REDIS = "redis1"
SLUG = "lcc-fleet"
# A fixed cap (not derived from the host) so the load tests know where refusals begin; the
# gateway unit's limits are sized for it.
MAX_CONCURRENCY = 4
ANSWERS: dict[str, Any] = {
    "project_slug": SLUG,
    "gateway_hosts": list(GATEWAYS),
    "lb_host": LB,
    "redis_host": REDIS,
    "package_source": "wheelhouse",
    "max_concurrency": MAX_CONCURRENCY,
}
# Where the gateway role puts each secret (the only file that may hold it) and Redis its password.
TOKEN_FILE = f"/etc/{SLUG}/credentials/CLAUDE_CODE_OAUTH_TOKEN"
SECRETS_ENV = f"/etc/{SLUG}/secrets.env"
REDIS_CONFIG = "/etc/redis/redis.conf"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
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


def run(cmd: list[str], *, check: bool = True, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], check=check, timeout=timeout)


@dataclass
class Fleet:
    """The session's fleet (tests/roles/conftest.py): its containers and addresses, the secrets it
    was converged with, and the ways in (ansible-playbook, ``docker exec``, HTTP through nginx)."""

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

    def answered_by(self, upstream_addr: str) -> str:
        """The gateway that answered a request through nginx: the last one its ``X-Upstream-Addr``
        names (a retried request names every gateway tried; only the last one served it)."""
        return self.hosts_of(upstream_addr)[-1]

    def upstream(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.upstream_port}{path}", timeout=10) as resp:
            return json.load(resp)

    def upstream_requests(self) -> list[dict[str, Any]]:
        data = self.upstream("/_fake/requests")
        items = data.get("requests", data) if isinstance(data, dict) else data
        return [r for r in items if str(r.get("path", "")).startswith("/v1/messages")]


# ------------------------------------------------------------------------------ secrets on the hosts


def holds(text: str, secret: str) -> bool:
    """Whether ``secret`` is in ``text``: a bare bool, so a failed assertion cannot print the secret."""
    return secret in text


def exec_in(fleet: Fleet, host: str, argv: list[str], *, data: bytes = b"", timeout: float = 300) -> bytes:
    """Run ``argv`` in a host with ``data`` on its stdin (secrets go there, never on a command line)."""
    proc = subprocess.run(
        ["docker", "exec", "-i", fleet.containers[host], *argv], input=data, capture_output=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{host}: {argv[:3]} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
    return proc.stdout


# Every regular file of the host's filesystem but /proc and /sys (the tmpfs mounts /run, /tmp
# and /dev/shm included; symbolic links not followed), searched for the strings given one a line
# on stdin; prints "path:string" for each occurrence. grep, not Python: 1.8 GB per gateway.
FILE_SCAN = (
    "grep -rsoaF --devices=skip -f /dev/stdin"
    " $(find / -mindepth 1 -maxdepth 1 -type d ! -name proc ! -name sys); test $? -le 1"
)

# Reads {label: secret} on stdin; reads every file of /proc/<pid>/ and /proc/<pid>/task/<tid>/
# that this user may read (cmdline, environ, status, maps, ...) and prints which holds which
# secret, what it could read of which process, and its own uid and effective capabilities.
PROC_SCAN = r"""
import json, os, sys
needles = {label: value.encode() for label, value in json.load(sys.stdin).items()}
# Not files of a process's own data, or unbounded to read.
SKIP = {"mem", "pagemap", "clear_refs", "kpagecount", "kpageflags", "kpagecgroup"}
hits, readable, comm = [], {}, {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    roots = [f"/proc/{pid}"]
    try:
        roots += [f"/proc/{pid}/task/{tid}" for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        pass
    for root in roots:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            path = f"{root}/{name}"
            if name in SKIP or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read(1 << 24)
            except OSError:
                continue
            if root == f"/proc/{pid}":
                readable.setdefault(pid, []).append(name)
                if name == "cmdline":
                    comm[pid] = data.split(b"\0")[:2][-1].decode(errors="replace")[-80:]
            hits.extend([label, path] for label, needle in needles.items() if needle in data)
with open("/proc/self/status") as status:
    cap_eff = next(line.split()[1] for line in status if line.startswith("CapEff:"))
print(json.dumps({"hits": hits, "readable": readable, "cmdline": comm, "uid": os.geteuid(), "cap_eff": cap_eff}))
"""


def file_scan(fleet: Fleet, host: str, needles: dict[str, str]) -> list[list[str]]:
    """[label, path] for every file of ``host`` that holds one of ``needles`` (label -> secret)."""
    out = exec_in(fleet, host, ["bash", "-c", FILE_SCAN], data="".join(f"{v}\n" for v in needles.values()).encode())
    hits = set()
    for line in out.decode(errors="replace").splitlines():
        for label, value in needles.items():
            if line.endswith(":" + value):
                hits.add((label, line[: -len(value) - 1]))
    return sorted([label, path] for label, path in hits)


def proc_scan(fleet: Fleet, host: str, needles: dict[str, str], *, as_user: str | None) -> dict[str, Any]:
    argv = ["python3", "-c", PROC_SCAN]
    if as_user:
        argv = ["setpriv", "--reuid", as_user, "--regid", "nogroup", "--clear-groups", *argv]
    result: dict[str, Any] = json.loads(exec_in(fleet, host, argv, data=json.dumps(needles).encode()))
    return result


def journal_hits(fleet: Fleet, host: str, needles: dict[str, str]) -> list[str]:
    """Which secrets the host's journal holds, every field of every entry (export format: binary-safe)."""
    journal = exec_in(fleet, host, ["journalctl", "--no-pager", "-o", "export"])
    assert len(journal) > 10_000, f"{host}: the journal is nearly empty ({len(journal)} bytes)"
    return sorted(label for label, value in needles.items() if value.encode() in journal)
