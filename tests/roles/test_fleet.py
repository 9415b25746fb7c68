"""The generated project's playbook provisions a load-balanced fleet of systemd hosts.

One converge per session (the ``converged`` fixture in conftest.py, shared with the other
``test_fleet*.py`` modules); the tests run in file order and the later ones (failover, kill,
rotation) leave the fleet healthy again for the next.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import re
import shlex
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.fleet import GATEWAYS, LB, MAX_CONCURRENCY, REDIS, SLUG, Fleet, journal_hits
from tests.support.playbook import fail_report
from tests.support.sse import read_stream
from tests.support.upstream import served_by, user_turns

pytestmark = pytest.mark.fleet

# The gateway role's firewall: its nftables table and unit (from the slug).
FIREWALL_TABLE = "lcc_fleet_gateway"
FIREWALL_UNIT = f"{SLUG}-firewall.service"


def _chat(fleet: Fleet, text: str, *, stream: bool = False, timeout: float = 120) -> urllib.request.Request:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": text}], "stream": stream}
    return urllib.request.Request(
        f"{fleet.lb_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {fleet.master_key}", "Content-Type": "application/json"},
        method="POST",
    )


def complete(fleet: Fleet, text: str = "hello", timeout: float = 120) -> tuple[dict[str, Any], str]:
    with urllib.request.urlopen(_chat(fleet, text), timeout=timeout) as resp:
        return json.load(resp), resp.headers.get("X-Upstream-Addr", "")


def test_converge(converged: Fleet) -> None:
    recap = converged.runs[0]["recap"]
    assert set(recap) == {*GATEWAYS, LB, REDIS}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values()), recap


def test_idempotent(converged: Fleet) -> None:
    second = converged.playbook()
    assert second["rc"] == 0, fail_report(second)
    changed = {host: r["changed"] for host, r in second["recap"].items()}
    assert changed == dict.fromkeys((*GATEWAYS, LB, REDIS), 0), fail_report(second)


def test_check_mode_reports_no_change(converged: Fleet) -> None:
    result = converged.playbook("ansible/site.yml", "--check", "--diff")
    assert result["rc"] == 0, fail_report(result)
    assert all(r["changed"] == 0 for r in result["recap"].values()), fail_report(result)


def test_status_playbook(converged: Fleet) -> None:
    result = converged.playbook("ansible/status.yml")
    assert result["rc"] == 0, fail_report(result)
    for counter, value in (
        ("RequestsLastHour", r"\d+"),
        ("Status4xxLastHour", r"\d+"),
        ("Status5xxLastHour", r"\d+"),
        ("WarmHitRateLastHour", r"(?:[01]\.\d\d|-)"),
        ("ColdStartsLastHour", r"\d+"),
        ("ColdReasonsLastHour", r"(?:-|[a-z_]+:\d+(?:,[a-z_]+:\d+)*)"),
    ):
        found = re.findall(rf"\b{counter}={value}(?=[\s\"',])", result["stdout"])
        assert len(found) == len(GATEWAYS), fail_report(result)
    assert all(r["changed"] == 0 for r in result["recap"].values()), fail_report(result)


# ------------------------------------------------------------------ each role alone (molecule-style)
# On the converged fleet, before any test changes it: each role applied by a play of its own, with
# nothing of the other roles, leaves its hosts as site.yml left them (no change: it needs nothing
# the other roles or site.yml provide), and its verify phase runs alone by its tag. From scratch,
# the load balancer and Redis each converge alone on a fresh host of their own at the end of this
# file; a fresh gateway converge would cost minutes of CI, so the gateway role alone converges
# from scratch only as part of site.yml's first converge.

ROLE_HOSTS = {"claude_code_gateway": "gateways", "claude_code_lb": "lb", "claude_code_redis": "redis"}
# A task of each role's verify phase: the tag ran it.
VERIFY_TASK = {
    "claude_code_gateway": "Wait for /health/readiness",
    "claude_code_lb": "Check a gateway answers through the load balancer",
    "claude_code_redis": "Ask Redis with the password",
}
ROLE_HOST_NAMES = {"claude_code_gateway": set(GATEWAYS), "claude_code_lb": {LB}, "claude_code_redis": {REDIS}}


def _role_play(fleet: Fleet, role: str) -> str:
    path = fleet.project / "ansible" / f"only-{role}.yml"
    play = [{"name": f"{role} alone", "hosts": ROLE_HOSTS[role], "become": True, "roles": [{"role": role}]}]
    path.write_text(json.dumps(play))
    return str(path.relative_to(fleet.project))


@pytest.mark.parametrize("role", sorted(ROLE_HOSTS))
def test_role_alone_converges_idempotently_and_verifies(converged: Fleet, role: str) -> None:
    hosts = ROLE_HOST_NAMES[role]
    converge = converged.playbook(_role_play(converged, role))
    assert converge["rc"] == 0, fail_report(converge)
    assert set(converge["recap"]) == hosts, converge["recap"]
    assert all(r["changed"] == 0 for r in converge["recap"].values()), fail_report(converge)
    verify = converged.playbook(_role_play(converged, role), "--tags", f"{role}_verify")
    assert verify["rc"] == 0, fail_report(verify)
    assert all(r["ok"] > 0 and r["changed"] == 0 for r in verify["recap"].values()), fail_report(verify)
    ran = set(re.findall(rf"^TASK \[{role} : ([^\]]*)\]", verify["stdout"], re.M))
    assert VERIFY_TASK[role] in ran, ran
    installs = {"Install OS packages", "Install Redis", "Install nginx"}
    assert not ran & installs, f"the verify tag ran other phases: {ran}"


def test_role_tags_are_prefixed(converged: Fleet) -> None:
    """`--tags claude_code_gateway_configure` touches the gateways only (a bare `configure` ran both)."""
    result = converged.playbook("ansible/site.yml", "--tags", "claude_code_gateway_configure")
    assert result["rc"] == 0, fail_report(result)
    # The load balancer's play still gathers facts and checks its arguments (tagged always), but
    # runs none of its tasks.
    lb_tasks = set(re.findall(r"^TASK \[claude_code_lb : ([^\]]*)\]", result["stdout"], re.M))
    assert {t for t in lb_tasks if not t.startswith("Validating arguments")} == set(), lb_tasks
    assert all(result["recap"][h]["ok"] > 0 and result["recap"][h]["changed"] == 0 for h in GATEWAYS), fail_report(
        result
    )


@pytest.mark.parametrize("host", GATEWAYS)
def test_unit_active_and_hardened(converged: Fleet, host: str) -> None:
    assert converged.sh(host, f"systemctl is-active {SLUG}.service").stdout.strip() == "active"
    assert converged.sh(host, f"systemctl is-enabled {SLUG}.service").stdout.strip() == "enabled"
    out = converged.sh(host, f"systemd-analyze security --no-pager {SLUG}.service").stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert exposure <= 2.0, out[-2000:]
    # The role writes the unit whole (no drop-in); the provider's settings are the project's file.
    unit = converged.sh(host, f"cat /etc/systemd/system/{SLUG}.service").stdout
    assert "Ansible managed" in "".join(unit.splitlines()[:3])
    assert f"EnvironmentFile=/etc/{SLUG}/provider.env" in unit
    assert converged.sh(host, f"ls /etc/systemd/system/{SLUG}.service.d 2>/dev/null || true").stdout.strip() == ""
    provider_env = (converged.project / "config" / "provider.env").read_text()
    assert converged.sh(host, f"cat /etc/{SLUG}/provider.env").stdout == provider_env


@pytest.mark.parametrize("host", GATEWAYS[:1])
def test_unit_limits_are_sized_for_max_concurrency(converged: Fleet, host: str) -> None:
    """MemoryMax= (1 GiB + 300 MiB per CLI process) and TasksMax= (256 + 64 per CLI process) for
    MAX_CONCURRENCY=4, and the kernel holds the service's cgroup to them."""
    shown = dict(
        line.split("=", 1)
        for line in converged.sh(
            host, f"systemctl show -p MemoryMax -p TasksMax -p OOMPolicy -p ControlGroup {SLUG}.service"
        ).stdout.splitlines()
    )
    memory_max = (1024 + 300 * MAX_CONCURRENCY) * 1024 * 1024
    tasks_max = 256 + 64 * MAX_CONCURRENCY
    assert shown["MemoryMax"] == str(memory_max), shown
    assert shown["TasksMax"] == str(tasks_max), shown
    assert shown["OOMPolicy"] == "continue", shown
    # cgroup v2 (memory.max, pids.max) or, on a hybrid host such as this one, v1's controllers.
    group = shown["ControlGroup"]
    kernel = converged.sh(
        host,
        f"cat /sys/fs/cgroup{group}/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory{group}/memory.limit_in_bytes;"
        f" cat /sys/fs/cgroup{group}/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids{group}/pids.max",
    ).stdout.split()
    assert kernel == [str(memory_max), str(tasks_max)], (group, kernel)


