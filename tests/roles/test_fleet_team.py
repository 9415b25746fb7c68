"""Keys per person on the fleet: issued and revoked with ansible-playbook, limited across the fleet by Redis.

Runs on the session's fleet (tests/roles/conftest.py: two gateways, nginx and the Redis host
``redis1`` that the generated project's site.yml provisions with roles/claude_code_redis). Keys
are issued as an operator does: the keys CLI (what ``make key NAME=...`` runs) writes the
project's ``keys/keys.json``, and ansible-playbook installs it on every gateway. The module leaves
the fleet as it found it: the project's store removed and the gateways' store emptied again.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fleet import GATEWAYS, REDIS, SLUG, Fleet, holds, journal_hits
from tests.support.keys import keys_cli_ok as keys_cli
from tests.support.playbook import fail_report
from tests.support.sse import read_stream

pytestmark = pytest.mark.fleet

STORE = f"/etc/{SLUG}/keys.json"
RPM = 3
# Only the phases that carry the key store: the preflight checks the records, configure installs them.
KEY_TAGS = ("--limit", "gateways", "--tags", "claude_code_gateway_preflight,claude_code_gateway_configure")


def _request(url: str, key: str, text: str, *, stream: bool = False) -> urllib.request.Request:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": text}], "stream": stream}
    return urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )


def call(url: str, key: str, text: str) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and body of one completion; errors are answers too."""
    try:
        with urllib.request.urlopen(_request(url, key, text), timeout=120) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def gateway_url(fleet: Fleet, host: str) -> str:
    return f"http://{fleet.ips[host]}:4000"


def deploy_keys(fleet: Fleet) -> dict[str, Any]:
    result = fleet.playbook("ansible/site.yml", *KEY_TAGS)
    assert result["rc"] == 0, fail_report(result)
    return result


@pytest.fixture(scope="module")
def team(converged: Fleet) -> Iterator[dict[str, str]]:
    """Three people's keys, issued on the controller and deployed; removed again at the end."""
    store = converged.project / "keys" / "keys.json"  # where `make key` writes it
    assert not store.exists(), "the fleet's project already has a key store"
    store.parent.mkdir(exist_ok=True)
    pids = {h: converged.main_pid(h) for h in GATEWAYS}
    keys = {
        "limited": keys_cli(store, "add", "--name", "limited", "--rpm", str(RPM)),
        "streamer": keys_cli(store, "add", "--name", "streamer", "--team", "platform"),
        "leaver": keys_cli(store, "add", "--name", "leaver"),
    }
    try:
        result = deploy_keys(converged)
        # Only the key store changed on each gateway, and no gateway restarted for it.
        assert {h: result["recap"][h]["changed"] for h in GATEWAYS} == dict.fromkeys(GATEWAYS, 1), fail_report(result)
        assert {h: converged.main_pid(h) for h in GATEWAYS} == pids, "a new key restarted a gateway"
        for key in keys.values():
            assert not holds(result["stdout"] + result["stderr"], key), "a key reached ansible's output"
        yield keys
    finally:
        store.unlink(missing_ok=True)
        restored = converged.playbook("ansible/site.yml", *KEY_TAGS)
        assert restored["rc"] == 0, fail_report(restored)
        for host in GATEWAYS:
            assert json.loads(converged.sh(host, f"cat {STORE}").stdout)["keys"] == []
            converged.wait_active(host)


def test_the_store_is_installed_with_hashes_only(converged: Fleet, team: dict[str, str]) -> None:
    for host in GATEWAYS:
        mode = converged.sh(host, f"stat -c '%a %U %G' {STORE}").stdout.split()
        assert mode == ["640", "root", SLUG], mode
        text = converged.sh(host, f"cat {STORE}").stdout
        assert {r["name"] for r in json.loads(text)["keys"]} == set(team)
        assert not any(holds(text, key) for key in team.values()), "a key is in the store"
        env = converged.sh(host, f"systemctl show -p Environment --value {SLUG}.service").stdout
        assert f"LITELLM_CLAUDE_CODE_KEYS_FILE={STORE}" in env


