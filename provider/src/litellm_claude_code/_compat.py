"""Refuse to start on dependency versions this provider was not built and tested for.

The provider leans on details that changed across releases (LiteLLM's CustomLLM call signature
and streaming chunk shape; the SDK's control channel) and, above all, on behaviour of the Claude
Code CLI that no document promises: a user turn written with ``shouldQuery: false`` recorded as
an earlier turn (answered by an empty result, no upstream request), the fields of
``rewind_conversation``'s answer, ``set_model``'s ``system_prompt``, ``apply_flag_settings``
changing the output limit, uuids given on stdin being kept.
``tests/provider/test_compat_cli.py`` checks each of those against the bundled CLI; a CLI
version that suite has not passed on is refused here, at import (the bundled one) or when the
settings are read (one named by ``LITELLM_CLAUDE_CODE_CLI_PATH``), with what to do about it.
"""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version

MINIMUM_VERSIONS = {
    "litellm": (1, 106, 0),
    "claude-agent-sdk": (0, 2, 189),
}

TESTED_CLI_VERSIONS = ("2.1.332",)
"""Claude Code CLI versions ``tests/provider/test_compat_cli.py`` passed on."""

ALLOW_UNTESTED_CLI = "LITELLM_CLAUDE_CODE_ALLOW_UNTESTED_CLI"


class DependencyVersionError(ImportError):
    """An installed dependency is older than supported, or a CLI version was not tested."""


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
    if os.environ.get(ALLOW_UNTESTED_CLI, "").strip().lower() in ("1", "true", "yes", "on"):
        return
    raise DependencyVersionError(
        f"The Claude Code CLI {found} ({where}) was not tested with this litellm-claude-code, which relies on "
        f"behaviour of the CLI that changes between versions (tested: {', '.join(TESTED_CLI_VERSIONS)}). Install "
        "the claude-agent-sdk version this release pins, or set "
        f"{ALLOW_UNTESTED_CLI}=true to run it anyway (then run its compatibility tests)."
    )