def _tcp(fleet: Fleet, host: str, address: str, port: int = 4000) -> str:
    """From inside ``host``: 'open', 'refused' (a reset) or what else became of a TCP connection."""
    script = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=5).close()\n"
        "    print('open')\n"
        "except ConnectionRefusedError:\n"
        "    print('refused')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    return fleet.sh(host, f"python3 -c {shlex.quote(script)}").stdout.strip()


def test_only_the_load_balancer_and_the_scraper_reach_a_gateway(converged: Fleet) -> None:
    """The gateways listen on every address, but the role's firewall lets only the load balancer,
    the scraper (the Docker host here: claude_code_gateway_firewall_allow_addresses) and localhost
    reach port 4000. The Redis host, a third host of the fleet that is neither, gets a reset. What
    the gateways send out (to the upstream, to Redis) is not filtered."""
    for gateway in GATEWAYS:
        address = converged.ips[gateway]
        assert _tcp(converged, REDIS, address) == "refused", f"the Redis host reaches {gateway}:4000"
        assert _tcp(converged, LB, address) == "open", f"the load balancer cannot reach {gateway}:4000"
        assert _tcp(converged, gateway, "127.0.0.1") == "open"
        assert _tcp(converged, gateway, address) == "open"  # the host itself, over its own address
        status, _, _ = _get(f"http://{address}:4000/health/readiness")
        assert status == 200, f"the scraper (the Docker host) cannot reach {gateway}:4000"
        # The gateway still reaches out: Redis (its limits) on the host that may not reach it.
        assert _tcp(converged, gateway, converged.ips[REDIS], 6379) == "open"
        table = converged.sh(gateway, f"nft list table inet {FIREWALL_TABLE}").stdout
        listed = set(re.findall(r"(?<![\d.])\d+\.\d+\.\d+\.\d+(?:/\d+)?", table))
        assert converged.ips[LB] in listed and converged.ips[REDIS] not in listed, table
        refused = re.search(r"tcp dport 4000 counter packets (\d+)", table)
        assert refused and int(refused.group(1)) >= 1, table
        # Loaded first, and the proxy does not start without the table.
        shown = converged.sh(gateway, f"systemctl show -p Wants -p After -p ExecStartPre {SLUG}.service").stdout
        assert re.search(rf"^Wants=.*\b{re.escape(FIREWALL_UNIT)}\b", shown, re.M), shown
        assert re.search(rf"^After=.*\b{re.escape(FIREWALL_UNIT)}\b", shown, re.M), shown
        assert f"nft list table inet {FIREWALL_TABLE}" in shown, shown
    # The load balancer still serves, from both gateways.
    seen = {converged.answered_by(complete(converged, f"through the firewall {i}")[1]) for i in range(4)}
    assert len(seen) == 2, seen


