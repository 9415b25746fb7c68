"""The roles and the generated playbooks are clean under ansible-lint's production profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.template import ANSWER_SETS, RenderFn

BIN = Path(sys.executable).parent


def test_generated_ansible_passes_the_production_profile(render_project: RenderFn) -> None:
    # The fleet answers: a load balancer with TLS and a Redis host, so every role and template path is linted.
    project = render_project(
        {**ANSWER_SETS["fleet-api-key"], "lb_host": "lb-1", "lb_tls": True, "redis_host": "redis-1"}, name="lint"
    )
    ansible = project / "ansible"
    assert (ansible / "roles" / "claude_code_gateway" / "tasks" / "main.yml").is_file()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
        cwd=ansible,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Profile 'production' was required, and it passed" in output, output[-2000:]
    # Lint really looked at the roles, not an empty tree.
    processed = [line for line in output.splitlines() if "files processed" in line]
    assert processed, output[-2000:]
    assert int(processed[0].split(" in ")[1].split()[0]) >= 20, processed[0]
