"""What a failed ``ansible-playbook`` run says, for an assertion's message."""

from __future__ import annotations

from typing import Any


def fail_report(result: dict[str, Any]) -> str:
    """The exit code, the recap per host and the ends of both outputs of a playbook run."""
    return f"rc={result['rc']} recap={result['recap']}\n{result['stdout'][-6000:]}\n{result['stderr'][-2000:]}"
