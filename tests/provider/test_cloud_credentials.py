"""Amazon Bedrock and Google Vertex AI credentials: resolution and the CLI's allow-list.

No CLI runs here but in the last test, which reads the bundled binary to check that every
variable the provider passes for a cloud is one the CLI reads. The end-to-end tests through the
proxy are in test_cloud_proxy.py.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

import pytest
from litellm_claude_code._cli import PASSTHROUGH_VARIABLES, Launch, Workspace, build_environment
from litellm_claude_code._credentials import (
    BEDROCK,
    BEDROCK_API_KEY,
    BEDROCK_VARIABLES,
    VERTEX,
    VERTEX_REGION_PREFIX,
    VERTEX_VARIABLES,
    resolve_credential,
)
from litellm_claude_code._errors import ConfigurationError
from litellm_claude_code._settings import Settings

from tests.support.stack import bundled_claude

AWS_FILE = "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = secret-must-not-leak\n"
API_KEY = "sk-ant-api03-must-lose-to-the-cloud"


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as info:
        resolve_credential(env)
    assert info.value.status_code == 500
    return str(info.value)


@pytest.fixture
def aws_file(tmp_path: Path) -> Path:
    path = tmp_path / "aws-credentials"
    path.write_text(AWS_FILE)
    return path


@pytest.fixture
def google_file(tmp_path: Path) -> Path:
    path = tmp_path / "google.json"
    path.write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----must-not-leak"}')
    return path


# --------------------------------------------------------------------------- Bedrock


def test_bedrock_with_a_shared_credentials_file(aws_file: Path) -> None:
    env = {
        BEDROCK: "1",
        "AWS_REGION": "eu-west-1",
        "AWS_SHARED_CREDENTIALS_FILE": str(aws_file),
        "AWS_PROFILE": "gateway",
        "ANTHROPIC_API_KEY": API_KEY,  # a selected cloud wins over any token
        "AWS_SECRET_ACCESS_KEY": "static-keys-in-the-environment-are-not-passed",
        "LITELLM_MASTER_KEY": "sk-master",
    }
    credential = resolve_credential(env)
    assert credential.variable == BEDROCK and credential.cloud
    assert credential.environment == {
        BEDROCK: "1",
        "AWS_REGION": "eu-west-1",
        "AWS_SHARED_CREDENTIALS_FILE": str(aws_file),
        "AWS_PROFILE": "gateway",
    }
    assert "AWS_SHARED_CREDENTIALS_FILE" in credential.setting and str(aws_file) in credential.setting
    # Neither the file's keys nor its path's content appear in what identifies it in logs.
    assert "secret-must-not-leak" not in credential.value + credential.fingerprint + repr(credential)


def test_a_rotated_credentials_file_is_another_credential(aws_file: Path) -> None:
    env = {BEDROCK: "true", "AWS_REGION": "us-east-1", "AWS_SHARED_CREDENTIALS_FILE": str(aws_file)}
    before = resolve_credential(env)
    assert resolve_credential(env).value == before.value  # read again, unchanged: the same processes
    aws_file.write_text(AWS_FILE.replace("secret-must-not-leak", "rotated-secret"))
    assert resolve_credential(env).value != before.value  # new processes; the old ones retire


def test_bedrock_with_the_hosts_role() -> None:
    credential = resolve_credential({BEDROCK: "1", "AWS_DEFAULT_REGION": "us-west-2"})
    assert credential.environment == {BEDROCK: "1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert "host's role" in credential.setting


def test_bedrock_api_key_from_a_file_is_passed_and_kept_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "bedrock-key"
    key_file.write_text("ABSKbedrock-api-key-value\n")
    env = {BEDROCK: "1", "AWS_REGION": "us-east-1", f"{BEDROCK_API_KEY}_FILE": str(key_file)}
    credential = resolve_credential(env)
    assert credential.environment[BEDROCK_API_KEY] == "ABSKbedrock-api-key-value"
    assert credential.secrets == ("ABSKbedrock-api-key-value",)
    assert "ABSKbedrock-api-key-value" not in repr(credential) + credential.value + credential.setting
    key_file.write_text("ABSKrotated\n")
    assert resolve_credential(env).environment[BEDROCK_API_KEY] == "ABSKrotated"


def test_bedrock_needs_a_region() -> None:
    message = refused({BEDROCK: "1"})
    assert "AWS_REGION" in message


def test_an_unreadable_cloud_file_is_named_without_its_content(tmp_path: Path) -> None:
    message = refused(
        {BEDROCK: "1", "AWS_REGION": "us-east-1", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "missing")}
    )
    assert "AWS_SHARED_CREDENTIALS_FILE" in message and "missing" in message and "service user" in message
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    message = refused(
        {
            VERTEX: "1",
            "CLOUD_ML_REGION": "us-east5",
            "ANTHROPIC_VERTEX_PROJECT_ID": "p",
            "GOOGLE_APPLICATION_CREDENTIALS": str(empty),
        }
    )
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message and "empty" in message


# --------------------------------------------------------------------------- Vertex


def test_vertex_with_a_credentials_file(google_file: Path) -> None:
    env = {
        VERTEX: "1",
        "CLOUD_ML_REGION": "europe-west1",
        "ANTHROPIC_VERTEX_PROJECT_ID": "team-project",
        "GOOGLE_APPLICATION_CREDENTIALS": str(google_file),
        "VERTEX_REGION_CLAUDE_4_5_SONNET": "us-east5",
        "VERTEX_REGION_SOMETHING_ELSE": "not-a-claude-model-region",
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-loses-to-the-cloud",
    }
    credential = resolve_credential(env)
    assert credential.variable == VERTEX
    assert credential.environment == {
        VERTEX: "1",
        "CLOUD_ML_REGION": "europe-west1",
        "ANTHROPIC_VERTEX_PROJECT_ID": "team-project",
        "GOOGLE_APPLICATION_CREDENTIALS": str(google_file),
        "VERTEX_REGION_CLAUDE_4_5_SONNET": "us-east5",
    }
    assert "must-not-leak" not in credential.value + repr(credential)
    google_file.write_text('{"type": "service_account", "private_key": "rotated"}')
    assert resolve_credential(env).value != credential.value


def test_vertex_with_the_hosts_service_account() -> None:
    credential = resolve_credential({VERTEX: "1", "CLOUD_ML_REGION": "global", "ANTHROPIC_VERTEX_PROJECT_ID": "p"})
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in credential.environment
    assert "service account" in credential.setting


def test_vertex_names_what_is_missing() -> None:
    message = refused({VERTEX: "1"})
    assert "CLOUD_ML_REGION and ANTHROPIC_VERTEX_PROJECT_ID are not" in message
    assert "ANTHROPIC_VERTEX_PROJECT_ID is not" in refused({VERTEX: "1", "CLOUD_ML_REGION": "us-east5"})


def test_one_cloud_at_a_time_and_a_false_selector_is_no_selector() -> None:
    assert "unset one" in refused({BEDROCK: "1", VERTEX: "1", "AWS_REGION": "x"})
    credential = resolve_credential({BEDROCK: "0", VERTEX: "", "ANTHROPIC_API_KEY": API_KEY})
    assert credential.variable == "ANTHROPIC_API_KEY" and not credential.cloud


def test_nothing_set_mentions_the_clouds() -> None:
    message = refused({})
    assert BEDROCK in message and VERTEX in message and "docs/credentials.md" in message


# --------------------------------------------------------------------------- the CLI's environment


def test_the_cli_gets_the_clouds_variables_and_nothing_else(
    tmp_path: Path, aws_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "LITELLM_MASTER_KEY": "sk-master-must-not-leak",
        "AWS_ACCESS_KEY_ID": "AKIASTATIC",
        "AWS_SECRET_ACCESS_KEY": "static-secret-must-not-leak",
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "GOOGLE_APPLICATION_CREDENTIALS": "/not/for/bedrock.json",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(state_dir=tmp_path / "state")
    env_in = {BEDROCK: "1", "AWS_REGION": "eu-west-1", "AWS_SHARED_CREDENTIALS_FILE": str(aws_file)}
    launch = Launch(resolve_credential(env_in))
    env = build_environment(settings, launch, Workspace.create(settings.state_dir), "/opt/claude")
    assert {name: env[name] for name in env_in} == {**env_in, BEDROCK: "1"}
    assert env["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    for name in ("LITELLM_MASTER_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ANTHROPIC_API_KEY"):
        assert name not in env and name not in env["LCC_KEEP"].split()
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env  # Vertex's variables are not Bedrock's
    assert "must-not-leak" not in " ".join(env.values())


def test_every_cloud_variable_is_one_the_bundled_cli_reads() -> None:
    """The allow-list passes only names the CLI (the binary the SDK bundles) knows."""
    names = {
        *BEDROCK_VARIABLES,
        *VERTEX_VARIABLES,
        BEDROCK,
        VERTEX,
        BEDROCK_API_KEY,
        *(n for n in PASSTHROUGH_VARIABLES if n.startswith("ANTHROPIC_DEFAULT_")),
    }
    with bundled_claude().open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as binary:
        # In the CLI's JavaScript a variable is read as process.env.NAME, env.NAME or by its
        # quoted name (lists of names it forwards or checks): either form, whole name only.
        missing = sorted(
            name
            for name in names
            if binary.find(b'"' + name.encode() + b'"') < 0
            and re.search(rb"env\." + name.encode() + rb"(?![A-Za-z0-9_])", binary) is None
        )
        regions = set(re.findall(rb'"(' + VERTEX_REGION_PREFIX.encode() + rb'[A-Z0-9_]*[A-Z0-9])"', binary))
    assert not missing, f"the CLI does not read {missing}"
    assert len(regions) >= 10  # the per-model Vertex regions the prefix stands for


def test_a_refusal_by_the_cloud_names_the_clouds_credential(aws_file: Path) -> None:
    from litellm_claude_code._errors import from_upstream_status

    for env in (
        {BEDROCK: "1", "AWS_REGION": "us-east-1", "AWS_SHARED_CREDENTIALS_FILE": str(aws_file)},
        {BEDROCK: "1", "AWS_REGION": "us-east-1", BEDROCK_API_KEY: "ABSK-key"},
        {BEDROCK: "1", "AWS_REGION": "us-east-1"},
        {VERTEX: "1", "CLOUD_ML_REGION": "us-east5", "ANTHROPIC_VERTEX_PROJECT_ID": "p"},
    ):
        credential = resolve_credential(env)
        message = str(from_upstream_status(403, "", credential.setting, cloud=credential.cloud))
        assert message.startswith("The cloud rejected the credentials (HTTP 403)"), message
        assert "claude setup-token" not in message
    token = resolve_credential({"ANTHROPIC_API_KEY": API_KEY})
    refused = str(from_upstream_status(401, "", token.setting, cloud=token.cloud))
    assert refused.startswith("Anthropic rejected the credentials"), refused
