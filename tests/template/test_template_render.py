"""Rendering the template: layout, YAML, LiteLLM's loader, units, Ansible, idempotence."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from litellm_claude_code._master_key import check_master_key

from tests.support.template import ANSWER_SETS, REPO_ROOT, RenderFn, render_role_unit

BIN = Path(sys.executable).parent
SKIP_DIRS = {".git", "provider", "wheelhouse", ".venv"}
QUESTIONS = {
    k
    for k, v in yaml.safe_load((REPO_ROOT / "copier.yml").read_text()).items()
    if not k.startswith("_") and isinstance(v, dict) and v.get("when") is not False
}


def answers_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def slug_of(project: Path) -> str:
    return str(answers_of(project)["project_slug"])


def tool(name: str) -> str:
    """A tool from this virtualenv, else from PATH."""
    candidate = BIN / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed; required under CI=true")
    return found


def files_of(project: Path, pattern: str = "*") -> list[Path]:
    return sorted(
        p for p in project.rglob(pattern) if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(project).parts)
    )


def snapshot(project: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(project)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


# --------------------------------------------------------------------------- layout


def test_layout(project: Path) -> None:
    for rel in (
        ".copier-answers.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".yamllint",
        ".dockerignore",
        "README.md",
        "Makefile",
        "Dockerfile",
        "pyproject.toml",
        "requirements.txt",
        "requirements.lock",
        "requirements-dev.txt",
        "config/litellm.yaml",
        "config/provider.env",
        "scripts/smoke.py",
        "tests/conftest.py",
        "tests/test_gateway.py",
        "tests/test_project.py",
        "tests/test_live.py",
        "wheelhouse/README.md",
        "provider/pyproject.toml",
    ):
        assert (project / rel).is_file(), rel
    assert not list(project.rglob("*.jinja")), "unrendered .jinja files"
    assert not list(project.rglob("__pycache__"))


def test_provider_is_carried_as_real_files(project: Path) -> None:
    """template/provider is a symlink to ../provider: the project gets a real copy of it."""
    assert (REPO_ROOT / "template" / "provider").is_symlink()
    carried = project / "provider"
    assert carried.is_dir() and not carried.is_symlink()
    source = REPO_ROOT / "provider"
    for file in source.rglob("*"):
        parts = file.relative_to(source).parts
        if file.is_file() and not {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"} & set(parts):
            if file.suffix in {".pyc", ".pyo"}:
                continue
            assert (carried / file.relative_to(source)).read_bytes() == file.read_bytes(), file


def test_answers_file_records_answers_and_no_secret(project: Path, answers: dict[str, Any]) -> None:
    recorded = answers_of(project)
    for key, value in answers.items():
        assert recorded[key] == value, key
    assert set(recorded) - {"_commit", "_src_path"} <= QUESTIONS
    for key in recorded:
        assert not re.search(r"token|secret|password|master_key", key), key
    text = (project / ".copier-answers.yml").read_text()
    assert "sk-" not in text
    assert "token_env" not in text  # computed values are not recorded


def test_requirements_pin_litellm_and_sdk(project: Path) -> None:
    requirements = (project / "requirements.txt").read_text()
    assert re.search(r"^litellm\[proxy\]==\d+\.\d+\.\d+$", requirements, re.M)
    assert re.search(r"^claude-agent-sdk==\d+\.\d+\.\d+$", requirements, re.M)
    lock = {  # the hashed lock: `name==version \` lines, each followed by its hashes
        line.split("==")[0].lower(): line.split("==")[1].split()[0]
        for line in (project / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for name in ("litellm", "claude-agent-sdk"):
        pinned = re.search(rf"^{re.escape(name)}(\[\w+\])?==(\S+)$", requirements, re.M)
        assert pinned and lock[name] == pinned.group(2), name


def test_lock_covers_the_provider_dependencies(project: Path) -> None:
    import tomllib

    pyproject = tomllib.loads((project / "provider" / "pyproject.toml").read_text())
    locked = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in (project / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    for requirement in pyproject["project"]["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=~!;]", requirement)[0]).lower()
        assert name in locked, f"{name} (a provider dependency) is missing from requirements.lock"


# --------------------------------------------------------------------------- YAML


def test_every_yaml_parses(project: Path) -> None:
    found = files_of(project, "*.y*ml")
    assert found
    for path in found:
        list(yaml.safe_load_all(path.read_text()))


def test_yamllint_clean(project: Path) -> None:
    done = subprocess.run([tool("yamllint"), "--strict", "."], cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_is_ruff_clean(project: Path) -> None:
    ruff = tool("ruff")
    for args in (["check", "scripts", "tests"], ["format", "--check", "scripts", "tests"]):
        done = subprocess.run([ruff, *args], cwd=project, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- proxy config


def test_proxy_config_loads_in_litellms_loader(project: Path) -> None:
    """LiteLLM's ProxyConfig.load_config reads it, imports the handler and the auth hook, and
    builds a router with exactly the aliases."""
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        import litellm
        from litellm.proxy import proxy_server
        router, models, general = asyncio.run(
            proxy_server.ProxyConfig().load_config(router=None, config_file_path=sys.argv[1])
        )
        print(json.dumps({
            "models": {m["model_name"]: m["litellm_params"]["model"] for m in models},
            "custom_auth": proxy_server.user_custom_auth is not None,
            "master_key": proxy_server.master_key,
            "providers": [p["provider"] for p in litellm.custom_provider_map],
            "router_retries": router.num_retries,
            "function_calling": {
                m["model_name"]: (m.get("model_info") or {}).get("supports_function_calling") for m in models
            },
        }))
        """
    )
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": "sk-loader-test-0123456789abcdefghijkl",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(project / "provider" / "src"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(project / "config" / "litellm.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    recorded = answers_of(project)
    provider = recorded["provider_name"]
    # The aliases, then Claude's full ids as Claude Code sends them: passed through, or on a cloud
    # each family to the CLI's alias for it.
    if recorded.get("auth_method") in ("bedrock", "vertex"):
        ids = {f"claude-{family}-*": f"{provider}/{family}" for family in ("haiku", "opus", "sonnet")}
    else:
        ids = {"claude-*": f"{provider}/claude-*"}
    assert loaded["models"] == {**{a: f"{provider}/{m}" for a, m in recorded["model_aliases"].items()}, **ids}
    assert loaded["custom_auth"] is True
    assert loaded["master_key"] == "sk-loader-test-0123456789abcdefghijkl"
    assert loaded["providers"] == [provider]
    assert loaded["router_retries"] == 0
    # Client tools work through every alias, and the proxy says so (model_info).
    assert loaded["function_calling"] == {name: True for name in loaded["models"]}


