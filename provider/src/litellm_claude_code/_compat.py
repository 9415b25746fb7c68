"""Refuse to start on dependency versions this provider was not built and tested for.

The provider leans on details that changed across releases (LiteLLM's CustomLLM call signature
and streaming chunk shape; the SDK's control channel) and, above all, on behaviour of the Claude
Code CLI that no document promises: a user turn written with ``shouldQuery: false`` recorded as
an earlier turn (answered by an empty result, no upstream request), the fields of
``rewind_conversation``'s answer, ``set_model``'s ``system_prompt``, ``apply_flag_settings``
changing the output limit, uuids given on stdin being kept.
``tests/provider/test_compat_cli.py`` checks each of those against the bundled CLI; a CLI
version that suite has not passed on is refused here, when the first provider is made (the
bundled one, :func:`check_dependencies`) or when the settings are read (one named by
``LITELLM_CLAUDE_CODE_CLI_PATH``), with what to do about it. Not at import: importing the package
does no I/O. The proxy makes its provider when it loads its config (``litellm_claude_code.handler``),
so an unsupported version still stops it at start.

The bundled CLI is also checked byte for byte: its SHA-256 must be the one pinned here for the
installed claude-agent-sdk version and this machine (:data:`BUNDLED_CLI_SHA256`, computed from
the PyPI wheels whose hashes ``requirements.lock`` pins). A version string is only what a file
says about itself; the digest catches a binary swapped or patched after the wheel was verified.
Hashing the ~400 MB binary takes 0.3 to 0.8 s on the 2-core development machine (page cache
warm or cold), so :func:`check_bundled_cli_digest` runs once per binary and process: when the
provider first resolves the CLI (:func:`litellm_claude_code._cli.resolve_cli`), cached by path,
inode, size, mtime and ctime. The image build and the Ansible role run :func:`verify_bundled_cli`
after installing, which also refuses a platform with no pinned digest.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import subprocess
import sys
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

MINIMUM_VERSIONS = {
    "litellm": (1, 106, 0),
    "claude-agent-sdk": (0, 2, 189),
}

TESTED_CLI_VERSIONS = ("2.1.332",)
"""Claude Code CLI versions ``tests/provider/test_compat_cli.py`` passed on."""

ALLOW_UNTESTED_CLI = "LITELLM_CLAUDE_CODE_ALLOW_UNTESTED_CLI"

BUNDLED_CLI_SHA256 = {
    ("0.2.189", "x86_64"): "a2df1f41bb00250992926420d0063f89b127cb81abdd284dbefb80c50ff1d026",
    ("0.2.189", "aarch64"): "50c305fcb8912851ce774429131d94ed6f84edbe3d8d0ed7a59dade5d893acc0",
}
"""SHA-256 of ``claude_agent_sdk/_bundled/claude`` by (claude-agent-sdk version, machine), Linux.

