"""The status playbook's journal counters: its awk program, run here over given log lines.

The program is read from ``template/ansible/status.yml`` itself, so a test checks the program the
playbook runs on the hosts. Shared by ``tests/template/test_status_playbook.py`` (sample lines)
and ``tests/provider/test_proxy_status_counters.py`` (a real proxy's lines).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.support.template import REPO_ROOT

STATUS = REPO_ROOT / "template" / "ansible" / "status.yml"
# Every awk on this machine (Debian's default is mawk, as on the gateways).
AWKS = [path for path in dict.fromkeys(shutil.which(name) for name in ("awk", "mawk", "gawk", "original-awk")) if path]


def awk_program() -> str:
    """The awk program of the status playbook's journal task."""
    plays = yaml.safe_load(STATUS.read_text(encoding="utf-8"))
    shells = [t["ansible.builtin.shell"]["cmd"] for t in plays[0]["tasks"] if "ansible.builtin.shell" in t]
    (cmd,) = [cmd for cmd in shells if "awk" in cmd]
    found = re.search(r"\| awk '([^']*)'", cmd)
    assert found, "the status playbook no longer pipes the journal through awk '...'"
    return found.group(1)


def counters(awk: str, text: str) -> dict[str, str]:
    """The counters ``awk`` prints for the log lines ``text`` (``Name=value`` pairs)."""
    out = subprocess.run([awk, awk_program()], input=text, capture_output=True, text=True, check=True, timeout=10)
    return dict(item.split("=", 1) for item in out.stdout.split())
