"""Fixtures shared by the provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litellm_claude_code.testing import FakeAnthropicServer

_MARKERS = {
    "integration": "runs real binaries (the bundled Claude Code CLI) against local fakes",
}


def pytest_configure(config: pytest.Config) -> None:
    """Declare our markers unless the top-level pytest config already does."""
    declared = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, help_text in _MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    """A started fake Anthropic Messages API on a free port, stopped afterwards."""
    with FakeAnthropicServer() as server:
        yield server
