"""The gateway role's preflight names the secret that is missing, and only that one.

Runs the role's own ``tasks/preflight.yml`` with ``ansible-playbook`` against localhost
(``ansible_connection: local``), no fleet: the secret checks come first and need nothing
from the host. With both secrets set the secret check passes (later checks may then fail on
this machine, which is no systemd host; that is not what is tested here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.preflight import ANSIBLE_PLAYBOOK, run_task

SECRETS_TASK = "Assert the secrets are set"
MASTER = "claude_code_gateway_master_key"
TOKEN = "claude_code_gateway_claude_token"
# The master key rule (litellm_claude_code._master_key): "sk-" and at least 32 characters.
GOOD_KEY = "sk-master-0123456789abcdefghijklm"

pytestmark = pytest.mark.skipif(ANSIBLE_PLAYBOOK is None, reason="ansible-playbook is not installed")


def run_preflight(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The result of the secrets assertion (the json callback's record of it)."""
    return run_task(tmp_path, SECRETS_TASK, **extra)[0]


def test_only_the_claude_token_missing_names_only_it(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY})
    assert result.get("failed") is True, result
    assert TOKEN in result["msg"]
    assert "CLAUDE_CODE_OAUTH_TOKEN" in result["msg"]
    assert MASTER not in result["msg"]
    assert GOOD_KEY not in json.dumps(result)


def test_only_the_master_key_missing_names_only_it(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, **{TOKEN: "sk-ant-oat01-secret-value"})
    assert result.get("failed") is True, result
    assert MASTER in result["msg"]
    assert TOKEN not in result["msg"]
    assert "sk-ant-oat01-secret-value" not in json.dumps(result)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("sk-" + "a" * 28, "31 characters"),
        ("sk-1234", "7 characters"),
        ("master-" + "a" * 40, "no sk- prefix: LiteLLM would not hash it"),
        ("Sk-" + "a" * 40, "the prefix is case-sensitive"),
        ("sk-" + "a" * 20 + " " + "b" * 20, "whitespace"),
        ("sk-" + "a" * 40 + "\n", "a trailing newline"),
    ],
)
def test_a_master_key_of_the_wrong_form_is_refused_with_what_to_change(tmp_path: Path, key: str, why: str) -> None:
    result, output = run_task(tmp_path, SECRETS_TASK, **{MASTER: key, TOKEN: "tok"})
    assert result.get("failed") is True, (why, result)
    assert f"Change {MASTER}: it must start with 'sk-' and be at least 32 characters long" in result["msg"], why
    assert "secrets.token_urlsafe(32)" in result["msg"] and "LITELLM_MASTER_KEY=" in result["msg"]
    assert f"Set {MASTER}" not in result["msg"] and TOKEN not in result["msg"]
    assert key.strip()[3:] not in output, "the key (or most of it) is in ansible's output"


@pytest.mark.parametrize("key", ["sk-" + "a" * 29, "sk-" + "Z9_-" * 20], ids=["32-characters", "80-characters"])
def test_a_master_key_of_the_right_form_passes(tmp_path: Path, key: str) -> None:
    result, output = run_task(tmp_path, SECRETS_TASK, **{MASTER: key, TOKEN: "tok"})
    assert not result.get("failed"), result
    assert key not in output


def test_both_missing_names_both(tmp_path: Path) -> None:
    result = run_preflight(tmp_path)
    assert result.get("failed") is True, result
    assert MASTER in result["msg"]
    assert TOKEN in result["msg"]


def test_an_unknown_auth_method_is_named_with_the_choices(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY, TOKEN: "tok", "claude_code_gateway_auth_method": "password"})
    assert result.get("failed") is True, result
    assert "'password'" in result["msg"]
    assert "oauth_token, api_key, auth_token" in result["msg"]
    assert MASTER not in result["msg"]


def test_both_set_passes_the_secret_check(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY, TOKEN: "tok"})
    assert not result.get("failed"), result


# --------------------------------------------------------------------------- the clouds

CLOUD = "claude_code_gateway_cloud_credentials"
HOST_ROLE = "claude_code_gateway_cloud_host_role"


@pytest.mark.parametrize("method", ["bedrock", "vertex"])
def test_a_cloud_without_credentials_names_the_file_and_the_hosts_role(tmp_path: Path, method: str) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY, "claude_code_gateway_auth_method": method})
    assert result.get("failed") is True, result
    assert CLOUD in result["msg"] and HOST_ROLE in result["msg"] and f"auth method {method}" in result["msg"]
    assert (TOKEN in result["msg"]) == (method == "bedrock")  # a Bedrock API key is the third way
    assert MASTER not in result["msg"]


@pytest.mark.parametrize(
    ("method", "credential"),
    [
        ("bedrock", {CLOUD: "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t-value\n"}),
        ("bedrock", {TOKEN: "ABSK-bedrock-api-key-value"}),
        ("bedrock", {HOST_ROLE: True}),
        ("vertex", {CLOUD: '{"type": "service_account", "private_key": "s3cr3t-value"}'}),
        ("vertex", {HOST_ROLE: True}),
    ],
    ids=["bedrock-file", "bedrock-api-key", "bedrock-role", "vertex-file", "vertex-role"],
)
def test_a_cloud_with_one_of_its_credentials_passes(tmp_path: Path, method: str, credential: dict[str, Any]) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY, "claude_code_gateway_auth_method": method, **credential})
    assert not result.get("failed"), result
    assert "s3cr3t-value" not in json.dumps(result) and "ABSK-bedrock-api-key-value" not in json.dumps(result)


def test_a_token_is_no_vertex_credential(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, **{MASTER: GOOD_KEY, TOKEN: "tok", "claude_code_gateway_auth_method": "vertex"})
    assert result.get("failed") is True, result
    assert CLOUD in result["msg"] and TOKEN not in result["msg"]


# --------------------------------------------------------------------------- extra environment

ENV_TASK = "Assert claude_code_gateway_extra_env overrides nothing the environment files set"


def check_extra_env(tmp_path: Path, provider_env: str, extra_env: dict[str, str]) -> tuple[dict[str, Any], Path]:
    path = tmp_path / "provider.env"
    path.write_text(provider_env)
    secrets = {MASTER: GOOD_KEY, TOKEN: "tok"}
    extra = {"claude_code_gateway_provider_env_src": str(path), "claude_code_gateway_extra_env": extra_env}
    return run_task(tmp_path, ENV_TASK, **secrets, **extra)[0], path


def test_extra_env_that_the_provider_env_file_would_override_is_refused(tmp_path: Path) -> None:
    result, path = check_extra_env(
        tmp_path,
        "# settings\nLITELLM_CLAUDE_CODE_REQUEST_TIMEOUT=600\n  LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=4\n",
        {
            "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT": "30",
            "LITELLM_MASTER_KEY": "sk-other",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        },
    )
    assert result.get("failed") is True, result
    assert "sets LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT, LITELLM_MASTER_KEY, which" in result["msg"], result["msg"]
    assert str(path) in result["msg"] and "config/provider.env" in result["msg"]


def test_extra_env_of_its_own_passes(tmp_path: Path) -> None:
    result, _ = check_extra_env(
        tmp_path,
        "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT=600\n# LITELLM_CLAUDE_CODE_API_TIMEOUT_MS=1\n",
        {"LITELLM_CLAUDE_CODE_API_TIMEOUT_MS": "4000", "ANTHROPIC_BASE_URL": "http://x"},
    )
    assert not result.get("failed"), result
