"""Repository-wide test rules.

Under ``CI=true`` a skipped test is a failed test: a CI run that skips what it exists to
check proves nothing. This hook is the only place that rule is written; helpers just skip.
Markers are declared in pyproject.toml only. The only exception is a test marked ``live``, which needs a real
Claude token that CI never has.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from tests.support.ci import in_ci

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("live") is None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