From the wheels ``claude_agent_sdk-0.2.189-py3-none-manylinux_2_17_{x86_64,aarch64}.whl`` (their
RECORD lists the same digests). A claude-agent-sdk bump adds its own lines here: hash the binary of
each Linux wheel (``python -c "from litellm_claude_code._compat import file_sha256 as f;
print(f(PATH))"``); ``tests/provider/test_cli_digest.py`` checks the installed one.
"""

_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


class DependencyVersionError(ImportError):
    """An installed dependency is older than supported, a CLI version was not tested, or the bundled CLI is not
    the pinned binary."""


def _untested_allowed() -> bool:
    return os.environ.get(ALLOW_UNTESTED_CLI, "").strip().lower() in ("1", "true", "yes", "on")


def _parse(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_versions() -> None:
    for package, minimum in MINIMUM_VERSIONS.items():
        wanted = ".".join(map(str, minimum))
        try:
            installed = version(package)
        except PackageNotFoundError:
            raise DependencyVersionError(
                f"litellm-claude-code needs {package} >= {wanted}, which is not installed: "
                f"pip install '{package}>={wanted}'"
            ) from None
        if _parse(installed) < minimum:
            raise DependencyVersionError(
                f"litellm-claude-code needs {package} >= {wanted}, found {installed}: "
                f"pip install --upgrade '{package}>={wanted}'"
            )


_dependencies_checked = False


def check_dependencies() -> None:
    """The start-up checks, once per process (when the first provider is made): the dependencies'
    versions (:func:`check_versions`), and the bundled CLI's version unless
    ``LITELLM_CLAUDE_CODE_CLI_PATH`` names another CLI (checked when the settings are read). A
    failure is not remembered: the next provider checks again and raises the same error."""
    global _dependencies_checked
    if _dependencies_checked:
        return
    check_versions()
    if not os.environ.get("LITELLM_CLAUDE_CODE_CLI_PATH", "").strip():
        check_cli_version(bundled_cli_version(), "bundled with claude-agent-sdk")
    _dependencies_checked = True


def bundled_cli_version() -> str | None:
    """The version of the CLI bundled with the installed claude-agent-sdk, if it says."""
    try:
        from claude_agent_sdk._cli_version import __cli_version__
    except ImportError:
        return None
    return str(__cli_version__)


def cli_version(path: str) -> str:
    """The version a CLI binary reports (``claude --version`` prints ``2.1.332 (Claude Code)``)."""
    try:
        output = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyVersionError(
            f"Cannot run {path} --version ({exc}); check LITELLM_CLAUDE_CODE_CLI_PATH."
        ) from None
    match = re.search(r"\d+\.\d+\.\d+", output)
    if match is None:
        raise DependencyVersionError(f"{path} --version printed no version ({output.strip()[:80]!r}).")
    return match.group(0)


def check_cli_version(found: str | None, where: str) -> None:
    """Refuse a CLI version that was not tested, unless the operator said to allow it."""
    if found is None or found in TESTED_CLI_VERSIONS:
        return
    if _untested_allowed():
        return
    raise DependencyVersionError(
        f"The Claude Code CLI {found} ({where}) was not tested with this litellm-claude-code, which relies on "
        f"behaviour of the CLI that changes between versions (tested: {', '.join(TESTED_CLI_VERSIONS)}). Install "
        "the claude-agent-sdk version this release pins, or set "
        f"{ALLOW_UNTESTED_CLI}=true to run it anyway (then run its compatibility tests)."
    )


def machine() -> str:
    """This machine's architecture as the wheels name it (``x86_64``, ``aarch64``), else as it says."""
    raw = platform.machine().lower()
    return _MACHINES.get(raw, raw)


def bundled_cli_file() -> Path | None:
    """Where the installed claude-agent-sdk keeps its bundled CLI (without importing the SDK)."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "_bundled" / "claude"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


_digests: dict[tuple[str, int, int, int, int, int], str] = {}
_digests_lock = threading.Lock()


def cached_sha256(path: Path) -> str:
    """:func:`file_sha256`, once per file as it stands: keyed by path, device, inode, size, mtime and
    ctime (a rewrite, a replacement or a ``touch`` of the file changes the key; ctime cannot be set back)."""
    stat = path.stat()
    key = (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _digests_lock:
        found = _digests.get(key)
        if found is None:
            found = _digests[key] = file_sha256(path)
    return found


def expected_cli_sha256() -> str | None:
    """The pinned digest of the bundled CLI for the installed claude-agent-sdk on this machine, if any."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        sdk = version("claude-agent-sdk")
    except PackageNotFoundError:
        return None
    return BUNDLED_CLI_SHA256.get((sdk, machine()))


def check_bundled_cli_digest(path: Path, *, require_pin: bool = False) -> str | None:
    """Refuse a bundled CLI whose SHA-256 is not the one pinned; return the digest when one was checked.

    None when no digest is pinned for this claude-agent-sdk and machine (another platform, or an
    SDK version that ``LITELLM_CLAUDE_CODE_ALLOW_UNTESTED_CLI`` let through): then the version check
    alone applies, unless ``require_pin`` (the image build and the role) makes that an error too.
    ``LITELLM_CLAUDE_CODE_ALLOW_UNTESTED_CLI=true`` accepts any binary, as it accepts any version.
    """
    if _untested_allowed():
        return None
    expected = expected_cli_sha256()
    if expected is None:
        if require_pin:
            sdk = _installed("claude-agent-sdk")
            raise DependencyVersionError(
                f"No SHA-256 of the bundled Claude Code CLI is pinned for claude-agent-sdk {sdk} on {sys.platform} "
                f"{machine()} (pinned: {', '.join(f'{v} {m}' for v, m in BUNDLED_CLI_SHA256)}). Install the "
                f"claude-agent-sdk version this release pins, or set {ALLOW_UNTESTED_CLI}=true to run it unchecked."
            )
        return None
    try:
        found = cached_sha256(path)
    except OSError as exc:
        raise DependencyVersionError(f"Cannot read the bundled Claude Code CLI {path} ({exc.strerror}).") from None
    if found != expected:
        raise DependencyVersionError(
            f"The bundled Claude Code CLI {path} is not the binary of the claude-agent-sdk wheel this release pins: "
            f"its SHA-256 is {found}, expected {expected} (claude-agent-sdk {_installed('claude-agent-sdk')}, "
            f"{machine()}). Reinstall claude-agent-sdk from the hashed lock (pip install --force-reinstall "
            f"--require-hashes -r requirements.lock), or set {ALLOW_UNTESTED_CLI}=true to run this binary anyway."
        )
    return found


def verify_bundled_cli() -> str:
    """For the image build and the Ansible role: check the bundled CLI now, strictly; a line for the log."""
    path = bundled_cli_file()
    if path is None or not path.is_file():
        raise DependencyVersionError("claude-agent-sdk's bundled Claude Code CLI is not installed.")
    check_cli_version(bundled_cli_version(), "bundled with claude-agent-sdk")
    digest = check_bundled_cli_digest(path, require_pin=True)
    if digest is None:
        return f"{path}: not checked ({ALLOW_UNTESTED_CLI} is set)"
    sdk = _installed("claude-agent-sdk")
    return f"{path}: sha256 {digest}, the one pinned for claude-agent-sdk {sdk} on {machine()}"


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"
