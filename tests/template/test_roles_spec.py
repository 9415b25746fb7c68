"""Each role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.template import REPO_ROOT

ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_there_are_roles() -> None:
    assert {"claude_code_gateway", "claude_code_lb"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role: str) -> None:
    defaults = _load(REPO_ROOT / "roles" / role / "defaults" / "main.yml")
    options = _load(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), {
        "undocumented": sorted(set(defaults) - set(options)),
        "documented without a default": sorted(set(options) - set(defaults)),
    }
    for name, spec in options.items():
        assert name.startswith(role + "_"), f"{name}: role variables carry the role's name as prefix"
        assert spec.get("type") and spec.get("description"), f"{name}: needs a type and a description"
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{name}: argument_specs says {spec['default']!r}"
