"""Test helpers shipped with the package: a fake Anthropic Messages API server.

Shipped (not kept under tests/) so that users can smoke-test a deployment without
spending tokens, and so the project's own tests in other processes share one fake.

The names are loaded lazily: ``python -m litellm_claude_code.testing.fake_anthropic``
imports this package first, and an eager import here would load the server module
twice (once as ``__main__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm_claude_code.testing.fake_anthropic import (
        DIRECTIVE_PREFIX,
        DIRECTIVE_SUFFIX,
        FakeAnthropicServer,
        Scenario,
        ScenarioError,
        build_app,
        directive,
        main,
        validate_scenario,
    )

__all__ = [
    "DIRECTIVE_PREFIX",
    "DIRECTIVE_SUFFIX",
    "FakeAnthropicServer",
    "Scenario",
    "ScenarioError",
    "build_app",
    "directive",
    "main",
    "validate_scenario",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module("litellm_claude_code.testing.fake_anthropic")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
