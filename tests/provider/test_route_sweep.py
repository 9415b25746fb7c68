"""Every route the proxy serves, tried with a person's key, a revoked key, no key and the scrape key.

The proxy runs the generated project's own ``config/litellm.yaml`` (the template rendered with
its defaults) with a key store, as ``make run`` and compose run it: an API-key credential in
its environment, so a pass-through route that let a key in would sign with it. The routes
come from the running app itself (``tests/support/route_dump.py``: HTTP routes with their
methods, WebSocket routes, mounts; ``LITELLM_DISABLE_LAZY_ROUTES`` makes LiteLLM register the
routes it otherwise adds on a path's first request), so a route a later LiteLLM adds is swept.

A person's key may be answered by nothing but a refusal (401/403; 404/405 with a short body
where the path did not match) except on the allow-list (``_routes.PERSON_ROUTES``), and no
request of a sweep may reach the upstream. The sweep's key is limited to ``haiku`` and every
request names ``opus``, in the body and in the path where the route has one, so even an
allowed route refuses (403 for the model) and nothing is served: a route that let the key
through would reach the upstream and fail the test.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from litellm_claude_code._routes import PERSON_ROUTES, match_person_route
from litellm_claude_code.keys import KeyRecord, hash_key, metrics_key, write_records
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import MASTER_KEY, REPO, UPSTREAM_KEY, Proxy, start_proxy, stop_proxy, wait_until
from tests.support.template import make_template_repo, render
from tests.support.upstream import marked

pytestmark = pytest.mark.integration

TIMEOUT = 60.0
PERSON = "sk-cc-sweep-person-0123456789abcdefghijklmnopqrstuvwxyz"
REVOKED = "sk-cc-sweep-revoked-0123456789abcdefghijklmnopqrstuvwxy"
UNLIMITED = "sk-cc-sweep-unlimited-0123456789abcdefghijklmnopqrstuvw"
SECRETS = (MASTER_KEY, UPSTREAM_KEY, PERSON, REVOKED, UNLIMITED)

# Routes LiteLLM serves without running any key check (its landing page, OAuth/MCP discovery,
# the UI's static files). tests/provider/test_proxy_auth.py pins the same list for requests
# without a key; here they are left out of the "refused" rule but still may not reach upstream.
KEY_FREE_PREFIXES = (
    "/.well-known/",
    "/litellm/.well-known/",
    "/public/",
    "/scim/v2",
    "/langfuse/",
    "/authorize",
    "/toolset/{toolset_name}/",
    "/{mcp_server_name}/",
    "/ui",
    "/sso/",
    "/_next",
    "/litellm-asset-prefix/",
    "/swagger",
    "/health/liveliness",
    "/health/readiness",
    "/health/liveness",
    "/v1/mcp/oauth/",  # MCP OAuth discovery and its token exchange (no model, no upstream)
    "/onboarding/",  # UI invitation links (need a database; answer 422 on the sweep's body)
)
KEY_FREE = {
    "/",
    "/docs",
    "/docs/oauth2-redirect",
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
    "/robots.txt",
    "/fallback/login",  # the UI's login page
    "/login",  # the UI's sign-in (user and password; LiteLLM rate-limits failures: 429)
    "/v2/login",
    "/get_favicon",
    "/get_image",
    "/get_logo_url",
    "/v1/logs",  # 410: LiteLLM moved its trace and log intake elsewhere
    "/v1/traces",
}


def key_free(path: str) -> bool:
    return path in KEY_FREE or path.startswith(KEY_FREE_PREFIXES)


def concrete(path: str) -> str:
    """A request path for a route template: the model in the path is ``opus``."""
    path = re.sub(r"\{(model|model_name|deployment_id|model_id)(:path)?\}", "opus", path)
    path = re.sub(r"\{endpoint(:path)?\}", "v1/messages", path)
    return re.sub(r"\{[^}]+\}", "x", path)


BODY = {"model": "opus", "max_tokens": 5, "messages": [{"role": "user", "content": "sweep"}], "input": "sweep"}


@pytest.fixture(scope="module")
def generated_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered with its defaults: the generated project's config/litellm.yaml."""
    base = tmp_path_factory.mktemp("sweep-template")
    project = render(make_template_repo(base / "template"), base / "project")
    return project / "config" / "litellm.yaml"


