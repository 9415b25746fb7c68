"""The gateway role's preflight refuses key records that are not hashes, naming the entry, never the key.

Runs the role's ``tasks/preflight.yml`` against localhost like ``test_preflight_local.py``; the
key checks come right after the secret checks and need nothing from the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import preflight
from tests.support.preflight import ANSIBLE_PLAYBOOK

pytestmark = pytest.mark.skipif(ANSIBLE_PLAYBOOK is None, reason="ansible-playbook is not installed")

KEYS_TASK = "Assert the key records are hashes with owners and limits"
SECRETS_TASK = "Assert the secrets are set"
SECRETS = {
    "claude_code_gateway_master_key": "sk-master-0123456789abcdefghijklm",  # sk- and at least 32 characters
    "claude_code_gateway_claude_token": "tok",
}
RAW_KEY = "sk-cc-" + "A1b2C3d4" * 5
GOOD = {"name": "alice", "sha256": "ab" * 32, "team": "platform", "models": ["sonnet"], "rpm": 3, "revoked": False}


def run_task(tmp_path: Path, task: str, **extra: Any) -> tuple[dict[str, Any], str]:
    """``task``'s record with both secrets set, and the whole output."""
    return preflight.run_task(tmp_path, task, **{**SECRETS, **extra})


def test_good_records_pass(tmp_path: Path) -> None:
    result, _ = run_task(tmp_path, KEYS_TASK, claude_code_gateway_keys=[GOOD, {"name": "bob", "sha256": "CD" * 32}])
    assert not result.get("failed"), result


def test_no_records_pass(tmp_path: Path) -> None:
    result, _ = run_task(tmp_path, KEYS_TASK, claude_code_gateway_keys=[])
    assert not result.get("failed"), result


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([GOOD, {"name": "bob"}], "entry 2 ('bob') has no sha256"),
        ([{**GOOD, "sha256": RAW_KEY}], "entry 1 ('alice'): sha256 is not a SHA-256 hex digest"),
        ([{"name": "carol", "key": RAW_KEY}], "entry 1 ('carol') holds a key"),
        ([{"name": RAW_KEY, "sha256": "ab" * 32}], "entry 1 needs a name"),
        ([GOOD, {**GOOD, "sha256": "cd" * 32}], "entry 2 ('alice'): the name appears twice"),
        ([{**GOOD, "rpm": 0}], "entry 1 ('alice'): rpm must be a positive whole number"),
        ([{**GOOD, "parallel": "2"}], "parallel must be a positive whole number"),
        ([{**GOOD, "models": "sonnet"}], "models must be a list"),
        ([{**GOOD, "colour": "red"}], "has unknown fields: colour"),
        (["sk-cc-abc"], "entry 1 is not a mapping"),
        ({"name": "alice"}, "must be a list of key records"),
    ],
)
def test_bad_records_are_refused_by_entry_without_the_key(tmp_path: Path, records: Any, expected: str) -> None:
    result, output = run_task(tmp_path, KEYS_TASK, claude_code_gateway_keys=records)
    assert result.get("failed") is True, result
    assert expected in result["msg"], result["msg"]
    assert RAW_KEY not in output and "sk-cc-abc" not in output


def test_a_redis_host_needs_its_password(tmp_path: Path) -> None:
    result, _ = run_task(tmp_path, SECRETS_TASK, claude_code_gateway_redis_host="redis-1")
    assert result.get("failed") is True, result
    assert "claude_code_gateway_redis_password" in result["msg"] and "redis-1" in result["msg"]
    assert "claude_code_gateway_master_key" not in result["msg"]
    ok, output = run_task(
        tmp_path,
        SECRETS_TASK,
        claude_code_gateway_redis_host="redis-1",
        claude_code_gateway_redis_password="redis-secret-0123456789",
    )
    assert not ok.get("failed"), ok
    assert "redis-secret-0123456789" not in output
