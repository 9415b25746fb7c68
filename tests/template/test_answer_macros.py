"""The validators and derived values of copier.yml (jinja/answers.jinja), unit by unit.

They are loaded with the Jinja setup Copier renders copier.yml with (a sandboxed environment
with the Ansible filters), so what passes here is what Copier runs. End-to-end refusals through
`copier copy` are in test_template_validation.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

from tests.support.template import REPO_ROOT


@pytest.fixture(scope="module")
def macros() -> Any:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(REPO_ROOT)), extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"]
    )
    return env.get_template("jinja/answers.jinja").module


def check(macro: Any, *args: Any) -> str:
    return str(macro(*args)).strip()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Claude Code Gateway", "claude-code-gateway"),
        ("Acme LLM Gateway!", "acme-llm-gateway"),
        ("42 Gateways", "gateways"),
        ("A gateway with a rather long name, for the slug's sake", "a-gateway-with-a-rather-long-nam"),
        ("x" * 31 + " y", "x" * 31),  # truncated at 32 (no leeway), then no trailing '-'
        ("Ünïcode Gateway", "n-code-gateway"),
    ],
)
def test_slug_from_name(macros: Any, name: str, slug: str) -> None:
    assert check(macros.slug_from, name) == slug
    assert check(macros.slug_error, slug) == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ok-slug", ""),
        ("Bad Slug", 'project_slug "Bad Slug" is invalid'),
        ("9lives", "starting with a letter"),
        ("a" * 33, "2 to 32"),
        ("trailing-", "not ending with '-'"),
        ("a--b", "no '--'"),
    ],
)
def test_slug_error(macros: Any, value: str, message: str) -> None:
    result = check(macros.slug_error, value)
    assert (message in result) if message else result == ""
    assert "\n" not in result


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("127.0.0.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("::", True),
        ("gateway.example.internal", True),
        ("300.1.1.1", False),
        ("1.2.3", False),
        ("not a host", False),
        ("-bad.example", False),
        ("under_score.example", False),  # a DNS name has no '_' (inventory names may)
    ],
)
def test_listen_host(macros: Any, value: str, ok: bool) -> None:
    assert (check(macros.listen_host_error, value) == "") is ok


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["gw-1", "gw_2.lan", "10.0.0.5"], ""),
        ([], "must be a non-empty list"),
        ("gw-1", "must be a non-empty list"),
        ({"gw-1": None}, "must be a non-empty list"),
        (["gw-1", "gw-1"], "has duplicates"),
        (["ok", "bad host!", 7], 'gateway host "bad host!" is not a valid inventory hostname'),
        ([7], "gateway host 7 is not a valid inventory hostname"),
    ],
)
def test_gateway_hosts(macros: Any, value: Any, message: str) -> None:
    result = check(macros.gateway_hosts_error, value)
    assert (message in result) if message else result == ""


def test_lb_host(macros: Any) -> None:
    assert check(macros.lb_host_error, "", ["gw-1"]) == ""
    assert check(macros.lb_host_error, "lb-1", ["gw-1"]) == ""
    assert "is also a gateway host" in check(macros.lb_host_error, "gw-1", ["gw-1"])
    assert "not a valid inventory hostname" in check(macros.lb_host_error, "lb 1", ["gw-1"])


def test_redis_host(macros: Any) -> None:
    assert check(macros.redis_host_error, "", ["gw-1"], "") == ""
    assert check(macros.redis_host_error, "redis-1", ["gw-1"], "lb-1") == ""
    assert "is also a gateway or the load balancer" in check(macros.redis_host_error, "gw-1", ["gw-1"], "")
    assert "is also a gateway or the load balancer" in check(macros.redis_host_error, "lb-1", ["gw-1"], "lb-1")
    assert "not a valid inventory hostname" in check(macros.redis_host_error, "redis 1", ["gw-1"], "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"sonnet": "sonnet", "claude-opus-4.1": "claude-opus-4-1-20250805"}, ""),
        ({"sonnet": "claude-sonnet-4-5@20250929"}, ""),  # Vertex AI
        ({"sonnet": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "opus": "anthropic.claude-opus-4-1-v1:0"}, ""),
        ({"x": "claude-sonnet-4-5@2025"}, "which is not a Claude model"),
        ({"x": "us.openai.gpt-oss-120b-1:0"}, "which is not a Claude model"),
        ({}, "must be a non-empty mapping"),
        (["sonnet"], "must be a non-empty mapping"),
        ({"Bad Alias": "sonnet"}, 'model alias "Bad Alias" is invalid'),
        ({"fast": "gpt-4o"}, 'routes to "gpt-4o", which is not a Claude model'),
        ({"x": "claude-Sonnet 4"}, "which is not a Claude model"),
    ],
)
def test_model_aliases(macros: Any, value: Any, message: str) -> None:
    result = check(macros.model_aliases_error, value)
    assert (message in result) if message else result == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("claude-code", ""),
        ("Claude Code", "is invalid"),
        ("anthropic", "is a built-in LiteLLM provider"),
    ],
)
def test_provider_name(macros: Any, value: str, message: str) -> None:
    result = check(macros.provider_name_error, value)
    assert (message in result) if message else result == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [("Gateway", ""), ("  ", "must not be empty"), ("x" * 81, "at most 80"), ('a "quoted" name', "double quotes")],
)
def test_project_name(macros: Any, value: str, message: str) -> None:
    result = check(macros.project_name_error, value)
    assert (message in result) if message else result == ""
