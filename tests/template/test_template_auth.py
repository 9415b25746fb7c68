"""Each ``auth_method`` choice renders what it needs, and its credential stays out of every file.

The token methods (oauth_token, api_key) are the render suite's answer sets; here are the
clouds: Bedrock and Vertex AI put their settings in config/provider.env, name the credentials
file from secrets.env, and the role's unit points the CLI at the copy on the host (or at
nothing: the host's role).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.template import RenderFn, render, render_role_unit

CLOUDS: dict[str, dict[str, Any]] = {
    "bedrock": {"auth_method": "bedrock", "cloud_region": "us-west-2", "project_slug": "bedrock-gw"},
    "vertex": {
        "auth_method": "vertex",
        "cloud_region": "europe-west1",
        "vertex_project_id": "acme-claude-prod",
        "project_slug": "vertex-gw",
        "model_aliases": {"sonnet": "claude-sonnet-4-5@20250929", "haiku": "haiku"},
    },
}
SETTINGS = {
    "bedrock": {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-west-2"},
    "vertex": {
        "CLAUDE_CODE_USE_VERTEX": "1",
        "CLOUD_ML_REGION": "europe-west1",
        "ANTHROPIC_VERTEX_PROJECT_ID": "acme-claude-prod",
    },
}
FILE_VARIABLE = {"bedrock": "AWS_SHARED_CREDENTIALS_FILE", "vertex": "GOOGLE_APPLICATION_CREDENTIALS"}
HOST_FILE = {"bedrock": "aws-credentials", "vertex": "google-credentials.json"}
SECRET = {
    "bedrock": "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = cloud-secret-must-not-leak\n",
    "vertex": '{"type": "service_account", "private_key": "cloud-secret-must-not-leak"}',
}

_rendered: dict[str, Path] = {}


@pytest.fixture(params=list(CLOUDS), ids=list(CLOUDS))
def cloud(request: pytest.FixtureRequest, render_project: RenderFn) -> tuple[str, Path]:
    name = str(request.param)
    if name not in _rendered:
        _rendered[name] = render_project(CLOUDS[name], name=f"auth-{name}")
    return name, _rendered[name]


def settings_of(project: Path) -> dict[str, str]:
    lines = (project / "config" / "provider.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_provider_env_selects_the_cloud_and_holds_no_secret(cloud: tuple[str, Path]) -> None:
    name, project = cloud
    settings = settings_of(project)
    assert SETTINGS[name].items() <= settings.items()
    other = "CLAUDE_CODE_USE_VERTEX" if name == "bedrock" else "CLAUDE_CODE_USE_BEDROCK"
    assert other not in settings
    assert not any(key.endswith(("_FILE", "_TOKEN", "_KEY", "CREDENTIALS")) for key in settings)
    # The model-pinning hint is there, commented out.
    assert re.search(r"^#\s+ANTHROPIC_DEFAULT_SONNET_MODEL=", (project / "config" / "provider.env").read_text(), re.M)


def test_answers_record_the_cloud_settings(cloud: tuple[str, Path]) -> None:
    name, project = cloud
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["auth_method"] == name
    assert answers["cloud_region"] == CLOUDS[name]["cloud_region"]
    assert ("vertex_project_id" in answers) == (name == "vertex")
    for computed in ("token_env", "token_hint", "cloud_credentials_file"):
        assert computed not in answers


def test_make_secrets_asks_for_the_credentials_files_path(cloud: tuple[str, Path], tmp_path: Path) -> None:
    name, project = cloud
    for item in ("Makefile", "config"):
        (tmp_path / item).symlink_to(project / item)
    subprocess.run(["make", "-s", "secrets", f"PYTHON={sys.executable}"], cwd=tmp_path, check=True, capture_output=True)
    text = (tmp_path / "secrets.env").read_text()
    assert re.search(rf"^{FILE_VARIABLE[name]}=$", text, re.M)
    assert "the path of" in text and "host" in text
    assert ("# AWS_BEARER_TOKEN_BEDROCK=" in text) == (name == "bedrock")


def test_the_unit_points_the_cli_at_the_hosts_copy_of_the_file(cloud: tuple[str, Path], tmp_path: Path) -> None:
    name, project = cloud
    slug = CLOUDS[name]["project_slug"]
    local = tmp_path / "my-cloud-credentials"
    local.write_text(SECRET[name])
    secrets_env = project / "secrets.env"
    secrets_env.write_text(f"LITELLM_MASTER_KEY=sk-master-0123456789\n{FILE_VARIABLE[name]}={local}\n")
    # Rendered under the project, so the playbook finds its secrets.env as `make deploy` does.
    dest = project / "build" / f"{slug}.service"
    try:
        unit = render_role_unit(project, dest).read_text()
    finally:
        secrets_env.unlink()
        dest.unlink(missing_ok=True)
    assert re.search(rf"^Environment={FILE_VARIABLE[name]}=/etc/{slug}/credentials/{HOST_FILE[name]}$", unit, re.M)
    assert f"/etc/{slug}/credentials/{HOST_FILE[name]}  0640 root:{slug}" in unit
    # no token: the file is the credential (the key store's file holds hashes, no credential)
    assert not re.search(r"^Environment=(?!LITELLM_CLAUDE_CODE_KEYS_FILE=)\w+_(TOKEN|KEY)\w*_FILE=", unit, re.M)
    assert "cloud-secret-must-not-leak" not in unit and str(local) not in unit
    # The cloud's settings come from provider.env (EnvironmentFile=), not from Environment= lines.
    assert not re.search(r"^Environment=(CLAUDE_CODE_USE_|AWS_REGION|CLOUD_ML_REGION)", unit, re.M)


def test_the_generated_readme_links_the_credentials_guide(cloud: tuple[str, Path]) -> None:
    name, project = cloud
    readme = (project / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "credentials.md" in first_screen
    assert FILE_VARIABLE[name] in readme and ("Bedrock" if name == "bedrock" else "Vertex AI") in readme


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"auth_method": "vertex"}, 'vertex_project_id "" is not a Google Cloud project ID'),
        ({"auth_method": "vertex", "vertex_project_id": "Bad_Project"}, "is not a Google Cloud project ID"),
        ({"auth_method": "bedrock", "cloud_region": "US East"}, 'cloud_region "US East" is not a region name'),
    ],
)
def test_cloud_answers_are_validated(template_repo: Path, tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        render(template_repo, tmp_path / "gateway", data)
    assert message in str(info.value)


def test_a_token_method_has_no_cloud_settings(render_project: RenderFn) -> None:
    project = render_project({"auth_method": "api_key", "project_slug": "token-gw"}, name="auth-token")
    settings = settings_of(project)
    assert not any(key.startswith("CLAUDE_CODE_USE_") for key in settings)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert "cloud_region" not in answers and "vertex_project_id" not in answers