@pytest.fixture(scope="module")
def sweep(
    upstream: FakeAnthropicServer, generated_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Proxy, list[dict[str, Any]]]]:
    work = tmp_path_factory.mktemp("sweep-proxy")
    store = work / "keys.json"
    write_records(
        store,
        [
            KeyRecord(name="person", sha256=hash_key(PERSON), models=("haiku",)),
            KeyRecord(name="gone", sha256=hash_key(REVOKED), revoked=True),
            KeyRecord(name="anyone", sha256=hash_key(UNLIMITED)),
        ],
    )
    routes_file = work / "routes.json"
    proxy = start_proxy(
        generated_config,
        work,
        upstream,
        # Every lazily registered feature (the Messages API, pass-through families, MCP, ...) is
        # registered at start, so the route table is complete before the first request.
        # Two CLI slots: a key without its own PARALLEL gets one of them.
        {
            "LITELLM_CLAUDE_CODE_KEYS_FILE": str(store),
            "PYTHONPATH": str(REPO),
            "LITELLM_DISABLE_LAZY_ROUTES": "true",
            "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "2",
        },
        command=[sys.executable, "-m", "tests.support.route_dump", str(routes_file)],
    )
    try:
        assert wait_until(routes_file.exists, 60), "the proxy never wrote its routes"
        yield proxy, json.loads(routes_file.read_text())
    finally:
        stop_proxy(proxy)


