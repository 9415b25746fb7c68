"""The package's public surface: exactly these names, importable from the package root.

A name added to or dropped from ``__all__`` is an API change: it fails here until this list
(and the changelog) say so. Every error class the provider raises is public, so callers catch
``litellm_claude_code.RateLimitedError`` instead of reaching into an internal module.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import litellm_claude_code
from litellm_claude_code import _errors as errors

PUBLIC = {
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


def test_only_the_public_modules_lack_an_underscore() -> None:
    """Every other module is private, so a new module is private unless this list says otherwise:
    ``proxy_auth`` and ``proxy_hooks`` are named by proxy YAML, ``keys`` is the key store's command line
    (``python -m litellm_claude_code.keys``), ``testing`` is the fake upstream users smoke-test with."""
    package = Path(litellm_claude_code.__file__).parent
    public = {path.stem for path in package.glob("*.py") if not path.stem.startswith("_")}
    public |= {path.parent.name for path in package.glob("*/__init__.py")}
    assert public == {"keys", "proxy_auth", "proxy_hooks", "testing"}


def test_proxy_yaml_names_stay_importable() -> None:
    # The YAML a generated project ships points at these by dotted path.
    assert importlib.import_module("litellm_claude_code.proxy_auth").user_api_key_auth
    assert importlib.import_module("litellm_claude_code.proxy_hooks").not_applied_header
    assert litellm_claude_code.handler is importlib.import_module("litellm_claude_code").handler
    testing = importlib.import_module("litellm_claude_code.testing")
    assert {"FakeAnthropicServer", "directive", "main"} <= set(testing.__all__)