def test_proxy_config_settings(project: Path) -> None:
    config = yaml.safe_load((project / "config" / "litellm.yaml").read_text())
    recorded = answers_of(project)
    assert config["router_settings"]["num_retries"] == 0
    assert config["router_settings"]["disable_cooldowns"] is True
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["litellm_settings"]["request_timeout"] > recorded["request_timeout"]
    assert config["litellm_settings"]["custom_provider_map"][0]["custom_handler"] == ("litellm_claude_code.handler")


def test_proxy_config_declares_reasoning_and_the_drop_params_answer(project: Path) -> None:
    """Each alias takes reasoning_effort and thinking; drop_params is the answer, and the comment says so."""
    text = (project / "config" / "litellm.yaml").read_text()
    config = yaml.safe_load(text)
    drop = answers_of(project).get("drop_unsupported_params", False)
    assert config["litellm_settings"]["drop_params"] is drop
    assert ("dropped, and the provider logs their names" in text) is drop
    assert ("refused with a 400 naming them" in text) is not drop
    for entry in config["model_list"]:
        assert set(entry["litellm_params"]["allowed_openai_params"]) == {"reasoning_effort", "thinking"}


# --------------------------------------------------------------------------- systemd


_units: dict[Path, Path] = {}


def unit_of(project: Path) -> Path:
    """The unit the gateway role installs for this project (rendered once per project)."""
    if project not in _units:
        _units[project] = render_role_unit(project, project.parent / f"{slug_of(project)}.service")
    return _units[project]