@pytest.mark.parametrize("host", GATEWAYS)
def test_secrets_not_world_readable(converged: Fleet, host: str) -> None:
    out = converged.sh(
        host, f"stat -c '%n %a %U %G' /etc/{SLUG}/secrets.env /etc/{SLUG}/credentials /etc/{SLUG}/credentials/*"
    ).stdout.split("\n")
    modes = {line.split()[0]: line.split()[1:] for line in out if line}
    assert modes[f"/etc/{SLUG}/secrets.env"] == ["600", "root", "root"]
    assert modes[f"/etc/{SLUG}/credentials"] == ["750", "root", SLUG]
    token_files = [p for p in modes if p.startswith(f"/etc/{SLUG}/credentials/")]
    assert token_files, modes
    for path in token_files:
        assert modes[path] == ["640", "root", SLUG], (path, modes[path])
    for path, (mode, *_owner) in modes.items():
        assert int(mode, 8) & 0o007 == 0, f"{path} is world-accessible ({mode})"
    # The service account reads the token (the provider reads it at request time).
    converged.sh(host, f"setpriv --reuid {SLUG} --regid {SLUG} --clear-groups cat {token_files[0]} >/dev/null")


def test_requests_through_the_load_balancer(converged: Fleet) -> None:
    seen = set()
    for i in range(6):
        reply, upstream = complete(converged, f"hello {i}")
        assert reply["choices"][0]["message"]["content"], reply
        seen.add(converged.answered_by(upstream))
    auths = {r.get("auth") for r in converged.upstream_requests()}
    assert converged.token in auths, "the Claude token did not reach the upstream"
    assert len(seen) == 2, f"expected both gateways to answer, saw {seen}"


def _converse(fleet: Fleet, tags: list[str], turns: int, *, affinity: bool) -> dict[str, list[str]]:
    """Chats of ``turns`` turns, interleaved turn by turn; per chat, the gateway that answered each turn."""
    histories = {tag: [{"role": "system", "content": f"{tag} system"}] for tag in tags}
    gateways: dict[str, list[str]] = {tag: [] for tag in tags}
    for turn in range(turns):
        for tag, messages in histories.items():
            messages.append({"role": "user", "content": f"{tag} q{turn}"})
            headers = {"Authorization": f"Bearer {fleet.master_key}", "Content-Type": "application/json"}
            if affinity:
                headers["X-Conversation-Id"] = tag
            body = json.dumps({"model": "sonnet", "messages": messages}).encode()
            request = urllib.request.Request(f"{fleet.lb_url}/v1/chat/completions", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=120) as resp:
                answer = json.load(resp)["choices"][0]["message"]["content"]
                gateways[tag].append(fleet.answered_by(resp.headers.get("X-Upstream-Addr", "")))
            messages.append({"role": "assistant", "content": answer})
    return gateways


