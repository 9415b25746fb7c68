"""The allow-list for person keys and the body cap, without a proxy (the sweep runs them in one)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litellm_claude_code._body_limit import BodyLimit, max_body_bytes
from litellm_claude_code._routes import PERSON_ROUTES, match_person_route, route_class


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/v1/chat/completions", None),
        ("POST", "/chat/completions", None),
        ("POST", "/v1/messages", None),
        ("POST", "/v1/messages/count_tokens", None),
        ("POST", "/v1/responses", None),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/haiku", "haiku"),
        ("POST", "/openai/deployments/opus/chat/completions", "opus"),
        ("POST", "/engines/sonnet/chat/completions", "sonnet"),
    ],
)
def test_the_model_api_is_allowed_and_a_path_model_is_returned(method: str, path: str, model: str | None) -> None:
    found = match_person_route(method, path)
    assert found is not None and found.path_model == model


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/anthropic/v1/messages", "pass-through"),
        ("POST", "/openai/v1/chat/completions", "pass-through"),
        ("POST", "/bedrock/model/x/invoke", "pass-through"),
        ("GET", "/metrics/", "metrics"),
        ("GET", "/health", "health and diagnostics"),
        ("POST", "/key/generate", "keys, users, teams and spend"),
        ("GET", "/model/info", "model info and deployments"),
        ("GET", "/v1/files", "files, batches and stored objects"),
        ("GET", "/v1/responses/resp_1", "files, batches and stored objects"),
        ("POST", "/v1/embeddings", "other LiteLLM API"),
        ("GET", "/v1/chat/completions", "other LiteLLM API"),  # the right path, the wrong method
        ("POST", "/openai/deployments/a/b/chat/completions", "pass-through"),  # a model with a slash
        ("POST", "/v1/chat/completions/", "other LiteLLM API"),
    ],
)
def test_everything_else_is_closed_and_named(method: str, path: str, kind: str) -> None:
    assert match_person_route(method, path) is None
    assert route_class(path) == kind


def test_a_catch_all_template_is_a_pass_through() -> None:
    assert route_class("/somewhere/new", "/somewhere/{endpoint:path}") == "pass-through"


def test_every_rule_is_a_model_api_route() -> None:
    assert all(method in ("GET", "POST") for method, _ in PERSON_ROUTES)
    assert all(
        any(part in path for part in ("completions", "messages", "responses", "models")) for _, path in PERSON_ROUTES
    )


def run_app(limit: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes, bytes]:
    """(status, body the app received, response body) of one request through BodyLimit."""
    received = bytearray()
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers}
    asyncio.run(BodyLimit(app, limit)(scope, receive, send))
    return sent[0]["status"], bytes(received), b"".join(m.get("body", b"") for m in sent[1:])


def test_a_declared_length_over_the_cap_is_413_unread() -> None:
    status, received, body = run_app(10, [(b"content-length", b"11")], [b"x" * 11])
    assert status == 413 and received == b"" and b"at most" in body


def test_a_chunked_body_over_the_cap_is_413_and_one_under_it_arrives_whole() -> None:
    chunked = [(b"transfer-encoding", b"chunked")]
    status, received, _ = run_app(10, chunked, [b"12345", b"67890", b"1"])
    assert status == 413 and received == b""
    status, received, _ = run_app(10, chunked, [b"12345", b"67890"])
    assert status == 200 and received == b"1234567890"


def test_the_cap_comes_from_the_environment() -> None:
    assert max_body_bytes({}) == 32 * 1024 * 1024
    assert max_body_bytes({"LITELLM_CLAUDE_CODE_MAX_BODY_MB": "0.5"}) == 512 * 1024
    assert max_body_bytes({"LITELLM_CLAUDE_CODE_MAX_BODY_MB": "0"}) == 0
    with pytest.raises(ValueError, match="LITELLM_CLAUDE_CODE_MAX_BODY_MB"):
        max_body_bytes({"LITELLM_CLAUDE_CODE_MAX_BODY_MB": "lots"})


def test_the_auth_hook_refuses_to_load_with_an_unusable_master_key() -> None:
    """The proxy imports the hook while it starts: a master key LiteLLM would log raw stops it there."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": "master-without-prefix-0123456789abcdef",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import litellm_claude_code.proxy_auth"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "LITELLM_MASTER_KEY is not a usable master key" in done.stderr
    assert "master-without-prefix" not in done.stderr, "the error repeated the key"
    env["LITELLM_MASTER_KEY"] = "sk-" + "k" * 40
    fine = subprocess.run(
        [sys.executable, "-c", "import litellm_claude_code.proxy_auth"], env=env, capture_output=True, timeout=120
    )
    assert fine.returncode == 0, fine.stderr
