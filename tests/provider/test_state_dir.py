"""A full or read-only state directory is a 503 naming the path, and passes by itself.

The fleet test (tests/roles/test_fleet_upstream.py) makes it happen on a host; here each place
that writes under the state directory meets the errors a filesystem gives.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from litellm_claude_code._cli import Workspace, install_launcher, working_directory
from litellm_claude_code._errors import ConfigurationError, StateDirectoryError


def _failing_mkdir(code: int) -> object:
    real = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if "run" in self.parts or "bin" in self.parts or self.name == "work":
            raise OSError(code, os.strerror(code), str(self))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    return mkdir


@pytest.mark.parametrize(
    ("code", "condition"), [(errno.ENOSPC, "full"), (errno.EROFS, "read-only"), (errno.EDQUOT, "quota")]
)
@pytest.mark.parametrize("step", ["workspace", "launcher", "working directory"])
def test_full_or_read_only_is_a_503_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, condition: str, step: str
) -> None:
    monkeypatch.setattr(Path, "mkdir", _failing_mkdir(code))
    with pytest.raises(StateDirectoryError) as info:
        if step == "workspace":
            Workspace.create(tmp_path)
        elif step == "launcher":
            install_launcher(tmp_path)
        else:
            working_directory(tmp_path)
    assert info.value.status_code == 503
    message = str(info.value)
    assert str(tmp_path) in message and condition in message, message
    assert "LITELLM_CLAUDE_CODE_STATE_DIR" in message and "Traceback" not in message


def test_permission_denied_stays_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "mkdir", _failing_mkdir(errno.EACCES))
    with pytest.raises(ConfigurationError) as info:
        Workspace.create(tmp_path)
    assert info.value.status_code == 500
    assert str(tmp_path) in str(info.value) and "Permission denied" in str(info.value)


def test_the_next_attempt_works_once_space_is_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(Path, "mkdir", _failing_mkdir(errno.ENOSPC))
        with pytest.raises(StateDirectoryError):
            Workspace.create(tmp_path)
    workspace = Workspace.create(tmp_path)
    assert workspace.home.is_dir() and workspace.tmp.is_dir()