def test_a_keys_rpm_holds_across_the_fleet(converged: Fleet, team: dict[str, str]) -> None:
    """RPM requests through nginx (spread over both gateways) pass, then every gateway answers 429."""
    key = team["limited"]
    answers = [call(converged.lb_url, key, f"limited {i}") for i in range(RPM + 3)]
    statuses = [status for status, _, _ in answers]
    served = [converged.answered_by(headers.get("x-upstream-addr", "")) for _, headers, _ in answers]
    assert statuses == [200] * RPM + [429] * 3, list(zip(statuses, served, strict=True))
    assert set(served) == set(GATEWAYS), f"nginx did not spread the requests: {served}"
    for _, headers, _ in answers[RPM:]:
        assert int(headers.get("retry-after", "0")) > 0, headers
    # Each gateway, asked directly, refuses the key too: they count in one place.
    for host in GATEWAYS:
        status, headers, body = call(gateway_url(converged, host), key, f"limited direct {host}")
        assert status == 429, (host, status, body[:300])
        assert int(headers.get("retry-after", "0")) > 0, headers
    # The counters are in Redis, under the key's hash (never the key).
    counters = converged.sh(
        REDIS,
        f"REDISCLI_AUTH={converged.redis_password} redis-cli --no-auth-warning --scan --pattern '*'",
    ).stdout
    digest = json.loads(converged.sh(GATEWAYS[0], f"cat {STORE}").stdout)["keys"][0]["sha256"]
    assert digest in counters, counters[-2000:]
    assert not holds(counters, key), "a key is in Redis"
    # Another person's key is not held back by it.
    assert call(converged.lb_url, team["leaver"], "not limited")[0] == 200


def _stream(url: str, key: str, text: str) -> tuple[str, str]:
    """Outcome ("ok" or what went wrong) and the gateway nginx chose, for one streamed completion."""
    with urllib.request.urlopen(_request(url, key, text, stream=True), timeout=120) as resp:
        upstream = resp.headers.get("X-Upstream-Addr", "")
        streamed = read_stream(resp)
    if streamed.error is not None:
        return f"in-band error: {streamed.error}", upstream
    words, finished = len(streamed.text.split()), streamed.done
    return ("ok" if finished and words == 12 else f"incomplete ({words} words, done={finished})"), upstream


def test_a_revoked_key_stops_everywhere_without_a_restart(converged: Fleet, team: dict[str, str]) -> None:
    for host in GATEWAYS:
        assert call(gateway_url(converged, host), team["leaver"], "before")[0] == 200
    pids = {h: converged.main_pid(h) for h in GATEWAYS}
    outcomes: list[tuple[str, str]] = []
    stop = threading.Event()
    first_started = threading.Event()
    # Streams of another key, about 2.5 s each, back to back from before the revoke to after it.
    prompt = 'keep going [[fake:{"token_delay": 0.2, "tokens": 12}]]'

    def traffic() -> None:
        while not stop.is_set():
            first_started.set()
            try:
                outcomes.append(_stream(converged.lb_url, team["streamer"], prompt))
            except Exception as exc:  # every failure is counted, whatever its kind
                outcomes.append((f"{type(exc).__name__}: {exc}", ""))

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        assert first_started.wait(10)
        time.sleep(0.5)
        keys_cli(converged.project / "keys" / "keys.json", "revoke", "--name", "leaver")
        result = deploy_keys(converged)
        time.sleep(3)  # the stream in flight when the playbook ended goes on to its end
    finally:
        stop.set()
        worker.join(timeout=120)
    assert {h: result["recap"][h]["changed"] for h in GATEWAYS} == dict.fromkeys(GATEWAYS, 1), fail_report(result)
    assert {h: converged.main_pid(h) for h in GATEWAYS} == pids, "a revoke restarted a gateway"
    for host in GATEWAYS:
        status, _, body = call(gateway_url(converged, host), team["leaver"], "after")
        assert status == 401 and "revoked" in body, (host, status, body[:300])
    failures = [o for o in outcomes if o[0] != "ok"]
    assert len(outcomes) >= 4, f"too few streams to span the revoke: {outcomes}"
    assert not failures, f"{len(failures)} of {len(outcomes)} streams of another key failed: {failures[:5]}"
    assert {converged.answered_by(u) for _, u in outcomes} == set(GATEWAYS), outcomes