def _affinity(fleet: Fleet, tags: list[str], turns: int) -> tuple[float, list[list[str]]]:
    """Share of follow-up turns sent upstream by the CLI process that sent the turn before, and the
    roles of each chat's last upstream request."""
    records = fleet.upstream_requests()
    hits = follow_ups = 0
    last_roles = []
    for tag in tags:
        sessions = []
        for turn in range(turns):
            (record,) = [r for r in records if user_turns(r) and user_turns(r)[-1] == f"{tag} q{turn}"]
            sessions.append(served_by(record))
        follow_ups += turns - 1
        hits += sum(1 for before, after in itertools.pairwise(sessions) if before == after)
        last_roles.append([m["role"] for m in record["messages"] if m["role"] in ("user", "assistant")])
    return hits / follow_ups, last_roles


def test_conversation_affinity_through_the_load_balancer(converged: Fleet) -> None:
    """With X-Conversation-Id a chat stays on one gateway and its process: each follow-up is only
    written, never rebuilt. Without it the turns spread over the gateways and are rebuilt there,
    still as real turns."""
    turns, expected_roles = 4, ["user", "assistant"] * 3 + ["user"]
    since = int(time.time()) - 1
    # Shown with a failure: a process past WARM_MAX_AGE (900 s) is retired after its turn.
    for host in GATEWAYS:
        ages = converged.sh(host, "ps -C claude -o etimes= || true").stdout.split()
        print(f"{host}: CLI processes aged {sorted(int(age) for age in ages)} s before the chats")
    # Two chats: even if both hash to one gateway, its two warm processes hold both.
    sticky = [f"affine-{i}" for i in range(2)]
    gateways = _converse(converged, sticky, turns, affinity=True)
    for tag, seen in gateways.items():
        assert len(set(seen)) == 1, f"{tag} moved between gateways: {seen}"
    hit_rate, roles = _affinity(converged, sticky, turns)
    assert all(r == expected_roles for r in roles), roles
    # The gateways' own account of those requests: each follow-up was continued in its process.
    log = _request_log(converged, since, requests=len(sticky) * turns)
    continued = sum("conversation=continued" in line for lines in log.values() for line in lines)

    loose = [f"loose-{i}" for i in range(3)]  # an odd count: alternating gateways split every chat
    spread = _converse(converged, loose, turns, affinity=False)
    loose_rate, loose_roles = _affinity(converged, loose, turns)
    assert all(r == expected_roles for r in loose_roles), loose_roles
    print(f"\naffinity hit rate through the LB: {hit_rate:.0%} with X-Conversation-Id, {loose_rate:.0%} without")
    print(f"gateways per chat without it: { {tag: len(set(seen)) for tag, seen in spread.items()} }")
    # Without the header nginx balances each turn on its own (least_conn, ties alternate): every
    # chat's turns spread over both gateways, and a follow-up on another gateway than the turn
    # before cannot be continued there, so the hit rate is at most the share that stayed.
    assert all(set(seen) == set(GATEWAYS) for seen in spread.values()), f"turns did not spread: {spread}"
    stayed = sum(before == after for seen in spread.values() for before, after in itertools.pairwise(seen))
    assert loose_rate <= stayed / (len(loose) * (turns - 1)) < 1.0, (loose_rate, stayed, spread)
    # Every follow-up found the process that answered the turn before; if not, the gateways' own
    # account of each request (warm, cold_reason, conversation kind) says why.
    assert hit_rate == 1.0, (hit_rate, gateways, log)
    assert continued == len(sticky) * (turns - 1), log


def _request_log(fleet: Fleet, since: int, *, requests: int, wait: float = 15) -> dict[str, list[str]]:
    """Per gateway, its request lines and pool warnings since ``since``, once at least ``requests``
    request lines are in (journald takes them in a moment after the answer), or after ``wait``."""
    deadline = time.monotonic() + wait
    while True:
        log = {}
        for host in GATEWAYS:
            out = fleet.sh(host, f"journalctl --no-pager -o cat -u {SLUG}.service --since @{since}", timeout=120)
            wanted = ("claude_code_request", "warm process")
            log[host] = [line for line in out.stdout.splitlines() if any(word in line for word in wanted)]
        logged = sum("claude_code_request" in line for lines in log.values() for line in lines)
        if logged >= requests or time.monotonic() > deadline:
            return log
        time.sleep(0.5)


def test_streaming_is_incremental_through_nginx(converged: Fleet) -> None:
    prompt = 'count [[fake:{"token_delay": 0.15, "tokens": 16}]]'
    arrivals: list[float] = []
    started = time.monotonic()
    with urllib.request.urlopen(_chat(converged, prompt, stream=True), timeout=120) as resp:
        assert resp.headers.get("Content-Type", "").startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 8, arrivals
    # 16 tokens 0.15 s apart: the first must arrive well before the last (no buffering on the way).
    assert arrivals[-1] - arrivals[0] >= 1.2, arrivals


