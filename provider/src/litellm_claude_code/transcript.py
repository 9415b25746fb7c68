"""A conversation's earlier turns as a Claude Code session the CLI resumes from.

The CLI answers one user turn at a time and keeps the conversation itself: there is no way to
hand a running process earlier user turns without it answering each (a user message on its
stdin always starts a turn; ``shouldQuery: false`` only folds the text into the next turn).
What the CLI does offer is resuming a session: ``--resume <session id>`` (the SDK's ``resume``
option) loads ``$CLAUDE_CONFIG_DIR/projects/<project key>/<session id>.jsonl`` and sends its
user and assistant messages upstream as they are, before the new turn. This is the path the
SDK's own ``SessionStore`` takes to resume a session kept elsewhere: it writes the stored
entries to such a file and passes ``--resume``.

So a request whose earlier turns no live process holds gets a process started on a session
file written here, in the process's private config directory. The entries hold only what
resuming needs (the chain of ``uuid``/``parentUuid`` and each message); the format is the
CLI's own and undocumented, which is why ``tests/provider/test_compat_cli.py`` resumes such a
file with the bundled CLI and checks what reaches the upstream, and ``_compat`` refuses CLI
versions that were not tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from claude_agent_sdk import project_key_for_directory

from .messages import Turn


@dataclass(frozen=True, slots=True)
class ResumeSession:
    """A session file written for a process to resume, and the uuid of each of its turns."""

    session_id: str
    uuids: tuple[str, ...]


def session_path(config_dir: Path, cwd: Path, session_id: str) -> Path:
    """Where the CLI looks for ``session_id`` when it runs in ``cwd`` with this config directory."""
    return config_dir / "projects" / project_key_for_directory(cwd) / f"{session_id}.jsonl"


def entries(turns: Sequence[Turn], session_id: str, cwd: Path) -> tuple[list[dict[str, object]], tuple[str, ...]]:
    """The transcript lines for ``turns``, and the uuid given to each turn."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines: list[dict[str, object]] = []
    uuids: list[str] = []
    parent: str | None = None
    for turn in turns:
        turn_uuid = str(uuid.uuid4())
        message: dict[str, object] = {"role": turn.role, "content": turn.cli_content()}
        if turn.role == "assistant":
            message = {"id": f"msg_{turn_uuid.replace('-', '')[:24]}", "type": "message", **message}
        lines.append(
            {
                "parentUuid": parent,
                "isSidechain": False,
                "type": turn.role,
                "message": message,
                "uuid": turn_uuid,
                "timestamp": now,
                "sessionId": session_id,
                "cwd": str(cwd),
                "userType": "external",
            }
        )
        uuids.append(turn_uuid)
        parent = turn_uuid
    return lines, tuple(uuids)


def write_session(config_dir: Path, cwd: Path, turns: Sequence[Turn]) -> ResumeSession:
    """Write ``turns`` as a session the CLI started in ``cwd`` with ``config_dir`` can resume."""
    session_id = str(uuid.uuid4())
    lines, uuids = entries(turns, session_id, cwd)
    path = session_path(config_dir, cwd, session_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    path.chmod(0o600)
    return ResumeSession(session_id, uuids)
