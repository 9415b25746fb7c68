"""Fast checks of the project's files (no Docker): `make test`."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import project
import pytest
import yaml
from conftest import PROJECT, PROVIDER, ROOT, SLUG, TOKEN_ENV, model_aliases

SKIP_DIRS = {".venv", "wheelhouse", "provider", ".git", ".pytest_cache", ".lock-venv"}


def project_files(pattern: str) -> list[Path]:
    return [p for p in ROOT.rglob(pattern) if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)]


@pytest.mark.parametrize("path", project_files("*.y*ml"), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    list(yaml.safe_load_all(path.read_text()))


def test_proxy_config_loads_in_litellm() -> None:
    """LiteLLM's own loader reads the config, imports the handler and builds the router."""
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from litellm.proxy.proxy_server import ProxyConfig
        router, models, general = asyncio.run(
            ProxyConfig().load_config(router=None, config_file_path=sys.argv[1])
        )
        print(json.dumps(sorted(m["model_name"] for m in models)))
        """
    )
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": "sk-config-test-0123456789abcdefghijkl",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "provider" / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "config" / "litellm.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert [name for name in loaded if "*" not in name] == sorted(model_aliases())
    # Claude's full ids (as Claude Code sends them) are served too, by wildcard entries.
    assert [name for name in loaded if "*" in name], loaded


def test_proxy_config_contract() -> None:
    config = yaml.safe_load((ROOT / "config" / "litellm.yaml").read_text())
    assert config["litellm_settings"]["custom_provider_map"] == [
        {"provider": PROVIDER, "custom_handler": "litellm_claude_code.handler"}
    ]
    assert config["router_settings"]["num_retries"] == 0
    assert config["router_settings"]["disable_cooldowns"] is True
    general = config["general_settings"]
    assert general["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert general["custom_auth"] == "litellm_claude_code.proxy_auth.user_api_key_auth"
    assert model_aliases(), "no model alias served by the provider"


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unit the gateway role installs, rendered from the role's template and group_vars."""
    return project.render_unit(tmp_path_factory.mktemp("unit") / f"{SLUG}.service")


def test_unit_file_contract(unit: Path) -> None:
    text = unit.read_text()
    for line in (
        f"User={SLUG}",
        f"StateDirectory={SLUG}",
        f"EnvironmentFile=/etc/{SLUG}/provider.env",
        f"EnvironmentFile=/etc/{SLUG}/secrets.env",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    if PROJECT.cloud:
        # No credentials file in secrets.env here: the CLI uses the host's role, and no secret
        # (nor the cloud's settings, which provider.env carries) is on an Environment= line.
        assert "_FILE=" not in text
        assert f"{TOKEN_ENV}=" not in text
        assert "the CLI uses the host's" in text
    else:
        line = f"Environment={TOKEN_ENV}_FILE=/etc/{SLUG}/credentials/{TOKEN_ENV}"
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert re.search(
        rf"^ExecStart=/opt/{SLUG}/venv/bin/litellm --config /etc/{SLUG}/litellm.yaml ", text, re.M
    )


def test_provider_settings_file() -> None:
    """config/provider.env: KEY=VALUE lines that systemd, docker and make all read, no secret."""
    settings = project.provider_env()
    assert settings["LITELLM_CLAUDE_CODE_DEFAULT_MODEL"] in model_aliases().values()
    for name, value in settings.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert not re.search(r"KEY|TOKEN|SECRET|PASSWORD", name), f"{name} looks like a secret"
        assert not value.startswith(("'", '"')), f"{name}: no quotes (docker --env-file keeps them)"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_unit_exposure_is_ok(unit: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0, done.stdout


def test_secrets_stay_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "secrets.env" in ignored
    secrets_file = ROOT / "secrets.env"
    if secrets_file.exists():
        assert stat.S_IMODE(secrets_file.stat().st_mode) & 0o077 == 0, "secrets.env must be 0600"
    answers = (ROOT / ".copier-answers.yml").read_text()
    assert "sk-" not in answers


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_secrets(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "config", tmp_path / "config")  # the Makefile includes provider.env
    run = ["make", "-s", "secrets", f"PYTHON={sys.executable}"]
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True)
    secrets_file = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in secrets_file.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{40,}", values["LITELLM_MASTER_KEY"])
    assert values[TOKEN_ENV] == ""
    # A second run keeps the file (and the token a user put in it).
    before = secrets_file.read_text()
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True)
    assert secrets_file.read_text() == before
