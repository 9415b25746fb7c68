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

from ._compat import check_versions

check_versions()

from .errors import ClaudeCodeError
from .provider import ClaudeCodeProvider, register
from .settings import Settings, SettingsError

__version__ = "0.1.0"

handler = ClaudeCodeProvider()
"""The instance proxy YAML points at (``custom_handler: litellm_claude_code.handler``)."""

__all__ = [
    "ClaudeCodeError",
    "ClaudeCodeProvider",
    "Settings",
    "SettingsError",
    "__version__",
    "handler",
    "register",
]
