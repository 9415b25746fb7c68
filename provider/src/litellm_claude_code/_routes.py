"""Which LiteLLM routes a person's key may call: an allow-list, written once, here.

LiteLLM serves several hundred routes (its admin API, pass-through families that sign
requests with the proxy's own credentials, ``/metrics``, ``/health`` that runs real
completions, files, batches, the UI). A ``custom_auth`` result is used as LiteLLM gets it,
so nothing of LiteLLM's own route checks stands between a person's key and those routes:
this module is that check. A route that is not listed here is refused, so a route a later
LiteLLM adds is closed until it is classified (the route sweep in
``tests/provider/test_route_sweep.py`` fails until then).

A rule matches the concrete request path (after the proxy's root path) and the method.
Routes that carry the model in their path (``/openai/deployments/{model}/...``,
``/engines/{model}/...``, ``/v1/models/{model}``) give it back, so the model that is checked
is the one LiteLLM will serve (it prefers the path's to the body's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PERSON_ROUTES", "RouteMatch", "match_person_route", "route_class"]


@dataclass(frozen=True)
class Rule:
    method: str
    template: str
    pattern: re.Pattern[str]
    model_in_path: bool


def _rule(method: str, template: str) -> Rule:
    regex = re.escape(template).replace(re.escape("{model}"), r"(?P<model>[^/]+)")
    return Rule(method, template, re.compile(f"^{regex}$"), "{model}" in template)


# (method, path template) a client of the model API needs, in both spellings LiteLLM accepts.
PERSON_ROUTES: tuple[tuple[str, str], ...] = (
    # OpenAI chat completions, and the Azure-style spellings that name the model in the path.
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("POST", "/openai/deployments/{model}/chat/completions"),
    ("POST", "/engines/{model}/chat/completions"),
    # Anthropic Messages (LiteLLM serves it only under /v1) and its token count.
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    # OpenAI Responses (Codex and the Agents SDK); stored responses need a database: not here.
    ("POST", "/v1/responses"),
    ("POST", "/responses"),
    ("POST", "/openai/v1/responses"),
    # The model list (LiteLLM filters it by the key's models) and one model's entry.
    ("GET", "/v1/models"),
    ("GET", "/models"),
    ("GET", "/v1/models/{model}"),
    ("GET", "/models/{model}"),
)

_RULES: tuple[Rule, ...] = tuple(_rule(method, template) for method, template in PERSON_ROUTES)


@dataclass(frozen=True)
class RouteMatch:
    """An allowed route: its template, and the model its path names (``None`` if none)."""

    template: str
    path_model: str | None


def match_person_route(method: str, path: str) -> RouteMatch | None:
    """The allow-list rule for ``method path``, or None: the route is closed to person keys."""
    method = method.upper()
    for rule in _RULES:
        if rule.method != method:
            continue
        found = rule.pattern.match(path)
        if found is not None:
            return RouteMatch(rule.template, found.group("model") if rule.model_in_path else None)
    return None


# Names of the route classes a 403 gives, by path prefix (first match wins).
_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "pass-through",
        (
            "/anthropic",
            "/bedrock",
            "/vertex_ai",
            "/openai",
            "/openai_passthrough",
            "/gemini",
            "/azure",
            "/azure_ai",
            "/cohere",
            "/mistral",
            "/vllm",
            "/openrouter",
            "/langfuse",
            "/assemblyai",
            "/eu.assemblyai",
        ),
    ),
    ("metrics", ("/metrics",)),
    ("health and diagnostics", ("/health", "/test", "/debug", "/active", "/routes", "/cache", "/settings")),
    (
        "keys, users, teams and spend",
        (
            "/key",
            "/v2/key",
            "/user",
            "/v2/user",
            "/team",
            "/v2/team",
            "/customer",
            "/end_user",
            "/organization",
            "/budget",
            "/spend",
            "/global",
            "/v1/spend",
            "/usage",
            "/cost",
            "/access_group",
            "/project",
            "/tag",
            "/credentials",
            "/jwt",
            "/sso",
            "/scim",
            "/audit",
        ),
    ),
    ("model info and deployments", ("/model", "/v1/model", "/model_group", "/v2/model", "/model_hub")),
    ("configuration", ("/config", "/get", "/update", "/router", "/callbacks", "/guardrails", "/policies", "/policy")),
    ("user interface", ("/ui", "/litellm-asset-prefix", "/_next", "/swagger", "/docs", "/redoc", "/openapi.json")),
    (
        "files, batches and stored objects",
        (
            "/files",
            "/v1/files",
            "/batches",
            "/v1/batches",
            "/fine_tuning",
            "/v1/fine_tuning",
            "/vector_stores",
            "/v1/vector_stores",
            "/containers",
            "/v1/containers",
            "/responses/",
            "/v1/responses/",
            "/openai/v1/responses/",
        ),
    ),
    ("MCP and agents", ("/mcp", "/v1/mcp", "/mcp-rest", "/toolset", "/a2a", "/v1/agents", "/agent")),
)

_CATCH_ALL_MARK = "{endpoint"


def route_class(path: str, template: str | None = None) -> str:
    """A short name for what a closed route is, for the 403 that refuses it."""
    if template is not None and _CATCH_ALL_MARK in template:
        return "pass-through"
    for name, prefixes in _CLASSES:
        for prefix in prefixes:
            if path == prefix.rstrip("/") or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                return name
    return "other LiteLLM API"