@pytest.mark.parametrize("host", GATEWAYS)
def test_no_secret_in_the_journal(converged: Fleet, host: str) -> None:
    """No field of any journal entry (journalctl's export format) holds a secret of the fleet."""
    needles = {"token": converged.token, "master_key": converged.master_key, "redis_password": converged.redis_password}
    assert journal_hits(converged, host, needles) == []


def test_failover_when_one_gateway_stops(converged: Fleet) -> None:
    down = GATEWAYS[0]
    converged.sh(down, f"systemctl stop {SLUG}.service")
    try:
        served = []
        for i in range(6):
            reply, upstream = complete(converged, f"failover {i}")
            assert reply["choices"][0]["message"]["content"]
            # The gateways nginx tried, in order; the last one answered. The stopped one refuses
            # its connections, so it may be tried (and is then skipped), but never answers.
            served.append(converged.hosts_of(upstream)[-1])
        assert down not in served, served
        assert set(served) == {GATEWAYS[1]}, served
    finally:
        converged.sh(down, f"systemctl start {SLUG}.service")
        converged.wait_active(down)


@pytest.mark.parametrize("host", GATEWAYS[:1])
def test_systemd_restarts_a_killed_gateway(converged: Fleet, host: str) -> None:
    before = converged.main_pid(host)
    converged.sh(host, f"systemctl kill -s KILL {SLUG}.service")
    deadline = time.monotonic() + 60
    after = 0
    while time.monotonic() < deadline:
        after = converged.main_pid(host)
        if after not in (0, before):
            break
        time.sleep(0.5)
    assert after not in (0, before), "systemd did not restart the killed service"
    converged.wait_active(host)
    restarts = int(converged.sh(host, f"systemctl show -p NRestarts --value {SLUG}.service").stdout.strip())
    assert restarts >= 1


def test_rotated_token_reaches_upstream_without_restart(converged: Fleet) -> None:
    pids = {h: converged.main_pid(h) for h in GATEWAYS}
    old = converged.token
    converged.retired_tokens.append(old)
    converged.token = "sk-ant-oat01-rotated-" + old[-8:]
    result = converged.playbook()
    assert result["rc"] == 0, fail_report(result)
    # Only the token file changed on each gateway; the load balancer is untouched.
    assert {h: result["recap"][h]["changed"] for h in GATEWAYS} == dict.fromkeys(GATEWAYS, 1), fail_report(result)
    assert result["recap"][LB]["changed"] == 0
    assert {h: converged.main_pid(h) for h in GATEWAYS} == pids, "the service restarted on a token rotation"
    before = len(converged.upstream_requests())
    for i in range(4):
        complete(converged, f"rotated {i}")
    new_auths = {r.get("auth") for r in converged.upstream_requests()[before:]}
    assert new_auths == {converged.token}, new_auths


def _get(url: str, key: str | None = None) -> tuple[int, str, str]:
    """(status, body, X-Upstream-Addr) of a GET, errors included."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("X-Upstream-Addr", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("X-Upstream-Addr", "")


def test_the_load_balancer_forwards_only_the_api(converged: Fleet) -> None:
    """The API and the gateways' health probes reach a gateway; LiteLLM's admin and UI routes and
    /metrics get the load balancer's own 404, even with the master key (no gateway is tried)."""
    lb, key = converged.lb_url, converged.master_key
    status, body, upstream = _get(f"{lb}/v1/models", key)
    assert status == 200 and "sonnet" in body and upstream, (status, body[:300], upstream)
    status, _, upstream = _get(f"{lb}/health/readiness")
    assert status == 200 and upstream, status
    for path in ("/metrics/", "/ui/", "/key/list", "/model/info", "/chat/completions", "/"):
        status, body, upstream = _get(lb + path, key)
        assert status == 404 and not upstream, (path, status, upstream, body[:300])
        assert json.loads(body)["error"]["message"].endswith("(claude_code_lb_forward_paths)."), body
    # The gateways themselves still serve /metrics to whoever holds the key (Prometheus scrapes them).
    status, body, _ = _get(f"http://{converged.ips[GATEWAYS[0]]}:4000/metrics/", key)
    assert status == 200 and "claude_code_" in body, status


def test_master_key_is_enforced(converged: Fleet) -> None:
    req = _chat(converged, "hi")
    req.headers["Authorization"] = "Bearer wrong-key"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=60)
    assert err.value.code == 401


def test_preflight_says_which_secret_is_missing(converged: Fleet) -> None:
    result = converged.playbook(
        "ansible/site.yml", "--limit", GATEWAYS[0], "-e", json.dumps({"claude_code_gateway_claude_token": ""})
    )
    output = result["stdout"] + result["stderr"]
    assert result["rc"] != 0, "a missing Claude token must stop the play"
    # Only the secret that is missing is named (the master key is set).
    assert "Set claude_code_gateway_claude_token" in output, output[-3000:]
    assert "claude_code_gateway_master_key" not in output, output[-3000:]
    assert result["recap"][GATEWAYS[0]]["changed"] == 0, fail_report(result)
    assert converged.master_key not in output


