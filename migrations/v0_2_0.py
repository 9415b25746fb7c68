"""Copier migration to 0.2.0, run in the project after `copier update` has applied the files.

0.2.0 moved two things out of the project:
- the systemd unit: the gateway role now writes it from its variables, so the project's
  deploy/systemd/<slug>.service is no longer read by anything;
- the provider's settings: config/provider.env is their one home (the Makefile, the container
  and the unit read it), where the Makefile, the Dockerfile and the unit each had a copy.

This script removes the unused unit and says where edits of either belong now. It is idempotent:
a second run finds nothing to do.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    notes = []
    systemd_dir = Path("deploy") / "systemd"
    for unit in sorted(systemd_dir.glob("*.service")):
        unit.unlink()
        notes.append(
            f"removed {unit}: the claude_code_gateway role now writes the unit from its variables. If you had "
            "edited it, `git diff` shows your edits: carry them into ansible/group_vars/all.yml "
            "(claude_code_gateway_extra_env for environment, the role's README for the rest)."
        )
    for directory in (systemd_dir, systemd_dir.parent):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    notes.append(
        "provider settings (LITELLM_CLAUDE_CODE_*) now live in config/provider.env only: if you had changed one "
        "in the Makefile, the Dockerfile or the unit, set it there (change the Copier answer to keep it on update)."
    )
    for note in notes:
        print(f"copier migration 0.2.0: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
