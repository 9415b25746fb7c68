"""Claude Code as a LiteLLM provider: an OpenAI-compatible endpoint for Claude.

Proxy YAML::

    litellm_settings:
      custom_provider_map:
        - provider: claude-code
          custom_handler: litellm_claude_code.handler

Direct SDK use::

    import litellm, litellm_claude_code
    litellm_claude_code.register()
    litellm.completion(model="claude-code/sonnet", messages=[{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

try:
    from ._cli import bundled_cli_path
    from ._compat import DependencyVersionError
    from ._credentials import Credential, resolve_credential
    from ._errors import (
        BadRequestError,
        ClaudeCodeError,
        CLIFailedError,
        CLINotFoundError,
        ConfigurationError,
        QueueFullError,
        RateLimitedError,
        RequestTimeoutError,
        StateDirectoryError,
        UpstreamAuthError,
        UpstreamOverloadedError,
        UpstreamServerError,
    )
    from ._host import Host, read_host
    from ._provider import ClaudeCodeProvider, register
    from ._settings import Settings, SettingsError
except ImportError:
    # A dependency too old (or missing) for one of the names above: say which, and what to
    # install, rather than the bare ImportError. Only on this path, so a good install reads no
    # package metadata at import.
    from ._compat import check_versions

    check_versions()
    raise

if TYPE_CHECKING:
    handler: ClaudeCodeProvider

__version__ = "0.2.0"

_handler_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``handler``: the instance proxy YAML points at (``custom_handler: litellm_claude_code.handler``),
    made on first use, not at import (which does no I/O and starts nothing).

    The proxy asks for it by name when it loads its config, so this is still at proxy start: the
    dependency and CLI version checks run, and the settings are read, now. A bad
    LITELLM_CLAUDE_CODE_* value stops the proxy there, naming the variable, instead of failing
    every request of a proxy that reports itself healthy. A failure leaves no handler behind: the
    next use tries again and says the same.
    """
    if name != "handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _handler_lock:
        made = globals().get("handler")
        if made is None:
            made = ClaudeCodeProvider()
            made.load_settings()
            globals()["handler"] = made
        return made


# The public surface, pinned by tests/provider/test_public_api.py. Every other module is private
# (a leading underscore) so it can change without notice: every error a caller can catch, and the
# few helpers the examples and the benchmark need (credential lookup, bundled CLI, host sizing),
# are here, so nobody imports from an internal module.
__all__ = [
    "BadRequestError",
    "CLIFailedError",
    "CLINotFoundError",
    "ClaudeCodeError",
    "ClaudeCodeProvider",
    "ConfigurationError",
    "Credential",
    "DependencyVersionError",
    "Host",
    "QueueFullError",
    "RateLimitedError",
    "RequestTimeoutError",
    "Settings",
    "SettingsError",
    "StateDirectoryError",
    "UpstreamAuthError",
    "UpstreamOverloadedError",
    "UpstreamServerError",
    "__version__",
    "bundled_cli_path",
    "handler",
    "read_host",
    "register",
    "resolve_credential",
]