@dataclass
class Stream:
    """One stream sent through nginx during a deploy: wall-clock times (the hosts share this clock)."""

    started: float
    ended: float = 0.0
    first_text: float | None = None
    tried: list[str] = field(default_factory=list)
    outcome: str = ""

    @property
    def served(self) -> str:
        return self.tried[-1] if self.tried else ""

    @property
    def ttft(self) -> float | None:
        """Seconds from sending the request to the first content chunk: what the client waits."""
        return None if self.first_text is None else self.first_text - self.started

    def open_at(self, instant: float) -> bool:
        return self.started < instant < self.ended


@dataclass
class RestartWindow:
    """One gateway's restart, from its journal: stop begun, stopped (drained), started, ready."""

    stopping: float
    stopped: float
    started: float
    ready: float


@dataclass
class ServedRequest:
    """One ``claude_code_request`` line of the provider (litellm_claude_code._observability)."""

    at: float  # when it was logged: the request's end
    warm: bool
    cold_reason: str
    line: str


REQUEST_LINE = re.compile(r"claude_code_request .*\bwarm=(true|false) cold_reason=(\S+)")
# A gateway the load balancer has just taken back: the streams it served in its first seconds.
JUST_BACK = 10.0


def _journal(fleet: Fleet, host: str, since: float) -> list[dict[str, Any]]:
    """The service's journal entries since ``since`` (epoch seconds), as journalctl's JSON."""
    out = fleet.sh(host, f"journalctl --no-pager -o json -u {SLUG}.service --since @{int(since)}", timeout=120).stdout
    return [json.loads(line) for line in out.splitlines()]


