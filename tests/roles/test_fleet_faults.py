"""Faults operators meet on a fleet, and what the tests must see on its hosts (issue 13).

Runs after test_fleet.py on the session's converged fleet (tests/roles/conftest.py) and leaves
it as it found it: every gateway healthy, no fault left in place, the settings as converged (the
token this module rotates to is the fleet's token from then on, in ``fleet.token``).

- The Claude credential, the master key and the Redis password never leak on a fleet host: not
  in any process's command line or environment that another user can read, not in any file but
  their own, not in any field of the journal, also after a rotation (the rotated-away token is
  gone from disk).
- A gateway whose host is lost (its network cut: packets dropped, no refusal) costs the requests
  that reach it at most the load balancer's connect timeout, none fails, the lost host serves
  nothing while it is down and serves again once it is back.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.support.fleet import (
    GATEWAYS,
    LB,
    REDIS,
    REDIS_CONFIG,
    SECRETS_ENV,
    SLUG,
    TOKEN_FILE,
    Fleet,
    file_scan,
    journal_hits,
    proc_scan,
)
from tests.support.playbook import fail_report

pytestmark = pytest.mark.fleet


def _complete_on(fleet: Fleet, host: str) -> None:
    """A completion sent straight to one gateway: its CLI process stays warm for the next."""
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "scan"}]}
    request = urllib.request.Request(
        f"http://{fleet.ips[host]}:4000/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {fleet.master_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as resp:
        assert json.load(resp)["choices"][0]["message"]["content"], host


def _cli_pids(fleet: Fleet, host: str) -> list[str]:
    """The Claude Code CLI processes of the service (the provider's children), as root sees them."""
    out = fleet.sh(
        host, f"systemd-cgls --no-pager --full -u {SLUG}.service | grep -o '[0-9]\\+ .*_bundled/claude' || true"
    )
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


# Every host of the fleet: the Redis host holds the Redis password, and is scanned like the others.
HOSTS = (*GATEWAYS, LB, REDIS)


def _needles(fleet: Fleet) -> dict[str, str]:
    """Every secret the fleet was converged with (label -> value), the retired tokens included."""
    needles = {"token": fleet.token, "master_key": fleet.master_key, "redis_password": fleet.redis_password}
    return needles | {f"retired_token_{i}": token for i, token in enumerate(fleet.retired_tokens)}


# Where each secret may be on disk, per host: the gateway role's files, Redis's configuration.
HOMES = {
    **{
        gateway: {"token": TOKEN_FILE, "master_key": SECRETS_ENV, "redis_password": SECRETS_ENV} for gateway in GATEWAYS
    },
    REDIS: {"redis_password": REDIS_CONFIG},
}


def _assert_files_hold_only_their_own(fleet: Fleet, needles: dict[str, str]) -> None:
    """On every host, each secret is in its own file (:data:`HOMES`) and in no other; a secret
    without a home on a host is on no disk of it."""
    # The hosts in parallel (most of a minute each on a busy 2-core machine). The machine id is
    # the control: the scan must find it in /etc/machine-id, so it saw the files.
    hosts = HOSTS
    control = {h: fleet.sh(h, "cat /etc/machine-id").stdout.strip() for h in hosts}
    with ThreadPoolExecutor(len(hosts)) as pool:
        scans = dict(
            zip(hosts, pool.map(lambda h: file_scan(fleet, h, {**needles, "control": control[h]}), hosts), strict=True)
        )
    for host, hits in scans.items():
        assert ["control", "/etc/machine-id"] in hits, f"{host}: the scan did not see /etc/machine-id: {hits}"
        found = sorted(hit for hit in hits if hit[0] != "control")
        expected = sorted([label, path] for label, path in HOMES.get(host, {}).items() if label in needles)
        assert found == expected, f"{host}: secrets on disk (label, path): {found}"


def _assert_processes_hide_them(fleet: Fleet, needles: dict[str, str]) -> None:
    """On each gateway, with CLI processes running: root finds the token in the CLI's environment
    and the master key and the Redis password in the proxy's (the scan sees them), another user
    finds none of them anywhere under /proc, though it reads those processes' command lines. On
    the Redis host another user finds none either, though it reads redis-server's command line."""
    for host in GATEWAYS:
        _complete_on(fleet, host)
        main = str(fleet.main_pid(host))
        clis = _cli_pids(fleet, host)
        assert clis, f"{host}: no CLI process after a completion (the warm set keeps its process)"
        as_root = proc_scan(fleet, host, needles, as_user=None)
        as_other = proc_scan(fleet, host, needles, as_user="nobody")
        seen = {tuple(hit) for hit in as_root["hits"]}
        assert ("master_key", f"/proc/{main}/environ") in seen, f"{host}: the scan cannot see secrets: {seen}"
        assert ("redis_password", f"/proc/{main}/environ") in seen, f"{host}: the scan cannot see secrets: {seen}"
        assert {("token", f"/proc/{pid}/environ") for pid in clis} & seen, f"{host}: {clis}, {seen}"
        assert as_other["uid"] != 0 and int(as_other["cap_eff"], 16) == 0, as_other
        assert "cmdline" in as_other["readable"].get(main, []), f"{host}: nobody did not see the proxy {main}"
        # A CLI listed before the scans may have been replaced since (the floor is renewed as it
        # ages): one of those listed before or after is enough to show the scan reads them.
        around = {*clis, *_cli_pids(fleet, host)}
        assert any("cmdline" in as_other["readable"].get(pid, []) for pid in around), (
            f"{host}: nobody saw none of the CLI processes {sorted(around)}"
        )
        assert as_other["hits"] == [], f"{host}: another user reads a secret: {as_other['hits']}"
    redis_pid = fleet.sh(REDIS, "systemctl show -p MainPID --value redis-server").stdout.strip()
    as_other = proc_scan(fleet, REDIS, needles, as_user="nobody")
    assert as_other["uid"] != 0 and int(as_other["cap_eff"], 16) == 0, as_other
    assert "cmdline" in as_other["readable"].get(redis_pid, []), f"nobody did not see redis-server ({redis_pid})"
    assert as_other["hits"] == [], f"{REDIS}: another user reads a secret: {as_other['hits']}"


def test_no_other_user_sees_a_secret_in_any_process(converged: Fleet) -> None:
    """As converged: no other user reads the token, the master key or the Redis password anywhere
    under /proc of a gateway with CLI processes running (root does, so the scan can see them) or
    of the Redis host; the journals of the hosts hold none of them."""
    needles = _needles(converged)
    _assert_processes_hide_them(converged, needles)
    for host in HOSTS:
        assert journal_hits(converged, host, needles) == [], host


def test_rotated_token_leaves_no_trace(converged: Fleet) -> None:
    """After a rotation (a converge): the new token is in its credential file only, the master key
    in secrets.env only, the Redis password in secrets.env and Redis's configuration only, every
    earlier token (the first converge's included) on no disk of the fleet; the journals hold none
    of them, and no other user sees them in any process."""
    old = converged.token
    converged.retired_tokens.append(old)
    converged.token = "sk-ant-oat01-faults-" + secrets.token_urlsafe(16)
    result = converged.playbook("ansible/site.yml", "--tags", "claude_code_gateway_configure")
    assert result["rc"] == 0, fail_report(result)
    # The token file changed on each gateway (the rolling-update test before may leave a setting
    # that this converge puts back, so more may change: test_fleet.py pins the rotation alone).
    assert all(result["recap"][h]["changed"] >= 1 for h in GATEWAYS), fail_report(result)
    for host in GATEWAYS:
        converged.wait_active(host)
    # Each gateway serves with the new token (and retires the processes started with the old).
    before = len(converged.upstream_requests())
    for host in GATEWAYS:
        _complete_on(converged, host)
    assert {r.get("auth") for r in converged.upstream_requests()[before:]} == {converged.token}
    needles = _needles(converged)
    _assert_files_hold_only_their_own(converged, needles)
    for host in HOSTS:
        assert journal_hits(converged, host, needles) == [], host
    _assert_processes_hide_them(converged, needles)


# ------------------------------------------------------------------------------------ host loss


@dataclass
class Try:
    """One try of one request, from nginx's access log: the gateway, its status, nginx's time on it."""

    host: str
    status: str
    seconds: float


@dataclass
class Reply:
    """One completion through the load balancer (monotonic times), and nginx's tries for it."""

    probe: str
    started: float
    seconds: float
    outcome: str  # "ok" or what went wrong
    tried: list[str]  # from X-Upstream-Addr: the gateways nginx tried, in order; the last answered
    tries: list[Try] = field(default_factory=list)  # from the access log (_read_tries)

    @property
    def served(self) -> str:
        return self.tried[-1] if self.tried else ""

    def cost_on(self, host: str) -> float:
        return sum(t.seconds for t in self.tries if t.host == host)


def _ask(fleet: Fleet, probe: str, timeout: float = 300) -> Reply:
    """A completion through the LB; ``probe`` rides the query string, to find it in the access log."""
    body = {"model": "sonnet", "messages": [{"role": "user", "content": probe}]}
    request = urllib.request.Request(
        f"{fleet.lb_url}/v1/chat/completions?probe={probe}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {fleet.master_key}", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    tried: list[str] = []
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            tried = fleet.hosts_of(resp.headers.get("X-Upstream-Addr", ""))
            content = json.load(resp)["choices"][0]["message"]["content"]
            outcome = "ok" if content else "empty answer"
    except Exception as exc:  # every failure is counted, whatever its kind
        outcome = f"{type(exc).__name__}: {exc}"
    return Reply(probe, started, time.monotonic() - started, outcome, tried)


ACCESS_LINE = re.compile(r"\?probe=(\S+) HTTP/[\d.]+\" \d+ .* upstream=(.+) ustatus=(.+) uct=.+ urt=(.+) rid=")


def _read_tries(fleet: Fleet, replies: list[Reply]) -> None:
    """Fill each reply's tries from the load balancer's access log (the role's log format)."""
    log = fleet.sh(LB, f"tail -n 2000 /var/log/nginx/{SLUG}.access.log").stdout
    by_probe = {m[1]: m for m in map(ACCESS_LINE.search, log.splitlines()) if m}
    for reply in replies:
        match = by_probe.get(reply.probe)
        assert match, f"{reply.probe} is not in the access log"
        hosts = fleet.hosts_of(match[2])
        statuses = [v.strip() for v in match[3].split(",")]
        seconds = [float(v) for v in match[4].split(",")]
        assert len(hosts) == len(statuses) == len(seconds), match[0]
        reply.tries = [Try(*t) for t in zip(hosts, statuses, seconds, strict=True)]


@dataclass
class LbSettings:
    connect_timeout: float
    fail_timeout: float
    max_fails: int
    keepalive: bool


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60}[unit]


def _lb_settings(fleet: Fleet) -> LbSettings:
    """What the load balancer is configured with, read from the site the role wrote."""
    site = fleet.sh(LB, f"cat /etc/nginx/conf.d/{SLUG}.conf").stdout
    servers = re.findall(r"^\s*server \S+ max_fails=(\d+) fail_timeout=(\w+);", site, re.M)
    assert servers, site
    (connect,) = set(re.findall(r"^\s*proxy_connect_timeout (\w+);", site, re.M))
    return LbSettings(
        connect_timeout=_seconds(connect),
        fail_timeout=_seconds(servers[0][1]),
        max_fails=int(servers[0][0]),
        keepalive=bool(re.search(r"^\s*keepalive \d+;", site, re.M)),
    )


@contextmanager
def _network_cut(fleet: Fleet, host: str) -> Iterator[None]:
    """The host's network cut: every packet in or out dropped, so nothing refuses a connection
    (no RST, no ICMP); a connection to it waits until the client gives up. Done in the host's
    network namespace from the Docker host (the containers have no NET_ADMIN)."""
    pid = docker_pid(fleet, host)
    rules = [["INPUT", "!", "-i", "lo", "-j", "DROP"], ["OUTPUT", "!", "-o", "lo", "-j", "DROP"]]
    for rule in rules:
        _nsenter(pid, ["iptables", "-w", "-I", *rule])
    try:
        yield
    finally:
        for rule in rules:
            _nsenter(pid, ["iptables", "-w", "-D", *rule])


def docker_pid(fleet: Fleet, host: str) -> int:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", fleet.containers[host]], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def _nsenter(pid: int, argv: list[str]) -> None:
    proc = subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"nsenter {argv}: {proc.stderr} (the fleet tests cut a host's network as root)"


def test_lost_gateway_costs_at_most_the_connect_timeout(converged: Fleet) -> None:
    """A gateway host that stops answering without refusing (its network cut) costs the requests
    nginx sends it at most the connect timeout, none fails, nginx skips it for fail_timeout after
    each failed try, it serves nothing while it is down, and serves again once it is back.

    The costs come from nginx's own access log (its time on each try), not from the client's
    clock: on a busy 2-core machine an answer may take seconds, but a connect timeout is exact.
    """
    lb = _lb_settings(converged)
    assert lb.max_fails == 1, lb  # the bounds below: one failed try marks a host down
    down, other = GATEWAYS
    run = secrets.token_hex(3)
    # Normal service: both gateways answer. The loss comes right after the lost host answered,
    # while nginx would still hold an idle connection to it if it kept them (the worst case).
    before: list[Reply] = []
    # A gateway restarted by the test before may still be marked down by nginx (fail_timeout):
    # wait for both to answer, then for the lost host to have answered last.
    deadline = time.monotonic() + 3 * lb.fail_timeout + 30
    while len(before) < 4 or before[-1].served != down or {r.served for r in before} != set(GATEWAYS):
        before.append(_ask(converged, f"lost-{run}-before-{len(before)}"))
        assert time.monotonic() < deadline, f"both gateways never answered: {before}"
        if len(before) >= 4:
            time.sleep(0.5)
    assert {r.served for r in before} == set(GATEWAYS), before
    normal = statistics.median(r.seconds for r in before)

    during: list[Reply] = []
    with _network_cut(converged, down):
        cut_at = time.monotonic()
        # Long enough for nginx to try the lost host again after fail_timeout, twice.
        while time.monotonic() - cut_at < 2 * lb.fail_timeout + 2 * lb.connect_timeout:
            during.append(_ask(converged, f"lost-{run}-down-{len(during)}"))
        restored_at = time.monotonic()
    after: list[Reply] = []
    while time.monotonic() - restored_at < 3 * lb.fail_timeout + 60:
        after.append(_ask(converged, f"lost-{run}-back-{len(after)}"))
        if sum(r.served == down for r in after) >= 2:
            break
    _read_tries(converged, before + during + after)

    affected = [r for r in during if down in r.tried]
    back = next((r for r in after if r.served == down), None)
    print(
        f"\nlost host ({down}, network cut; connect_timeout={lb.connect_timeout:g}s fail_timeout="
        f"{lb.fail_timeout:g}s max_fails={lb.max_fails}): {len(during)} requests in {restored_at - cut_at:.1f} s, "
        f"{len(affected)} sent to it first, {sum(r.outcome != 'ok' for r in during + after)} failed; "
        f"a normal answer {normal:.2f} s"
    )
    if affected:
        first = affected[0]
        print(
            f"time to detect: {first.cost_on(down):.2f} s (nginx's try of the lost host); the first request "
            f"sent to it took {first.seconds:.2f} s, {first.seconds - normal:+.2f} s on a normal answer; "
            f"each affected request lost {', '.join(f'{r.cost_on(down):.2f}' for r in affected)} s"
        )
    if back:
        print(f"back: it served again {back.started - restored_at:.1f} s after its network returned")

    failed = [r for r in before + during + after if r.outcome != "ok"]
    assert not failed, failed
    assert not [r for r in during if r.served == down], "the lost host answered while its network was cut"
    assert not [t for r in during for t in r.tries if t.host == down and t.status != "504"], during
    assert {r.served for r in during} == {other}, during
    assert affected, f"nginx never sent a request to the lost host: the test saw no loss ({during})"
    for reply in affected:
        # nginx waited for the connect timeout (a black hole, not a refusal: the error log says
        # so below), then the other gateway answered. Never the read timeout of a kept connection.
        assert lb.connect_timeout - 0.05 <= reply.cost_on(down) <= lb.connect_timeout + 0.5, (lb, reply)
        assert [t.host for t in reply.tries] == [down, other], reply
    # After each failed try nginx skips the host for fail_timeout, in every worker (the upstream's
    # state is shared): one request per fail_timeout pays, not one per worker.
    span = during[-1].started - affected[0].started
    assert len(affected) <= math.floor(span / lb.fail_timeout) + 1, (lb, span, affected)
    # Back: its last failed try is at most fail_timeout old when its network returns; nginx sends
    # it one of the next requests after that (least_conn: ties alternate), answered normally.
    assert back, f"the host did not serve again after its network returned: {after}"
    longest = max(r.seconds for r in after)
    assert back.started - restored_at <= lb.fail_timeout + 2 * longest + 1, (lb, back, after)
    assert not [r for r in after if len(r.tries) != 1], "a request failed over after the network returned"
    errors = converged.sh(LB, f"tail -n 200 /var/log/nginx/{SLUG}.error.log").stdout
    assert "upstream timed out (110: Connection timed out) while connecting to upstream" in errors, errors[-3000:]
