"""Where the suite runs. The rule built on it, "under CI=true a skip is a failure", lives in one
place: the report hook of tests/conftest.py. Helpers here and elsewhere only ever skip."""

from __future__ import annotations

import os


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