def _messages(entries: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(epoch seconds, text) of the journal entries that have a text message."""
    return [(int(e["__REALTIME_TIMESTAMP"]) / 1e6, e["MESSAGE"]) for e in entries if isinstance(e.get("MESSAGE"), str)]


def _restart_windows(entries: list[dict[str, Any]]) -> list[RestartWindow]:
    """The service's restarts in ``entries`` (:func:`_journal`), from systemd's and uvicorn's lines."""
    events = []
    for entry in entries:
        message = entry.get("MESSAGE")
        if not isinstance(message, str):
            continue
        at = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        if entry.get("_PID") == "1":
            kind = message.split(" ", 1)[0]  # "Stopping", "Stopped", "Started", ...
            if kind in ("Stopping", "Stopped", "Started"):
                events.append((at, kind))
        elif "Uvicorn running on" in message:
            events.append((at, "ready"))
    windows, current = [], {}
    for at, kind in sorted(events):
        if kind == "Stopping":
            current = {"stopping": at}
        elif current and kind not in current:
            current[kind.lower()] = at
            if kind == "ready" and len(current) == 4:
                windows.append(RestartWindow(**current))
                current = {}
    return windows


def _served_requests(entries: list[dict[str, Any]]) -> list[ServedRequest]:
    """The provider's per-request lines in ``entries``: whether each was warm, and if not why."""
    matches = ((at, message, REQUEST_LINE.search(message)) for at, message in _messages(entries))
    return [ServedRequest(at, match[1] == "true", match[2], message) for at, message, match in matches if match]


def _ttft_summary(streams: list[Stream]) -> str:
    """Time to first token p50/p90/max of ``streams`` (nearest rank), for the test's report."""
    ttfts = sorted(t for s in streams if (t := s.ttft) is not None)
    if not ttfts:
        return "no stream"

    def rank(p: float) -> float:
        return ttfts[max(0, math.ceil(p * len(ttfts)) - 1)]

    return f"p50 {rank(0.5):.2f} s, p90 {rank(0.9):.2f} s, max {ttfts[-1]:.2f} s over {len(ttfts)} streams"


def test_rolling_update_keeps_the_fleet_answering(converged: Fleet) -> None:
    """A deploy that restarts every gateway (serial: 1) while streams are in flight through nginx:
    each gateway drains the streams it serves when its stop begins, the other serves the streams
    sent meanwhile, every stream completes whole, and a gateway that is back serves warm.

    "Back" is ready (uvicorn listening: the readiness probe and nginx's next try then succeed).
    No request it serves from then on may start a CLI (its journal's ``warm=false``): a deploy
    must not hand its first users cold starts. The test prints the clients' time to first token
    over the deploy and on each gateway in its first seconds back (nginx takes a gateway back on
    its first try after ``fail_timeout``, so "first seconds" count from the first stream it
    served after ready)."""
    pids = {h: converged.main_pid(h) for h in GATEWAYS}
    extra_env = {
        "ANTHROPIC_BASE_URL": f"http://{converged.upstream_host}:{converged.upstream_port}",
        "LCC_DEPLOYMENT_MARK": str(time.time_ns()),
    }
    streams: list[Stream] = []
    stop = threading.Event()

    # Streams of about 3 s each from three clients (below MAX_CONCURRENCY=4 on one gateway),
    # balanced least_conn: whenever a gateway's stop begins, some are in flight on it.
    words = 30
    prompt = f'during the deploy [[fake:{{"token_delay": 0.1, "tokens": {words}}}]]'

    def one_stream(record: Stream) -> str:
        with urllib.request.urlopen(_chat(converged, prompt, stream=True), timeout=90) as resp:
            record.tried = converged.hosts_of(resp.headers.get("X-Upstream-Addr", ""))
            streamed = read_stream(resp)
        record.first_text = streamed.first_text_at
        if streamed.error is not None:
            return f"in-band error: {streamed.error}"
        got, finished = len(streamed.text.split()), streamed.done
        return "ok" if finished and got == words else f"incomplete ({got} words, done={finished})"

    def traffic() -> None:
        while not stop.is_set():
            record = Stream(started=time.time())
            try:
                record.outcome = one_stream(record)
            except Exception as exc:  # every failure is counted, whatever its kind
                record.outcome = f"{type(exc).__name__}: {exc}"
            record.ended = time.time()
            streams.append(record)

    began = time.time()
    workers = [threading.Thread(target=traffic, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        result = converged.playbook("ansible/site.yml", "-e", json.dumps({"claude_code_gateway_extra_env": extra_env}))
        # Every gateway is ready now. Go on until each has served a whole stream sent after this
        # (the last one restarted, too: nginx may skip it for up to fail_timeout after its
        # restart), at least 4 s so the streams that started as it came back complete too.
        returned = time.time()
        deadline = returned + 30
        while time.time() < deadline:
            time.sleep(0.5)
            served_since = {s.served for s in list(streams) if s.started >= returned and s.outcome == "ok"}
            if time.time() >= returned + 4 and served_since >= set(GATEWAYS):
                break
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    assert result["rc"] == 0, fail_report(result)
    restarted = {h: converged.main_pid(h) != pids[h] for h in GATEWAYS}
    assert restarted == dict.fromkeys(GATEWAYS, True), f"every gateway restarts on a changed environment: {restarted}"
    failures = [s for s in streams if s.outcome != "ok"]
    assert not failures, f"{len(failures)} of {len(streams)} streams failed during the rolling update: {failures[:5]}"

    journals = {h: _journal(converged, h, began - 1) for h in GATEWAYS}
    windows = {h: _restart_windows(journals[h]) for h in GATEWAYS}
    assert all(len(w) == 1 for w in windows.values()), f"one restart per gateway expected: {windows}"
    print(f"\n{len(streams)} streams during the deploy, all whole; time to first token {_ttft_summary(streams)}")
    cold: dict[str, list[ServedRequest]] = {}
    warm_ups: dict[str, list[str]] = {}
    for host, (window,) in windows.items():
        other = next(g for g in GATEWAYS if g != host)
        # Streams the stopping gateway was serving when its stop began: it let them finish
        # before it exited (they ended before systemd logged it stopped).
        drained = [s for s in streams if s.served == host and s.open_at(window.stopping)]
        # Streams sent while it was away (from a second after its stop began, when it no longer
        # accepts connections, until it was ready again): the other gateway served them.
        meanwhile = [s for s in streams if window.stopping + 1 <= s.started <= window.ready]
        # Streams it served once back, and those of its first seconds back.
        back = [s for s in streams if s.served == host and s.started >= window.ready]
        taken_back = min((s.started for s in back), default=window.ready)
        just_back = [s for s in back if s.started <= taken_back + JUST_BACK]
        # What its provider logged for the requests it served once ready.
        logged = [r for r in _served_requests(journals[host]) if r.at >= window.ready]
        cold[host] = [r for r in logged if not r.warm]
        # The provider's start-up warm-up (proxy_hooks.warm_up), if it has one: floor warm or timed out.
        warm_ups[host] = [
            m[m.index("claude_code_warm_up") :] for _, m in _messages(journals[host]) if "claude_code_warm_up" in m
        ]
        print(
            f"{host}: stop began {window.stopping - began:.1f} s into the deploy, drained in "
            f"{window.stopped - window.stopping:.1f} s, ready {window.ready - window.stopping:.1f} s after, "
            f"first stream {taken_back - window.ready:.1f} s after that; "
            f"{len(drained)} streams in flight on it when its stop began, {len(meanwhile)} sent meanwhile; "
            f"once back it served {len(logged)} requests, {len(cold[host])} cold; time to first token in its "
            f"first {JUST_BACK:.0f} s back {_ttft_summary(just_back)}; warm-up: {warm_ups[host] or 'none logged'}"
        )
        assert drained, f"no stream was in flight on {host} when its stop began: the test proves no drain"
        assert all(s.ended <= window.stopped + 1 for s in drained), (window, drained)
        assert meanwhile, f"no stream was sent while {host} restarted: {window}, {streams}"
        assert {s.served for s in meanwhile} == {other}, (host, window, meanwhile)
        assert back and logged, (
            f"{host} served no stream once back ({len(back)} streams, {len(logged)} journal lines after "
            f"{window.ready:.1f}): the warm check below proves nothing"
        )
    reasons = {h: collections.Counter(r.cold_reason for r in lines) for h, lines in cold.items() if lines}
    assert not reasons, (
        f"a gateway back from its restart started a CLI for a request (warm=false), cold reasons by gateway: "
        f"{ {h: dict(c) for h, c in reasons.items()} }; the pool must be warm before readiness reports ready. "
        f"Warm-up at start: {warm_ups}. First lines: {[r.line for lines in cold.values() for r in lines[:3]]}"
    )


def test_lb_role_alone_on_a_fresh_host(converged: Fleet, systemd_image: str) -> None:
    """Molecule-style on a host of its own: converge, idempotence, verify; the role needs no
    gateway group (explicit backends) and nothing from the gateway role. It is no host of the
    inventory's lb group, so the gateways' firewall lets it in for the time of the test."""
    host = "lbsolo"
    converged.start_host(host, systemd_image)
    converged.wait_host(host)
    element = f"inet {FIREWALL_TABLE} allowed_ipv4 {{ {converged.ips[host]} }}"
    for gateway in GATEWAYS:
        converged.sh(gateway, f"nft add element {element}")
    try:
        _lb_role_alone(converged, host)
    finally:  # the table as the role wrote it (the set merges adjacent addresses into ranges)
        for gateway in GATEWAYS:
            converged.sh(gateway, f"systemctl reload {FIREWALL_UNIT}")


def _role_alone_on(converged: Fleet, host: str, role: str, role_vars: dict[str, Any]) -> None:
    """``role`` alone by a play of its own on ``host``, a fresh host of an inventory of its own:
    it converges (with changes), converges again without one, and its verify phase passes alone."""
    inventory = converged.project / f"solo-{host}.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "ansible_connection": "community.docker.docker",
                        "ansible_python_interpreter": "/usr/bin/python3",
                    },
                    "children": {"solo": {"hosts": {host: {"ansible_host": converged.containers[host]}}}},
                }
            }
        )
    )
    play = converged.project / "ansible" / f"only-{role}-solo.yml"
    play.write_text(
        json.dumps(
            [{"name": f"{role} alone", "hosts": "solo", "become": True, "roles": [{"role": role, "vars": role_vars}]}]
        )
    )
    rel = str(play.relative_to(converged.project))
    converge = converged.playbook(rel, "-i", str(inventory))
    assert converge["rc"] == 0, fail_report(converge)
    assert set(converge["recap"]) == {host} and converge["recap"][host]["changed"] > 0, fail_report(converge)
    again = converged.playbook(rel, "-i", str(inventory))
    assert again["rc"] == 0 and again["recap"][host]["changed"] == 0, fail_report(again)
    verify = converged.playbook(rel, "-i", str(inventory), "--tags", f"{role}_verify")
    assert verify["rc"] == 0 and verify["recap"][host]["ok"] > 0, fail_report(verify)
    assert VERIFY_TASK[role] in verify["stdout"], fail_report(verify)


