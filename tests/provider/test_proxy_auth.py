"""Who gets in with a near miss of the master key, through the real proxy (the session ``proxy`` fixture).

Every route with no key, a revoked key, an unknown key, a person's key and the scrape key is
swept in ``test_route_sweep.py`` (the generated config, every route the app registers); here
the master key itself: the exact key gets in both ways, every near miss is a 401.
"""

from __future__ import annotations

import httpx
import pytest
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import MASTER_KEY, Proxy

pytestmark = pytest.mark.integration

TIMEOUT = 60.0


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
