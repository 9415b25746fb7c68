"""The rendered docker-compose.yml and its make targets, without starting a container.

The compose file is read as YAML and by Compose itself (``docker-compose config``, v1, which is
what these machines have; a Compose-spec file v1 accepts is also valid for v2). ``make up``'s
secret step runs for real in a copy of the project. The stack itself runs in the generated
project's Docker suite (template/tests/test_compose.py).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from litellm_claude_code.keys import metrics_key

FILES = (
    "docker-compose.yml",
    "monitoring/grafana-dashboard.json",
    "monitoring/prometheus.yml",
    "monitoring/prometheus-compose.yml",
    "tests/test_compose.py",
    "tests/images/compose-services.Dockerfile",
)


def answers_of(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / ".copier-answers.yml").read_text()))


def compose_of(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / "docker-compose.yml").read_text()))


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed; required under CI=true")
    return found


def test_the_compose_files_are_rendered(project: Path) -> None:
    for rel in FILES:
        assert (project / rel).is_file(), rel
    for rel in (".compose", "keys"):
        assert f"/{rel}/" in (project / ".gitignore").read_text(), rel


def test_ports_are_published_on_loopback_only(project: Path) -> None:
    port = answers_of(project)["listen_port"]
    services = compose_of(project)["services"]
    assert set(services) == {"gateway", "redis", "prometheus"}
    assert "ports" not in services["redis"], "Redis is for the gateways only"
    for name in ("gateway", "prometheus"):
        for mapping in services[name]["ports"]:
            assert mapping.startswith("127.0.0.1:"), (name, mapping)
    assert services["gateway"]["ports"] == [f"127.0.0.1:${{GATEWAY_PORT:-{port}}}:{port}"]


def test_the_gateway_gets_redis_keys_and_secrets_from_files(project: Path) -> None:
    slug = answers_of(project)["project_slug"]
    gateway = compose_of(project)["services"]["gateway"]
    assert gateway["environment"]["REDIS_HOST"] == "redis"
    assert gateway["environment"]["REDIS_PORT"] == "6379"
    assert gateway["environment"]["LITELLM_CLAUDE_CODE_KEYS_FILE"] == f"/etc/{slug}/keys/keys.json"
    assert gateway["env_file"] == [
        "config/provider.env",
        "${SECRETS_ENV:-./secrets.env}",
        "${COMPOSE_DIR:-./.compose}/redis.env",
    ]
    assert gateway["volumes"] == [f"${{KEYS_DIR:-./keys}}:/etc/{slug}/keys:ro"]
    assert gateway["build"]["context"] == "."


def test_no_secret_and_no_registry_host_in_the_compose_file(project: Path) -> None:
    text = (project / "docker-compose.yml").read_text()
    assert not re.search(r"sk-[A-Za-z0-9]", text)
    assert "requirepass $$REDIS_PASSWORD" in text  # the variable, read inside the container
    assert "--requirepass" not in text  # a command-line password shows in every process list
    services = compose_of(project)["services"]
    images = {name: service["image"] for name, service in services.items()}
    assert images["redis"] == "${REDIS_IMAGE:-redis:7}"
    assert images["prometheus"].startswith("${PROMETHEUS_IMAGE:-prom/prometheus:")
    for image in images.values():
        default = image.split(":-", 1)[1]
        first = default.split("/", 1)[0]
        assert "/" not in default or "." not in first, f"{image} names a registry host"


def test_services_drop_privileges(project: Path) -> None:
    for name, service in compose_of(project)["services"].items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        if name != "gateway":  # the image itself runs the gateway unprivileged
            assert service["user"] in {"redis", "nobody"}, name


def compose_env(tmp: Path) -> dict[str, str]:
    (tmp / "secrets.env").write_text("LITELLM_MASTER_KEY=sk-test-compose\n")
    (tmp / ".compose").mkdir()
    (tmp / ".compose" / "redis.env").write_text("REDIS_PASSWORD=pw\n")
    (tmp / "keys").mkdir()
    return {
        **os.environ,
        "SECRETS_ENV": str(tmp / "secrets.env"),
        "COMPOSE_DIR": str(tmp / ".compose"),
        "KEYS_DIR": str(tmp / "keys"),
        "SECRETS_GID": str(os.getgid()),
        "COMPOSE_PROJECT_NAME": "render-check",
    }


def test_compose_v1_accepts_the_file(project: Path, tmp_path: Path) -> None:
    compose = need("docker-compose")
    env = compose_env(tmp_path)
    done = subprocess.run([compose, "config"], cwd=project, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    port = answers_of(project)["listen_port"]
    # v1 prints the short syntax, v2 the long one.
    (published,) = config["services"]["gateway"]["ports"]
    if isinstance(published, dict):
        published = f"{published['host_ip']}:{published['published']}:{published['target']}/tcp"
    assert published == f"127.0.0.1:{port}:{port}/tcp", published
    assert config["services"]["gateway"]["group_add"] == [str(os.getgid())]
    # Without the group, Compose refuses to start rather than mount files nobody can read.
    del env["SECRETS_GID"]
    refused = subprocess.run(
        [compose, "config", "-q"], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "SECRETS_GID" in refused.stderr


def make_copy(project: Path, dest: Path) -> Path:
    shutil.copy(project / "Makefile", dest / "Makefile")
    shutil.copytree(project / "config", dest / "config")
    return dest


def test_make_up_writes_private_compose_secrets(default_project: Path, tmp_path: Path) -> None:
    make = need("make")
    work = make_copy(default_project, tmp_path)
    run = [make, "-s", f"PYTHON={sys.executable}"]
    missing = subprocess.run([*run, "compose-secrets"], cwd=work, capture_output=True, text=True)
    assert missing.returncode != 0
    assert "make secrets" in missing.stderr
    subprocess.run([*run, "secrets"], cwd=work, check=True, capture_output=True)
    key = re.search(r"^LITELLM_MASTER_KEY=(.+)$", (work / "secrets.env").read_text(), re.M)
    assert key is not None
    done = subprocess.run([*run, "compose-secrets"], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    master = work / ".compose" / "metrics_key"  # Prometheus' scrape key, not the master key
    redis_env = work / ".compose" / "redis.env"
    assert master.read_text().strip() == metrics_key(key.group(1))
    assert key.group(1) not in master.read_text()
    assert not (work / ".compose" / "master_key").exists()
    assert stat.S_IMODE(master.stat().st_mode) == 0o640
    assert stat.S_IMODE(redis_env.stat().st_mode) == 0o600
    assert stat.S_IMODE((work / ".compose").stat().st_mode) == 0o750
    password = redis_env.read_text()
    assert re.fullmatch(r"REDIS_PASSWORD=[A-Za-z0-9_-]{40,}\n", password)
    assert (work / "keys").is_dir()
    inode = master.stat().st_ino
    subprocess.run([*run, "compose-secrets"], cwd=work, check=True, capture_output=True)
    assert redis_env.read_text() == password, "the Redis password is made once"
    assert master.stat().st_ino == inode, "rewritten in place: the bind mount keeps seeing it"
    # The command `make up` runs, with the compose variables from the Makefile.
    dry = subprocess.run([*run, "-n", "up", "COMPOSE=docker-compose"], cwd=work, capture_output=True, text=True)
    assert "docker-compose up -d --build" in dry.stdout, dry.stdout


def test_make_up_refuses_a_key_store_in_the_project_root(default_project: Path, tmp_path: Path) -> None:
    make = need("make")
    work = make_copy(default_project, tmp_path)
    run = [make, "-s", f"PYTHON={sys.executable}"]
    subprocess.run([*run, "secrets"], cwd=work, check=True, capture_output=True)
    (work / "keys.json").write_text('{"version": 1, "keys": []}\n')
    done = subprocess.run([*run, "compose-secrets"], cwd=work, capture_output=True, text=True)
    assert done.returncode != 0
    assert "mv keys.json keys/" in done.stderr
