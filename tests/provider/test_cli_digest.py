"""The bundled CLI is checked by its SHA-256, not only its version string (``_compat.BUNDLED_CLI_SHA256``).

The installed binary must be the one pinned; a binary with another digest is refused when the
provider resolves the CLI, naming both digests; the digest is computed once per file as it
stands; the image build and the role's strict check refuse a platform with no pinned digest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from litellm_claude_code import _cli, _compat
from litellm_claude_code._cli import resolve_cli
from litellm_claude_code._compat import (
    ALLOW_UNTESTED_CLI,
    BUNDLED_CLI_SHA256,
    DependencyVersionError,
    cached_sha256,
    check_bundled_cli_digest,
    expected_cli_sha256,
    file_sha256,
    verify_bundled_cli,
)
from litellm_claude_code._errors import ConfigurationError
from litellm_claude_code._settings import Settings

from tests.support.template import REPO_ROOT


@pytest.fixture(autouse=True)
def _checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_UNTESTED_CLI, raising=False)


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small executable standing in for the bundled CLI, whose pinned digest is its own."""
    path = tmp_path / "claude"
    path.write_bytes(b"#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
    path.chmod(0o755)
    monkeypatch.setattr(_cli, "bundled_cli_path", lambda: path)
    pinned = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(_compat, "expected_cli_sha256", lambda: pinned)
    return path


def test_the_installed_bundled_cli_is_the_pinned_binary() -> None:
    expected = expected_cli_sha256()
    assert expected is not None, "no digest pinned for the installed claude-agent-sdk on this machine"
    line = verify_bundled_cli()
    assert f"sha256 {expected}" in line
    assert resolve_cli(Settings()) == str(_cli.bundled_cli_path())


def test_every_linux_wheel_of_the_pinned_sdk_has_a_digest() -> None:
    """A claude-agent-sdk bump (copier.yml) must come with the digests of its Linux binaries."""
    pinned = str(yaml.safe_load((REPO_ROOT / "copier.yml").read_text())["claude_agent_sdk_version"]["default"])
    assert {(pinned, "x86_64"), (pinned, "aarch64")} <= set(BUNDLED_CLI_SHA256)
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in BUNDLED_CLI_SHA256.values())


def test_a_binary_with_another_digest_is_refused_by_name(fake_cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_cli(Settings()) == str(fake_cli)
    with fake_cli.open("ab") as handle:
        handle.write(b"# one more line\n")
    found = file_sha256(fake_cli)
    with pytest.raises(ConfigurationError) as info:
        resolve_cli(Settings())
    message = str(info.value)
    assert str(fake_cli) in message and f"its SHA-256 is {found}" in message
    assert "--require-hashes -r requirements.lock" in message
    monkeypatch.setenv(ALLOW_UNTESTED_CLI, "true")
    assert resolve_cli(Settings()) == str(fake_cli)


def test_a_cli_named_by_the_operator_is_not_hashed(fake_cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compat, "expected_cli_sha256", lambda: "0" * 64)
    assert resolve_cli(Settings(cli_path=str(fake_cli))) == str(fake_cli)
    with pytest.raises(ConfigurationError):
        resolve_cli(Settings())


def test_the_digest_is_computed_once_per_file_as_it_stands(fake_cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(path: str | os.PathLike[str]) -> str:
        calls.append(str(path))
        return file_sha256(path)

    monkeypatch.setattr(_compat, "file_sha256", counting)
    first = cached_sha256(fake_cli)
    assert cached_sha256(fake_cli) == first and len(calls) == 1
    replacement = fake_cli.with_name("claude.new")
    replacement.write_bytes(b"#!/bin/sh\necho other\n")
    replacement.replace(fake_cli)  # the same path, another inode
    assert cached_sha256(fake_cli) != first and len(calls) == 2


def test_the_strict_check_refuses_a_platform_without_a_pinned_digest(
    fake_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_compat, "expected_cli_sha256", lambda: None)
    assert check_bundled_cli_digest(fake_cli) is None  # at run time the version check alone applies
    with pytest.raises(DependencyVersionError, match="No SHA-256 of the bundled Claude Code CLI is pinned"):
        check_bundled_cli_digest(fake_cli, require_pin=True)