def _lb_role_alone(converged: Fleet, host: str) -> None:
    backends = [{"address": converged.ips[g], "port": 4000} for g in GATEWAYS]
    _role_alone_on(converged, host, "claude_code_lb", {"claude_code_lb_backends": backends})
    # It really balances: a completion through the solo load balancer.
    body = json.dumps({"model": "sonnet", "messages": [{"role": "user", "content": "solo"}]}).encode()
    request = urllib.request.Request(
        f"http://{converged.ips[host]}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {converged.master_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert json.load(resp)["choices"][0]["message"]["content"]


def test_redis_role_alone_on_a_fresh_host(converged: Fleet, systemd_image: str) -> None:
    """Molecule-style on a host of its own: the Redis role needs nothing of the gateway role or of
    site.yml but its password (the test's vars) and the address to bind (this host's, not the
    inventory's Redis host that group_vars name). Its verify phase asks Redis with and without
    the password; a client on another host of the network is asked for the password too."""
    host = "redissolo"
    converged.start_host(host, systemd_image)
    converged.wait_host(host)
    _role_alone_on(converged, host, "claude_code_redis", {"claude_code_redis_bind_address": converged.containers[host]})
    with socket.create_connection((converged.ips[host], 6379), timeout=10) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(200).startswith(b"-NOAUTH"), "Redis answered without a password"
        conn.sendall(f"AUTH {converged.redis_password}\r\nPING\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = conn.recv(200)
            assert chunk, answer
            answer += chunk
        assert answer == b"+OK\r\n+PONG\r\n", answer
