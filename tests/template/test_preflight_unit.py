"""The gateway role's preflight sizes the unit's limits (MemoryMax=, TasksMax=) for the project's
MAX_CONCURRENCY and checks the firewall's allow list, before it touches a host.

Runs the role's own ``tasks/preflight.yml`` against localhost (``tests/support/preflight.py``),
no fleet; the fleet tests check the limits and the firewall on systemd hosts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.preflight import ANSIBLE_PLAYBOOK, run_task

LIMITS_TASK = "Assert the unit's resource limits are values systemd takes"
FIREWALL_TASK = "Assert the firewall's allow list names inventory hosts and addresses"
SECRETS = {"claude_code_gateway_master_key": "sk-" + "m" * 40, "claude_code_gateway_claude_token": "tok"}

pytestmark = pytest.mark.skipif(ANSIBLE_PLAYBOOK is None, reason="ansible-playbook is not installed")


def preflight(tmp_path: Path, task: str, provider_env: str = "", **extra: Any) -> dict[str, Any]:
    path = tmp_path / "provider.env"
    path.write_text("LITELLM_LOCAL_MODEL_COST_MAP=True\n" + provider_env)
    return run_task(tmp_path, task, **SECRETS, claude_code_gateway_provider_env_src=str(path), **extra)[0]


def sizes(result: dict[str, Any]) -> tuple[int, str, str]:
    match = re.search(r"sized for (\d+) CLI processes .*: MemoryMax=(\S+) TasksMax=(\S+)", result["msg"])
    assert match, result
    return int(match[1]), match[2], match[3]


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("provider_env", "extra_env", "expected"),
    [
        ("LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=6\n", {}, (6, "2824M", "640")),
        ("  LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=1\n", {}, (1, "1324M", "320")),
        ("", {"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "3"}, (3, "1924M", "448")),
    ],
    ids=["provider-env", "indented", "extra-env"],
)
def test_the_limits_follow_the_projects_max_concurrency(
    tmp_path: Path, provider_env: str, extra_env: dict[str, str], expected: tuple[int, str, str]
) -> None:
    result = preflight(tmp_path, LIMITS_TASK, provider_env, claude_code_gateway_extra_env=extra_env)
    assert not result.get("failed"), result
    assert sizes(result) == expected


@pytest.mark.parametrize("provider_env", ["", "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=auto\n"], ids=["unset", "auto"])
def test_auto_sizes_the_limits_with_the_providers_rule_on_the_host(tmp_path: Path, provider_env: str) -> None:
    """The host here is this machine: its CPUs (affinity) and MemTotal, as the provider reads them."""
    result = preflight(tmp_path, LIMITS_TASK, provider_env)
    assert not result.get("failed"), result
    memtotal_mb = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)[1]) // 1024  # type: ignore[index]
    concurrency = max(1, min(4 * len(os.sched_getaffinity(0)), (memtotal_mb - 1024) // 300, 32))
    assert sizes(result) == (concurrency, f"{1024 + 300 * concurrency}M", str(256 + 64 * concurrency))


def test_limits_set_by_hand_win(tmp_path: Path) -> None:
    result = preflight(
        tmp_path,
        LIMITS_TASK,
        "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=4\n",
        claude_code_gateway_memory_max="3G",
        claude_code_gateway_tasks_max="infinity",
    )
    assert not result.get("failed"), result
    assert sizes(result) == (4, "3G", "infinity")


@pytest.mark.parametrize(
    ("provider_env", "extra", "named"),
    [
        ("LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=0\n", {}, "claude_code_gateway_max_concurrency=0"),
        ("", {"claude_code_gateway_memory_max": "2 GiB"}, "claude_code_gateway_memory_max=2 GiB"),
        ("", {"claude_code_gateway_tasks_max": "lots"}, "claude_code_gateway_tasks_max=lots"),
    ],
    ids=["zero-concurrency", "memory-with-a-space", "tasks-not-a-number"],
)
def test_a_limit_systemd_would_not_take_is_refused(
    tmp_path: Path, provider_env: str, extra: dict[str, str], named: str
) -> None:
    result = preflight(tmp_path, LIMITS_TASK, provider_env, **extra)
    assert result.get("failed") is True, result
    assert named in result["msg"] and "MemoryMax= bytes with K, M, G or T" in result["msg"]


# --------------------------------------------------------------------------- firewall


def test_an_allowed_host_the_inventory_lacks_is_named(tmp_path: Path) -> None:
    result = preflight(
        tmp_path,
        FIREWALL_TASK,
        claude_code_gateway_firewall=True,
        claude_code_gateway_firewall_allow_hosts=["localhost", "lb-9"],
    )
    assert result.get("failed") is True, result
    assert "claude_code_gateway_firewall_allow_hosts names lb-9, which the inventory does not have" in result["msg"]
    assert "localhost" not in result["msg"].split("which")[0]


def test_an_allowed_address_that_is_no_address_is_named(tmp_path: Path) -> None:
    result = preflight(
        tmp_path,
        FIREWALL_TASK,
        claude_code_gateway_firewall=True,
        claude_code_gateway_firewall_allow_addresses=["10.1.2.0/24", "lb.example.com", "fd12::/64"],
    )
    assert result.get("failed") is True, result
    assert "claude_code_gateway_firewall_allow_addresses has lb.example.com, which is no IPv4" in result["msg"]
    assert "10.1.2.0/24" not in result["msg"] and "fd12::/64" not in result["msg"]


def test_addresses_and_networks_pass(tmp_path: Path) -> None:
    result = preflight(
        tmp_path,
        FIREWALL_TASK,
        claude_code_gateway_listen_host="0.0.0.0",  # the firewall's default is on: an allow list and a wide bind
        claude_code_gateway_firewall_allow_addresses=["10.0.0.0/24", "192.168.1.7", "fd00::/64", "2001:db8::5"],
    )
    assert not result.get("failed") and not result.get("skipped"), result


@pytest.mark.parametrize(
    "extra",
    [
        {"claude_code_gateway_firewall_allow_addresses": ["lb.example.com"]},  # loopback bind: no firewall
        {"claude_code_gateway_listen_host": "0.0.0.0"},  # no allow list: no firewall
        {
            "claude_code_gateway_listen_host": "0.0.0.0",
            "claude_code_gateway_firewall_allow_addresses": ["lb.example.com"],
            "claude_code_gateway_firewall": False,
        },
    ],
    ids=["loopback", "no-allow-list", "off"],
)
def test_no_firewall_no_check(tmp_path: Path, extra: dict[str, Any]) -> None:
    result = preflight(tmp_path, FIREWALL_TASK, **extra)
    assert result.get("skipped") is True, result
