"""Who gets in without the master key, through the real proxy (the session ``proxy`` fixture).

Every route the running LiteLLM app serves (its own OpenAPI document, plus the paths it
leaves out of it) is called without a key. Our ``custom_auth`` hook
(``litellm_claude_code.proxy_auth``) guards every route that runs LiteLLM's key check; a
few LiteLLM routes never run it (its landing page, OAuth/MCP discovery, public catalogue
pages). Those are pinned here, so a LiteLLM upgrade that opens a new route fails this test,
and each of them must serve no secret and never reach Claude.
"""

from __future__ import annotations

import re

import httpx
import pytest
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import MASTER_KEY, UPSTREAM_KEY, Proxy

pytestmark = pytest.mark.integration

TIMEOUT = 60.0

# The documented open paths (docs/operations.md): the health probes.
HEALTH = {"/health/liveliness", "/health/readiness", "/health/liveness"}

# LiteLLM routes that never run the key check, by path (as in its OpenAPI document).
# Reviewed: none of them serves a completion, a key, a model list beyond the public
# catalogue, or reaches the upstream (asserted below). docs/operations.md lists them.
LITELLM_KEY_FREE_PREFIXES = (
    "/.well-known/",
    "/litellm/.well-known/",
    "/public/",
    "/scim/v2",
    "/langfuse/",
    "/authorize",
    "/toolset/{toolset_name}/",
    "/{mcp_server_name}/",
    "/ui",  # the admin UI's static pages (its API calls need a key)
    "/sso/",  # the UI's login page
)
LITELLM_KEY_FREE = {
    "/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/api/event_logging/batch",
    "/callback",
    "/claude-code/marketplace.json",
    "/get/ui_settings",
    "/get/ui_theme_settings",
    "/moyai/connect/exchange",
    "/register",
    "/revoke",
    "/token",
}

# Paths clients and scanners try that are not all in the OpenAPI document.
COMMON = [
    "/v1/models",
    "/models",
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/embeddings",
    "/key/generate",
    "/key/info",
    "/user/info",
    "/metrics",
    "/metrics/",
    "/health",
    "/routes",
    "/model/info",
    "/v1/model/info",
    "/spend/logs",
    "/global/spend",
    "/config/yaml",
    "/get/config/callbacks",
    "/ui",
    "/ui/",
    "/sso/key/generate",
    "/debug/asyncio-tasks",
    "/docs",
    "/redoc",
    "/openapi.json",
]

SECRET_SHAPES = (MASTER_KEY, UPSTREAM_KEY, MASTER_KEY[:12], UPSTREAM_KEY[:16])


def key_free(path: str) -> bool:
    return path in HEALTH or path in LITELLM_KEY_FREE or path.startswith(LITELLM_KEY_FREE_PREFIXES)


@pytest.fixture(scope="module")
def routes(proxy: Proxy) -> list[tuple[str, str]]:
    """(method, path) of every route of the running app, plus the common paths (GET and POST)."""
    # Building the document is slow the first time (hundreds of routes): a long timeout.
    spec = httpx.get(proxy.base_url + "/openapi.json", timeout=300).json()
    found = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }
    assert len(found) > 300, f"the proxy's OpenAPI document lists only {len(found)} routes"
    found.update((method, path) for path in COMMON for method in ("GET", "POST"))
    return sorted(found)


def test_only_health_and_pinned_litellm_routes_answer_without_a_key(
    proxy: Proxy, fake: FakeAnthropicServer, routes: list[tuple[str, str]]
) -> None:
    unexpected = []
    with httpx.Client(base_url=proxy.base_url, timeout=TIMEOUT) as client:
        for method, path in routes:
            url = re.sub(r"\{[^}]+\}", "x", path)
            response = client.request(method, url, json=None if method == "GET" else {})
            for secret in SECRET_SHAPES:
                assert secret not in response.text, f"{method} {path} without a key served a secret"
            if key_free(path) or response.status_code == 401:
                continue
            # Not found / wrong method is fine if it carries nothing but the refusal.
            if response.status_code in (404, 405) and len(response.content) < 300:
                continue
            unexpected.append(f"{method} {path}: {response.status_code} {response.text[:120]!r}")
    assert not unexpected, "routes that answered without a key:\n" + "\n".join(unexpected)
    assert fake.messages_requests() == [], "a request without a key reached the upstream"


def test_the_health_probes_are_open_and_the_api_is_not(proxy: Proxy) -> None:
    for path in ("/health/liveliness", "/health/readiness"):
        assert httpx.get(proxy.base_url + path, timeout=TIMEOUT).status_code == 200
    # The pinned key-free LiteLLM routes serve no model list: /v1/models is guarded.
    assert httpx.get(proxy.base_url + "/v1/models", timeout=TIMEOUT).status_code == 401
    listed = httpx.get(
        proxy.base_url + "/v1/models", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=TIMEOUT
    )
    assert listed.status_code == 200
    assert {"sonnet", "opus", "haiku"} <= {m["id"] for m in listed.json()["data"]}


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(MASTER_KEY[:-1], id="truncated-by-one"),
        pytest.param(MASTER_KEY[: len(MASTER_KEY) // 2], id="truncated-half"),
        pytest.param(MASTER_KEY[:3], id="sk-prefix-only"),
        pytest.param("x" + MASTER_KEY, id="prefixed"),
        pytest.param(MASTER_KEY + MASTER_KEY, id="doubled"),
        pytest.param(MASTER_KEY.upper(), id="other-case"),
        pytest.param(f"Bearer {MASTER_KEY}", id="bearer-twice"),
        pytest.param(MASTER_KEY[1:], id="first-char-cut"),
        pytest.param(MASTER_KEY[:8] + "Bearer " + MASTER_KEY[8:], id="bearer-spliced-in"),
        pytest.param(MASTER_KEY + " x", id="suffix-after-space"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/messages"), ("POST", "/key/generate")],
)
def test_a_near_miss_master_key_is_401(
    proxy: Proxy, fake: FakeAnthropicServer, presented: str, method: str, path: str
) -> None:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "near miss"}], "max_tokens": 5}
    for headers in ({"Authorization": f"Bearer {presented}"}, {"x-api-key": presented}):
        response = httpx.request(
            method, proxy.base_url + path, headers=headers, json=None if method == "GET" else body, timeout=TIMEOUT
        )
        assert response.status_code == 401, (headers, response.text)
        assert MASTER_KEY not in response.text
    assert fake.messages_requests() == []


def test_the_exact_master_key_gets_in_both_ways(proxy: Proxy) -> None:
    """The near-miss test above would pass against a proxy that refuses everyone; this one would not."""
    for headers in ({"Authorization": f"Bearer {MASTER_KEY}"}, {"x-api-key": MASTER_KEY}):
        assert httpx.get(proxy.base_url + "/v1/models", headers=headers, timeout=TIMEOUT).status_code == 200