def provider_env_of(project: Path) -> dict[str, str]:
    lines = (project / "config" / "provider.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_provider_settings_are_written_once(project: Path) -> None:
    """config/provider.env holds them; the Makefile, the image and the unit only point at it."""
    recorded = answers_of(project)
    settings = provider_env_of(project)
    assert settings["LITELLM_CLAUDE_CODE_DEFAULT_MODEL"] == recorded["model_aliases"][recorded["default_model"]]
    assert settings["LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT"] == str(recorded["request_timeout"])
    if str(recorded["max_concurrency"]).lower() == "auto":
        assert "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY" not in settings
    else:
        assert settings["LITELLM_CLAUDE_CODE_MAX_CONCURRENCY"] == str(recorded["max_concurrency"])
    assert settings["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    for rel in ("Makefile", "Dockerfile", "tests/conftest.py", "scripts/smoke.py"):
        text = (project / rel).read_text()
        for name in ("DEFAULT_MODEL", "MAX_CONCURRENCY", "REQUEST_TIMEOUT"):
            assert f"LITELLM_CLAUDE_CODE_{name}" not in text, f"{rel} repeats LITELLM_CLAUDE_CODE_{name}"
    assert "include config/provider.env" in (project / "Makefile").read_text()
    # Paths the role owns (its state directory, its key store) are the only provider variables in the unit.
    assert not re.search(
        r"^Environment=\"?LITELLM_CLAUDE_CODE_(?!STATE_DIR=|KEYS_FILE=)", unit_of(project).read_text(), re.M
    )


def test_make_exports_the_provider_settings(project: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed; required under CI=true")
    done = subprocess.run(
        [make, "-s", "-f", "Makefile", "-f", "-", "show-env"],
        # The provider's settings, and a cloud's (CLAUDE_CODE_USE_*, its region and project).
        input=(
            "show-env:\n\t@env | grep -E "
            "'^(LITELLM_|CLAUDE_CODE_USE_|AWS_REGION=|CLOUD_ML_REGION=|ANTHROPIC_VERTEX_)' | sort\n"
        ),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert exported == provider_env_of(project)


def test_unit_settings(project: Path) -> None:
    recorded = answers_of(project)
    slug = recorded["project_slug"]
    unit = unit_of(project).read_text()
    assert unit.startswith("#"), "the unit starts with the ansible_managed comment"
    assert "Ansible managed" in "".join(unit.splitlines()[:3])
    token_env = {
        "oauth_token": "CLAUDE_CODE_OAUTH_TOKEN",
        "api_key": "ANTHROPIC_API_KEY",
        "bedrock": "AWS_SHARED_CREDENTIALS_FILE",
        "vertex": "GOOGLE_APPLICATION_CREDENTIALS",
    }[recorded["auth_method"]]
    cloud = recorded["auth_method"] in ("bedrock", "vertex")
    listen_host = recorded["listen_host"]
    if recorded.get("lb_host") and listen_host in ("127.0.0.1", "localhost", "::1"):
        listen_host = "0.0.0.0"
    for line in (
        f"Description={recorded['project_name']} (LiteLLM proxy serving Claude Code)",
        f"User={slug}",
        f"Group={slug}",
        f"StateDirectory={slug}",
        f"EnvironmentFile=/etc/{slug}/provider.env",
        f"EnvironmentFile=/etc/{slug}/secrets.env",
        f"Environment=HOME=/var/lib/{slug}",
        *([] if cloud else [f"Environment={token_env}_FILE=/etc/{slug}/credentials/{token_env}"]),
        "Restart=on-failure",
        f"ExecStart=/opt/{slug}/venv/bin/litellm --config /etc/{slug}/litellm.yaml"
        f" --host {listen_host} --port {recorded['listen_port']}",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.M), line
    assert not re.search(r"^Environment=.*(LITELLM_MASTER_KEY|_TOKEN|API_KEY)=(?!/)", unit, re.M)
    if cloud:  # no secrets.env here: no credentials file, the host's role (test_template_auth.py has the rest)
        # (the key store's file is no credential: it holds hashes)
        assert not re.search(r"^Environment=(?!LITELLM_CLAUDE_CODE_KEYS_FILE=)\S*(_FILE|CREDENTIALS)\S*=", unit, re.M)


def test_unit_limits_follow_max_concurrency(project: Path) -> None:
    """MemoryMax= and TasksMax= are sized for the CLI processes the gateway may run: the answer's
    max_concurrency, or with auto what the provider's rule gives on the host (here: this machine)."""
    setting = str(answers_of(project)["max_concurrency"]).lower()
    if setting == "auto":
        memtotal_mb = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)[1]) // 1024
        concurrency = max(1, min(4 * len(os.sched_getaffinity(0)), (memtotal_mb - 1024) // 300, 32))
    else:
        concurrency = int(setting)
    unit = unit_of(project).read_text()
    for line in (
        f"MemoryMax={1024 + 300 * concurrency}M",
        f"TasksMax={256 + 64 * concurrency}",
        "OOMPolicy=continue",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.M), (line, concurrency)
    assert f"sized for {concurrency} CLI processes" in unit
    # No inventory here: no firewall, so nothing the unit would require.
    assert not re.search(r"^Requires=", unit, re.M)


def _exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output
    return float(match.group(1))


def test_unit_exposure_at_most_2(project: Path) -> None:
    """`systemd-analyze security --offline=true` scores the role's unit "OK" (<= 2.0).

    Uses the host's systemd-analyze (Debian's systemd package); the fleet tests score the
    installed unit again on real systemd hosts."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on the host (install systemd); required under CI=true")
    for unit in (unit_of(project),):
        done = subprocess.run(
            [analyze, "security", "--offline=true", "--threshold=20", str(unit)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert _exposure(done.stdout) <= 2.0, done.stdout


# --------------------------------------------------------------------------- Ansible


def test_ansible_syntax_check(project: Path) -> None:
    done = subprocess.run(
        [tool("ansible-playbook"), "--syntax-check", "-i", "ansible/inventory.yml", "ansible/site.yml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(project / "ansible" / "ansible.cfg")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    inventory = yaml.safe_load((project / "ansible" / "inventory.yml").read_text())
    hosts = inventory["all"]["children"]["gateways"]["hosts"]
    assert list(hosts) == answers_of(project)["gateway_hosts"]


# --------------------------------------------------------------------------- Makefile


def test_make_targets(project: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed; required under CI=true")
    makefile = (project / "Makefile").read_text()
    for target in ("venv", "secrets", "run", "smoke", "test", "test-docker", "wheelhouse", "deploy", "status", "lint"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    done = subprocess.run([make, "-n", "deploy", "run", "test"], cwd=project, capture_output=True, text=True)
    assert "ansible-playbook -i ansible/inventory.yml ansible/site.yml" in done.stdout, done.stderr


def test_make_secrets_writes_a_private_file(default_project: Path, tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed; required under CI=true")
    shutil.copy(default_project / "Makefile", tmp_path / "Makefile")
    shutil.copytree(default_project / "config", tmp_path / "config")  # the Makefile includes provider.env
    subprocess.run(["make", "-s", "secrets", f"PYTHON={sys.executable}"], cwd=tmp_path, check=True, capture_output=True)
    secrets_file = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    text = secrets_file.read_text()
    assert re.search(r"^LITELLM_MASTER_KEY=sk-[A-Za-z0-9_-]{40,}$", text, re.M)
    assert re.search(r"^CLAUDE_CODE_OAUTH_TOKEN=$", text, re.M)
    (key,) = re.findall(r"^LITELLM_MASTER_KEY=(.*)$", text, re.M)
    check_master_key(key)  # the provider's own rule


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("sk-short", False),
        ("master-" + "x" * 40, False),  # long, but LiteLLM would not hash it
        ("sk-" + "x" * 28, False),  # 31 characters
        ("sk-" + "x" * 20 + " y", False),
        ("", False),
        ("sk-" + "x" * 29, True),  # 32 characters
    ],
)
def test_make_secrets_refuses_an_existing_master_key_of_the_wrong_form(
    default_project: Path, tmp_path: Path, key: str, accepted: bool
) -> None:
    """An older secrets.env is kept, but a master key LiteLLM would not hash (or too short a
    one) stops `make secrets` with what to change, without printing the key."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed; required under CI=true")
    shutil.copy(default_project / "Makefile", tmp_path / "Makefile")
    shutil.copytree(default_project / "config", tmp_path / "config")
    secrets_file = tmp_path / "secrets.env"
    before = f"# mine\nLITELLM_MASTER_KEY={key}\nCLAUDE_CODE_OAUTH_TOKEN=tok\n"
    secrets_file.write_text(before)
    secrets_file.chmod(0o600)
    done = subprocess.run(
        ["make", "-s", "secrets", f"PYTHON={sys.executable}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert secrets_file.read_text() == before, "make secrets changed an existing secrets.env"
    if accepted:
        assert done.returncode == 0, done.stderr
        assert "kept as it is" in done.stdout
        return
    assert done.returncode != 0, done.stdout
    assert "LITELLM_MASTER_KEY must start with sk- and be at least 32 characters long" in done.stderr
    assert "secrets.token_urlsafe(32)" in done.stderr
    if key:
        assert key not in done.stdout + done.stderr


def test_make_key_issues_a_key_once_and_stores_its_hash(default_project: Path, tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed; required under CI=true")
    shutil.copy(default_project / "Makefile", tmp_path / "Makefile")
    shutil.copytree(default_project / "config", tmp_path / "config")
    venv = Path(sys.executable).parent.parent  # this interpreter's venv stands in for `make venv`
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "provider" / "src")}
    make = ["make", "-s", f"VENV={venv}", "-o", f"{venv}/.installed"]
    done = subprocess.run(
        [*make, "key", "NAME=alice", "MODELS=haiku", "RPM=3"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    key = done.stdout.strip()
    assert re.fullmatch(r"sk-cc-[A-Za-z0-9_-]{40,}", key), done.stdout
    store = (tmp_path / "keys" / "keys.json").read_text()  # the directory docker-compose.yml mounts
    assert key not in store and hashlib.sha256(key.encode()).hexdigest() in store
    assert stat.S_IMODE((tmp_path / "keys" / "keys.json").stat().st_mode) == 0o640
    listing = subprocess.run([*make, "keys"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert "alice\tactive" in listing and "models=haiku" in listing and key not in listing
    assert "keys.json" in (default_project / ".gitignore").read_text()


# --------------------------------------------------------------------------- idempotence


def test_rerender_changes_nothing(render_project: RenderFn, template_repo: Path) -> None:
    from tests.support.template import render

    data = ANSWER_SETS["fleet-api-key"]
    project = render_project(data, name="rerender")
    before = snapshot(project)
    render(template_repo, project, data)
    assert snapshot(project) == before


def test_defaults_bind_loopback(default_project: Path) -> None:
    recorded = answers_of(default_project)
    assert recorded["listen_host"] == "127.0.0.1"
    assert recorded["listen_port"] == 4000
    assert recorded["model_aliases"] == {"sonnet": "sonnet", "opus": "opus", "haiku": "haiku"}
    assert recorded["provider_name"] == "claude-code"
