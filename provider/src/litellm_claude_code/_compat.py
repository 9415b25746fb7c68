"""Refuse to start on dependency versions this provider was not built for.

The provider leans on details that changed across releases (LiteLLM's CustomLLM call
signature and streaming chunk shape; the SDK's bundled CLI, ``tools=[]`` and partial
messages). An older release fails in confusing ways at the first request; this check fails
at import with the command that fixes it.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

MINIMUM_VERSIONS = {
    "litellm": (1, 106, 0),
    "claude-agent-sdk": (0, 2, 180),
}


class DependencyVersionError(ImportError):
    """An installed dependency is older than supported."""


def _parse(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_versions() -> None:
    for package, minimum in MINIMUM_VERSIONS.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            raise DependencyVersionError(
                f"litellm-claude-code needs {package} >= {'.'.join(map(str, minimum))}, which is not installed: "
                f"pip install '{package}>={'.'.join(map(str, minimum))}'"
            ) from None
        if _parse(installed) < minimum:
            raise DependencyVersionError(
                f"litellm-claude-code needs {package} >= {'.'.join(map(str, minimum))}, found {installed}: "
                f"pip install --upgrade '{package}>={'.'.join(map(str, minimum))}'"
            )
