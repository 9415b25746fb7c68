"""The redis_host answer: without it nothing changes for an existing project; with it, a Redis host.

``redis_host`` empty (the default, also what ``copier update`` gives a project made before the
question existed): no ``redis`` group, no Redis variables, no Redis password; the proxy YAML still
carries the Redis lines, which read an environment that then has no ``REDIS_HOST`` (no Redis).
Set: the inventory group, the role's variables from secrets.env, and ``make secrets`` writes a
password the role accepts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.template import RenderFn

BIN = Path(sys.executable).parent
GATEWAYS = ["gw-1", "gw-2"]
# roles/claude_code_redis/vars/main.yml: what redis.conf can take unquoted.
PASSWORD = re.compile(r"^[A-Za-z0-9._~+/=:@%^*!,_-]{16,}$")


@pytest.fixture(scope="module")
def without_redis(render_project: RenderFn) -> Path:
    return render_project({"gateway_hosts": GATEWAYS}, name="no-redis")


@pytest.fixture(scope="module")
def with_redis(render_project: RenderFn) -> Path:
    return render_project({"gateway_hosts": GATEWAYS, "redis_host": "redis-1"}, name="redis")


def groups(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / "ansible" / "inventory.yml").read_text())["all"]["children"]


def router_settings(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / "config" / "litellm.yaml").read_text())["router_settings"]


def test_without_redis_the_fleet_has_no_redis(without_redis: Path) -> None:
    assert "redis" not in groups(without_redis)
    assert yaml.safe_load((without_redis / ".copier-answers.yml").read_text())["redis_host"] == ""
    group_vars = (without_redis / "ansible" / "group_vars" / "all.yml").read_text()
    assert "claude_code_redis_" not in group_vars and "claude_code_gateway_redis_" not in group_vars
    assert "each gateway counts a key's limits" in group_vars
    # `make secrets` (the fleet's secrets.env) writes no Redis password; `make up` (compose) has its own.
    makefile = (without_redis / "Makefile").read_text()
    secrets_recipe = makefile[makefile.index("\nsecrets:") :].split("\n\n", 1)[0]
    assert "echo '{{" not in secrets_recipe and "LITELLM_MASTER_KEY" in secrets_recipe
    assert "REDIS_PASSWORD" not in secrets_recipe


def test_the_proxy_reads_redis_from_the_environment_either_way(without_redis: Path, with_redis: Path) -> None:
    for project in (without_redis, with_redis):
        settings = router_settings(project)
        assert settings["redis_host"] == "os.environ/REDIS_HOST"
        assert settings["redis_port"] == "os.environ/REDIS_PORT"
        assert settings["redis_password"] == "os.environ/REDIS_PASSWORD"
    assert (without_redis / "config" / "litellm.yaml").read_text() == (
        with_redis / "config" / "litellm.yaml"
    ).read_text()


def test_with_redis_the_inventory_and_the_playbook_have_it(with_redis: Path) -> None:
    assert groups(with_redis)["redis"] == {"hosts": {"redis-1": None}}
    site = yaml.safe_load((with_redis / "ansible" / "site.yml").read_text())
    order = [play["hosts"] for play in site]
    assert order.index("redis") < order.index("gateways"), order
    assert (with_redis / "ansible" / "roles" / "claude_code_redis" / "tasks" / "main.yml").is_file()
    assert not (with_redis / "ansible" / "roles" / "claude_code_redis").is_symlink()


def test_make_secrets_writes_a_redis_password_the_variables_pick_up(with_redis: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed; required under CI=true")
    project = with_redis
    done = subprocess.run(["make", "secrets"], cwd=project, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    secrets_env = project / "secrets.env"
    assert secrets_env.stat().st_mode & 0o777 == 0o600
    lines = dict(line.split("=", 1) for line in secrets_env.read_text().splitlines() if "=" in line and line[0] != "#")
    password = lines["REDIS_PASSWORD"]
    assert PASSWORD.match(password), "make secrets wrote a password the Redis role refuses"
    printed = password in done.stdout + done.stderr  # a bool: a failure cannot print the password
    assert not printed, "make secrets printed the password"
    # What the gateways and the Redis host get, resolved by Ansible from group_vars, in a playbook
    # of the project's ansible/ (debug runs on the controller: no host is contacted).
    names = {
        "gw-1": [
            "claude_code_gateway_redis_host",
            "claude_code_gateway_redis_port",
            "claude_code_gateway_redis_password",
        ],
        "redis-1": ["claude_code_redis_password", "claude_code_redis_bind_address"],
    }
    show = project / "ansible" / "show-redis.yml"
    show.write_text(
        json.dumps(
            [
                {
                    "name": "show",
                    "hosts": "gw-1,redis-1",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.debug": {
                                "msg": "{{ {'vars': __names[inventory_hostname] | map('extract', vars) | list} }}"
                            },
                            "vars": {"__names": names},
                        }
                    ],
                }
            ]
        )
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(project / "ansible" / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
    }
    shown = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "ansible/inventory.yml", str(show)],
        cwd=project, capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-2000:]
    report, _ = json.JSONDecoder().raw_decode(shown.stdout[shown.stdout.index("{") :])
    hosts = report["plays"][0]["tasks"][0]["hosts"]
    values = {(h, n): v for h in names for n, v in zip(names[h], hosts[h]["msg"]["vars"], strict=True)}
    assert values[("gw-1", "claude_code_gateway_redis_host")] == "redis-1"
    assert values[("redis-1", "claude_code_redis_bind_address")] == "redis-1"
    assert int(values[("gw-1", "claude_code_gateway_redis_port")]) == 6379
    assert values[("gw-1", "claude_code_gateway_redis_password")] == password
    assert values[("redis-1", "claude_code_redis_password")] == password
