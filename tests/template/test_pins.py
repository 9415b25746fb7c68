"""The versions of litellm and claude-agent-sdk agree wherever they are written.

provider/pyproject.toml states the ranges the provider supports; _compat.py refuses anything
older at import; copier.yml pins the exact versions a generated project installs, and
template/requirements.lock locks them, and requirements-dev.txt makes the tests run the same
versions. A bump that misses one of them fails here.
"""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.support.template import REPO_ROOT

PACKAGES = {"litellm": "litellm_version", "claude-agent-sdk": "claude_agent_sdk_version"}


def _provider_requirements() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO_ROOT / "provider" / "pyproject.toml").read_text())
    found = {}
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        found[requirement.name] = requirement
    return found


def _minimum_versions() -> dict[str, Version]:
    source = (REPO_ROOT / "provider" / "src" / "litellm_claude_code" / "_compat.py").read_text()
    block = re.search(r"MINIMUM_VERSIONS = \{(.*?)\}", source, re.S)
    assert block, "_compat.py has no MINIMUM_VERSIONS mapping"
    return {
        name: Version(".".join(parts.replace(" ", "").split(",")))
        for name, parts in re.findall(r'"([\w-]+)":\s*\(([\d,\s]+)\)', block.group(1))
    }


def _locked() -> dict[str, Version]:
    """``name==version`` lines of the hashed lock (each ends with `` \\`` and its hashes follow)."""
    lock = (REPO_ROOT / "template" / "requirements.lock").read_text()
    return {m[0].lower(): Version(m[1]) for m in re.findall(r"^([\w.-]+)==([^\s\\;]+)", lock, re.M)}


def _dev_pins() -> dict[str, Version]:
    found = {}
    for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if requirement.name in PACKAGES and exact:
            found[requirement.name] = Version(exact[0])
    return found


def test_pins_agree() -> None:
    copier = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    requirements = _provider_requirements()
    minimum = _minimum_versions()
    locked = _locked()
    dev = _dev_pins()
    assert set(minimum) == set(PACKAGES), minimum
    for package, question in PACKAGES.items():
        pinned = Version(str(copier[question]["default"]))
        assert locked[package] == pinned, (
            f"template/requirements.lock has {package} {locked[package]}, copier.yml {pinned}"
        )
        assert dev.get(package) == pinned, (
            f"requirements-dev.txt pins {package} {dev.get(package)}, copier.yml {pinned}: the tests would run "
            "another version than users get"
        )
        assert requirements[package].specifier.contains(pinned), (
            f"copier.yml pins {package} {pinned}, outside provider/pyproject.toml's {requirements[package].specifier}"
        )
        assert pinned >= minimum[package], f"copier.yml pins {package} {pinned}, below _compat.py's {minimum[package]}"
        assert requirements[package].specifier.contains(minimum[package]), (
            f"_compat.py's minimum {package} {minimum[package]} is outside {requirements[package].specifier}"
        )


def test_the_docs_state_the_ranges_and_minimums() -> None:
    """docs/installation.md quotes pyproject's ranges, docs/troubleshooting.md _compat's minimums."""
    pyproject = tomllib.loads((REPO_ROOT / "provider" / "pyproject.toml").read_text())
    minimum = _minimum_versions()
    installation = (REPO_ROOT / "docs" / "installation.md").read_text()
    troubleshooting = " ".join((REPO_ROOT / "docs" / "troubleshooting.md").read_text().split())
    for line in pyproject["project"]["dependencies"]:
        if Requirement(line).name in PACKAGES:
            assert f"`{line}`" in installation, f"docs/installation.md does not quote the provider's `{line}`"
    expected = f"The minimums are litellm {minimum['litellm']} and claude-agent-sdk {minimum['claude-agent-sdk']}."
    assert expected in troubleshooting, f"docs/troubleshooting.md should say: {expected}"