def test_metrics_on_every_gateway_name_the_key_owner(converged: Fleet, team: dict[str, str]) -> None:
    # Both gateways served the streamer's streams (the revoke test) and the limited key's requests.
    for host in GATEWAYS:
        call(gateway_url(converged, host), team["streamer"], f"metrics {host}")
        req = urllib.request.Request(
            gateway_url(converged, host) + "/metrics", headers={"Authorization": f"Bearer {converged.master_key}"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read().decode()
        owned = [
            line
            for line in text.splitlines()
            if re.match(r'^litellm_\w+\{[^}]*="streamer"', line) and float(line.rsplit(" ", 1)[1]) > 0
        ]
        assert owned, f"{host}: no LiteLLM metric labelled with the key's owner:\n{text[:3000]}"
        assert not any(holds(text, key) for key in team.values()), "a key is in /metrics"
        anonymous = urllib.request.Request(gateway_url(converged, host) + "/metrics")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(anonymous, timeout=30)
        assert err.value.code == 401


# ------------------------------------------------------------------------------------------- Redis


def _listening(fleet: Fleet, host: str) -> set[str]:
    return {line.split()[3] for line in fleet.sh(host, "ss -ltnH").stdout.splitlines() if line.strip()}


def test_redis_listens_on_the_private_address_and_loopback_only(converged: Fleet) -> None:
    sockets = {s for s in _listening(converged, REDIS) if s.endswith(":6379")}
    assert sockets == {"127.0.0.1:6379", f"{converged.ips[REDIS]}:6379"}, sockets


def test_redis_refuses_a_client_without_the_password(converged: Fleet) -> None:
    with socket.create_connection((converged.ips[REDIS], 6379), timeout=10) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(200).startswith(b"-NOAUTH"), "Redis answered without a password"
        conn.sendall(b"AUTH wrong-password-0123456789\r\n")
        assert conn.recv(200).startswith(b"-WRONGPASS")


def test_redis_password_is_in_no_world_readable_file_and_no_journal(converged: Fleet) -> None:
    mode = converged.sh(REDIS, "stat -c '%a %U %G' /etc/redis/redis.conf").stdout.split()
    assert mode == ["640", "root", "redis"], mode
    assert converged.sh(REDIS, "systemctl is-active redis-server").stdout.strip() == "active"
    # Every field of every entry (not the message alone: a unit's environment or a command line
    # lands in fields of their own).
    for host in (*GATEWAYS, REDIS):
        hits = journal_hits(converged, host, {"redis_password": converged.redis_password})
        assert hits == [], f"the Redis password is in {host}'s journal"
    for host in GATEWAYS:
        shown = converged.sh(host, f"systemctl show {SLUG}.service").stdout
        assert f"REDIS_HOST={converged.containers[REDIS]}" in shown
        assert not holds(shown, converged.redis_password), "the Redis password is in the unit's environment"
        provider_env = converged.sh(host, f"cat /etc/{SLUG}/provider.env").stdout
        assert not holds(provider_env, converged.redis_password), "the Redis password is in provider.env"
        secrets_mode = converged.sh(host, f"stat -c '%a %U' /etc/{SLUG}/secrets.env").stdout.split()
        assert secrets_mode == ["600", "root"], secrets_mode
