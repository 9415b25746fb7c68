"""The start-up check of dependency versions (``_compat.check_versions``, run when the first provider is made)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as real_version

import pytest
from litellm_claude_code import _compat
from litellm_claude_code._compat import MINIMUM_VERSIONS, DependencyVersionError, check_versions


def fake_versions(monkeypatch: pytest.MonkeyPatch, **installed: str | None) -> None:
    """Make ``_compat`` see ``installed`` (``None``: not installed); other packages as they are."""
    names = {name.replace("_", "-"): value for name, value in installed.items()}

    def version(package: str) -> str:
        if package in names:
            value = names[package]
            if value is None:
                raise PackageNotFoundError(package)
            return value
        return real_version(package)

    monkeypatch.setattr(_compat, "version", version)


def test_installed_versions_pass() -> None:
    check_versions()  # the versions this test suite runs on are supported


def test_minimums_name_the_two_dependencies() -> None:
    assert set(MINIMUM_VERSIONS) == {"litellm", "claude-agent-sdk"}


@pytest.mark.parametrize(
    ("package", "old", "minimum"),
    [
        ("litellm", "1.105.9", "1.106.0"),
        ("claude-agent-sdk", "0.2.188", "0.2.189"),
        ("claude-agent-sdk", "0.1.99", "0.2.189"),
    ],
)
def test_an_older_version_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, package: str, old: str, minimum: str
) -> None:
    fake_versions(monkeypatch, **{package: old})
    with pytest.raises(DependencyVersionError) as info:
        check_versions()
    message = str(info.value)
    assert f"needs {package} >= {minimum}, found {old}" in message
    assert f"pip install --upgrade '{package}>={minimum}'" in message
    assert isinstance(info.value, ImportError)  # an import of the package fails with it


def test_a_missing_dependency_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_versions(monkeypatch, claude_agent_sdk=None)
    with pytest.raises(DependencyVersionError, match=r"needs claude-agent-sdk >= 0\.2\.189, which is not installed"):
        check_versions()


@pytest.mark.parametrize("newer", ["1.106.0", "1.106.0rc1", "1.110.2", "2.0.0", "1.106.0.post3"])
def test_equal_or_newer_versions_pass(monkeypatch: pytest.MonkeyPatch, newer: str) -> None:
    fake_versions(monkeypatch, litellm=newer, claude_agent_sdk="0.2.189")
    check_versions()


def test_versions_compare_as_numbers_not_text(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_versions(monkeypatch, litellm="1.99.0")  # "99" > "106" as text, not as a number
    with pytest.raises(DependencyVersionError, match=r"found 1\.99\.0"):
        check_versions()
