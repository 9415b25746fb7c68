"""The package's public surface: exactly these names, importable from the package root.

A name added to or dropped from ``__all__`` is an API change: it fails here until this list
(and the changelog) say so. Every error class the provider raises is public, so callers catch
``litellm_claude_code.RateLimitedError`` instead of reaching into an internal module.
"""

from __future__ import annotations

import inspect

import litellm_claude_code
from litellm_claude_code import _errors as errors

PUBLIC = {
    "BadRequestError",
    "CLIFailedError",
    "CLINotFoundError",
    "ClaudeCodeError",
    "ClaudeCodeProvider",
    "ConfigurationError",
    "DependencyVersionError",
    "QueueFullError",
    "RateLimitedError",
    "RequestTimeoutError",
    "Settings",
    "SettingsError",
    "UpstreamAuthError",
    "UpstreamOverloadedError",
    "UpstreamServerError",
    "__version__",
    "handler",
    "register",
}


def test_exported_names_are_pinned() -> None:
    assert set(litellm_claude_code.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(litellm_claude_code, name), name


def test_every_error_class_is_exported() -> None:
    raised = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ClaudeCodeError) and value.__module__ == errors.__name__
    }
    assert raised, "no error classes found"
    assert raised <= set(litellm_claude_code.__all__), sorted(raised - set(litellm_claude_code.__all__))


def test_provider_closes_through_public_methods() -> None:
    provider = litellm_claude_code.ClaudeCodeProvider
    assert inspect.iscoroutinefunction(provider.aclose)
    assert callable(provider.close)