def http_requests(routes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) for every HTTP route and method; a mount is tried with GET."""
    found = set()
    for route in routes:
        if route["kind"] in ("APIWebSocketRoute", "WebSocketRoute"):
            continue
        methods = [m for m in route["methods"] if m not in ("HEAD", "OPTIONS")] or ["GET"]
        for method in methods:
            found.add((method, route["path"], concrete(route["path"])))
    return sorted(found)


def sweep_http(proxy: Proxy, key: str | None, routes: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    """(method, template, status, body) of each route tried with ``key`` (None: no key at all).

    Eight requests at a time: the sweep is several hundred requests, and each is a refusal."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def one(client: httpx.Client, method: str, template: str, path: str) -> tuple[str, str, int, str]:
        body = None if method in ("GET", "DELETE") else BODY
        response = client.request(method, path, json=body)
        text = response.text
        for secret in SECRETS:
            assert secret not in text, f"{method} {template} answered with a secret"
        return method, template, response.status_code, text

    with (
        httpx.Client(base_url=proxy.base_url, timeout=TIMEOUT, headers=headers) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        futures = [pool.submit(one, client, *request) for request in http_requests(routes)]
        return [future.result() for future in futures]


def sweep_websockets(proxy: Proxy, key: str | None, routes: list[dict[str, Any]]) -> list[str]:
    """WebSocket routes that accepted a connection with ``key``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = proxy.base_url.replace("http://", "ws://")

    async def opened(path: str) -> bool:
        try:
            async with websockets.connect(base + path + "?model=opus", additional_headers=headers, open_timeout=20):
                return True
        except websockets.InvalidStatus:
            return False

    async def run() -> list[str]:
        paths = [concrete(r["path"]) for r in routes if r["kind"] in ("APIWebSocketRoute", "WebSocketRoute")]
        assert paths, "the app lists no WebSocket route: the dump is incomplete"
        return [path for path in paths if await opened(path)]

    return asyncio.run(run())


def refused(status: int, body: str) -> bool:
    return status in (401, 403) or (status in (404, 405) and len(body) < 300)


def test_the_allow_list_names_routes_the_proxy_serves(sweep: tuple[Proxy, list[dict[str, Any]]]) -> None:
    _, routes = sweep
    served = {(m, r["path"].replace(":path}", "}")) for r in routes for m in r["methods"]}
    generic = {(m, re.sub(r"\{(model|model_name|model_id)\}", "{model}", p)) for m, p in served}
    missing = [rule for rule in PERSON_ROUTES if rule not in generic]
    assert not missing, f"allow-listed routes the proxy does not serve (rename or drop them): {missing}"
    assert len(routes) > 500, f"the app lists only {len(routes)} routes"


def test_a_persons_key_reaches_only_the_allow_list(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    proxy, routes = sweep
    answers = sweep_http(proxy, PERSON, routes)
    opened, wrong = [], []
    for method, template, status, body in answers:
        allowed = match_person_route(method, concrete(template)) is not None
        if key_free(template):
            continue
        if not allowed and not refused(status, body):
            opened.append(f"{method} {template}: {status} {body[:160]!r}")
        if status >= 500:
            wrong.append(f"{method} {template}: {status} {body[:160]!r}")
        if not allowed and status == 403 and "route)" not in body and "metrics" not in template:
            wrong.append(f"{method} {template}: a 403 that does not name the route class: {body[:160]!r}")
    assert not opened, "routes a person's key opened:\n" + "\n".join(opened)
    assert not wrong, "refusals that are not a clear 403:\n" + "\n".join(wrong)
    assert fake.requests() == [], "a request of the sweep reached the upstream"
    assert sweep_websockets(proxy, PERSON, routes) == []
    assert fake.requests() == [], "a WebSocket of the sweep reached the upstream"


@pytest.mark.parametrize("key", [None, REVOKED, "sk-cc-not-a-key-0123456789"], ids=["no-key", "revoked", "unknown"])
def test_without_a_valid_key_every_route_is_refused(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer, key: str | None
) -> None:
    proxy, routes = sweep
    opened = [
        f"{method} {template}: {status} {body[:160]!r}"
        for method, template, status, body in sweep_http(proxy, key, routes)
        if not key_free(template) and not (status == 401 or (status in (404, 405) and len(body) < 300))
    ]
    assert not opened, "routes that answered without a valid key:\n" + "\n".join(opened)
    assert sweep_websockets(proxy, key, routes) == []
    assert fake.requests() == [], "a request without a valid key reached the upstream"


def test_pass_through_with_a_persons_key_never_reaches_the_upstream(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    proxy, _ = sweep
    for key in (PERSON, UNLIMITED):
        response = httpx.post(
            proxy.base_url + "/anthropic/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 403, response.text
        assert "pass-through route" in response.text
    assert fake.requests() == []


def test_the_model_checked_is_the_model_served(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    proxy, _ = sweep
    headers = {"Authorization": f"Bearer {PERSON}"}
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with httpx.Client(base_url=proxy.base_url, timeout=TIMEOUT, headers=headers) as client:
        for prefix in ("/openai/deployments", "/engines"):
            bypass = client.post(f"{prefix}/opus/chat/completions", json={**chat, "model": "haiku"})
            assert bypass.status_code == 400 and "name one model" in bypass.text, bypass.text
            by_path = client.post(f"{prefix}/opus/chat/completions", json=chat)
            assert by_path.status_code == 403 and "may not use model 'opus'" in by_path.text, by_path.text
        for model in ("claude-code/opus", "haiku,opus", "anthropic/claude-sonnet-4-5"):
            raw = client.post("/v1/chat/completions", json={**chat, "model": model})
            assert raw.status_code == 400 and "Unknown model" in raw.text, raw.text
        fallback = client.post("/v1/chat/completions", json={**chat, "model": "haiku", "fallbacks": ["opus"]})
        assert fallback.status_code == 400 and "fallbacks" in fallback.text, fallback.text
        assert fake.requests() == []
        served = client.post("/openai/deployments/haiku/chat/completions", json=chat)
        assert served.status_code == 200, served.text
    # With max_tokens=5 the CLI may ask once more to resume the cut answer before its turn is
    # dropped: one or two upstream requests, each for the model checked.
    requests = fake.messages_requests()
    assert requests and all("haiku" in request["body"]["model"] for request in requests), requests


def test_metrics_and_health_refuse_person_keys_and_the_scrape_key_opens_only_metrics(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    proxy, routes = sweep
    with httpx.Client(base_url=proxy.base_url, timeout=TIMEOUT) as client:
        for key in (PERSON, UNLIMITED):
            for path in ("/metrics", "/metrics/", "/health", "/health?model=haiku"):
                answer = client.get(path, headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code in (401, 403), (path, answer.status_code, answer.text[:200])
        scrape = metrics_key(MASTER_KEY)
        assert client.get("/metrics/", headers={"Authorization": f"Bearer {scrape}"}).status_code == 200
        master = client.get("/metrics/", headers={"Authorization": f"Bearer {MASTER_KEY}"})
        assert master.status_code == 200 and "litellm" in master.text
    opened = [
        f"{method} {template}: {status}"
        for method, template, status, body in sweep_http(proxy, scrape, routes)
        if not key_free(template) and template not in ("/metrics", "/metrics/") and not refused(status, body)
    ]
    assert not opened, "routes the scrape key opened:\n" + "\n".join(opened)
    assert fake.requests() == []


def test_request_bodies_over_the_cap_are_413_before_any_key_check(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    proxy, _ = sweep
    big = b'{"model": "haiku", "messages": [{"role": "user", "content": "' + b"a" * (33 * 1024 * 1024) + b'"}]}'
    url = proxy.base_url + "/v1/chat/completions"
    for headers in ({"Authorization": f"Bearer {PERSON}"}, {}):
        declared = httpx.post(
            url, content=big, headers={**headers, "content-type": "application/json"}, timeout=TIMEOUT
        )
        assert declared.status_code == 413, declared.text[:300]
        assert "at most 32 MB" in declared.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 1 << 20):
                yield big[start : start + (1 << 20)]

        chunked = httpx.post(
            url, content=chunks(), headers={**headers, "content-type": "application/json"}, timeout=TIMEOUT
        )
        assert chunked.status_code == 413, chunked.text[:300]
    small = httpx.post(
        url,
        json={"model": "haiku", "messages": [{"role": "user", "content": "a" * (1 << 20)}], "max_tokens": 5},
        headers={"Authorization": f"Bearer {PERSON}"},
        timeout=TIMEOUT,
    )
    assert small.status_code == 200, small.text[:300]
    assert len(fake.messages_requests()) == 1, "only the body under the cap reached the upstream"


def test_a_key_without_parallel_gets_a_share_of_the_slots(
    sweep: tuple[Proxy, list[dict[str, Any]]], fake: FakeAnthropicServer
) -> None:
    """MAX_CONCURRENCY=2 here: a key with no PARALLEL of its own may hold one slot; a second
    request of that key while the first is in flight is a 429, another key's request is served."""
    import threading

    proxy, _ = sweep
    url = proxy.base_url + "/v1/chat/completions"
    outcome: dict[str, int] = {}

    def first() -> None:
        # Ten seconds upstream, scripted in the prompt: a scenario pushed to the fake could be
        # taken by a late request of an earlier test (a CLI resuming a cut answer).
        slow = f"slow-first-7c2e {directive(tokens=100, token_delay=0.1)}"
        body = {"model": "sonnet", "messages": [{"role": "user", "content": slow}]}
        answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {UNLIMITED}"}, timeout=TIMEOUT)
        outcome["first"] = answer.status_code

    thread = threading.Thread(target=first)
    thread.start()
    try:
        # The first request is in flight, upstream.
        assert wait_until(lambda: marked(fake, "slow-first-7c2e"), 60, interval=0.1), fake.messages_requests()
        chat = {"model": "haiku", "messages": [{"role": "user", "content": "meanwhile"}], "max_tokens": 5}
        again = httpx.post(url, json=chat, headers={"Authorization": f"Bearer {UNLIMITED}"}, timeout=TIMEOUT)
        in_flight = thread.is_alive()
        other = httpx.post(url, json=chat, headers={"Authorization": f"Bearer {PERSON}"}, timeout=TIMEOUT)
    finally:
        thread.join(120)
    assert in_flight, "the first request ended before the second was answered: nothing was checked"
    assert outcome["first"] == 200
    assert again.status_code == 429, again.text[:300]
    assert int(again.headers.get("retry-after", "0")) > 0
    assert other.status_code == 200, other.text[:300]
