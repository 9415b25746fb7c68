"""Run one task of the gateway role's preflight against localhost, no fleet.

The role's ``tasks/preflight.yml`` runs under ``ansible-playbook`` with
``ansible_connection: local``: the checks of secrets, key records and settings come before
any that need a systemd host, so they can be read here from the json callback's record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.template import REPO_ROOT

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook"
)

PLAYBOOK = """\
- name: Preflight only
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role's preflight
      ansible.builtin.include_role:
        name: claude_code_gateway
        tasks_from: preflight.yml
"""


def run_task(tmp_path: Path, task: str, **variables: Any) -> tuple[dict[str, Any], str]:
    """The json callback's record of ``task`` on localhost, and the whole output (to search for secrets)."""
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
    }
    variables = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}
    assert ANSIBLE_PLAYBOOK is not None, "ansible-playbook is not installed"
    out = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-e", json.dumps(variables), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=tmp_path,
    )
    report = json.loads(out.stdout[out.stdout.index("{") :])
    for play in report["plays"]:
        for record in play["tasks"]:
            if record["task"]["name"].endswith(task):
                return dict(record["hosts"]["localhost"]), out.stdout + out.stderr
    raise AssertionError(f"the preflight never ran {task!r}:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
