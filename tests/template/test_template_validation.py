"""Invalid answers are refused with the validator's message, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.template import render

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"project_slug": "Bad Slug"}, 'project_slug "Bad Slug" is invalid'),
    ({"project_slug": "9lives"}, "starting with a letter"),
    ({"project_slug": "a" * 33}, "2 to 32"),
    ({"project_slug": "trailing-"}, "not ending with '-'"),
    ({"project_name": "  "}, "project_name must not be empty"),
    ({"model_aliases": {"fast": "gpt-4o"}}, 'model alias "fast" routes to "gpt-4o", which is not a Claude model'),
    ({"model_aliases": {"Bad Alias": "sonnet"}}, 'model alias "Bad Alias" is invalid'),
    ({"model_aliases": {}}, "model_aliases must be a non-empty mapping"),
    ({"model_aliases": ["sonnet"]}, "model_aliases must be a non-empty mapping"),
    ({"model_aliases": {"x": "claude-Sonnet 4"}}, "which is not a Claude model"),
    ({"default_model": "gpt-4"}, "Invalid choice for 'default_model'"),
    ({"provider_name": "Claude Code"}, 'provider_name "Claude Code" is invalid'),
    ({"provider_name": "anthropic"}, "is a built-in LiteLLM provider"),
    ({"listen_host": "not a host"}, "is not an IPv4 address, an IPv6 address or a hostname"),
    ({"listen_host": "300.1.1.1"}, "is not an IPv4 address"),
    ({"listen_port": 80}, "listen_port 80 is out of range: use 1024 to 65535"),
    ({"listen_port": 70000}, "listen_port 70000 is out of range"),
    ({"listen_port": "http"}, "invalid literal for int()"),
    ({"auth_method": "password"}, "Invalid choice for 'auth_method'"),
    ({"max_concurrency": 0}, "max_concurrency must be auto or a whole number between 1 and 256"),
    ({"max_concurrency": "lots"}, "max_concurrency must be auto or a whole number between 1 and 256"),
    ({"max_concurrency": 257}, "max_concurrency must be auto or a whole number between 1 and 256"),
    ({"request_timeout": 5}, "request_timeout must be between 10 and 86400 seconds"),
    ({"package_source": "conda"}, "Invalid choice for 'package_source'"),
    ({"gateway_hosts": []}, "gateway_hosts must be a non-empty list of hostnames"),
    ({"gateway_hosts": "gateway-1"}, "gateway_hosts must be a non-empty list of hostnames"),
    ({"gateway_hosts": ["gw-1", "gw-1"]}, "gateway_hosts has duplicates"),
    ({"gateway_hosts": ["bad host!"]}, 'gateway host "bad host!" is not a valid inventory hostname'),
    ({"redis_host": "redis 1"}, 'redis_host "redis 1" is not a valid inventory hostname'),
    ({"redis_host": "gateway-1"}, 'redis_host "gateway-1" is also a gateway or the load balancer'),
    ({"gateway_hosts": ["gw-1", "gw-2"], "redis_host": "lb-1"}, "is also a gateway or the load balancer"),
]


@pytest.mark.parametrize(("data", "message"), INVALID, ids=[str(d) for d, _ in INVALID])
def test_invalid_answer_is_rejected(template_repo: Path, tmp_path: Path, data: dict[str, Any], message: str) -> None:
    dest = tmp_path / "gateway"
    with pytest.raises(ValueError, match=None) as info:
        render(template_repo, dest, data)
    assert message in str(info.value)
    assert not dest.exists() or not any(dest.iterdir()), "files were written"


VALID: list[dict[str, Any]] = [
    {"listen_host": "0.0.0.0"},
    {"listen_host": "::"},
    {"listen_host": "gateway.example.internal"},
    {"model_aliases": {"claude-opus-4.1": "claude-opus-4-1-20250805", "h": "haiku"}},
    {"project_name": "Ünïcode Gateway"},
    {"listen_port": 1024},
    {"gateway_hosts": ["10.0.0.5", "gw_2.lan"]},
    {"max_concurrency": "auto"},
    {"max_concurrency": 256},
    {"max_concurrency": "12"},
    {"redis_host": "redis-1.example.internal"},
]


@pytest.mark.parametrize("data", VALID, ids=[str(d) for d in VALID])
def test_valid_edge_answers_render(template_repo: Path, tmp_path: Path, data: dict[str, Any]) -> None:
    project = render(template_repo, tmp_path / "gateway", data)
    assert (project / "config" / "litellm.yaml").is_file()
    if "max_concurrency" in data:
        # A number reaches the provider as written; auto leaves it to the provider's host-derived rule.
        env = (project / "config" / "provider.env").read_text()
        if str(data["max_concurrency"]).lower() == "auto":
            assert "\nLITELLM_CLAUDE_CODE_MAX_CONCURRENCY=" not in env
        else:
            assert f"\nLITELLM_CLAUDE_CODE_MAX_CONCURRENCY={data['max_concurrency']}\n" in env
