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

import os

from ._compat import bundled_cli_version, check_cli_version, check_versions

check_versions()
if not os.environ.get("LITELLM_CLAUDE_CODE_CLI_PATH", "").strip():
    check_cli_version(bundled_cli_version(), "bundled with claude-agent-sdk")

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

__version__ = "0.1.0"

handler = ClaudeCodeProvider()
"""The instance proxy YAML points at (``custom_handler: litellm_claude_code.handler``)."""

# The proxy imports this module when it loads its config: reading the settings now makes a
# bad LITELLM_CLAUDE_CODE_* value stop it at start, naming the variable, instead of failing
# every request of a proxy that reports itself healthy.
handler.load_settings()

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
