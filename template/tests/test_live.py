"""Opt-in: one request to the real Claude API through the gateway container.

Runs only when the Claude credential variable of this project (see TOKEN_ENV in conftest.py)
is set in the environment, for example:

    CLAUDE_CODE_OAUTH_TOKEN=... make test-live

It spends a few tokens. Without the variable it is skipped, in CI too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PORT, TOKEN_ENV, Gateway, _wait_http, model_aliases, start_gateway

pytestmark = [pytest.mark.docker, pytest.mark.live]


@pytest.fixture(scope="module")
def live_gateway(gateway_image: str, docker_network: Any) -> Iterator[Gateway]:
    # Collected only with a credential the container can use (conftest.live_unavailable).
    token = os.environ[TOKEN_ENV].strip()
    master_key = "sk-live-" + secrets.token_urlsafe(32)  # sk- and at least 32 characters
    container = start_gateway(
        gateway_image,
        docker_network,
        {"LITELLM_MASTER_KEY": master_key, TOKEN_ENV: token},
        fake=False,
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(PORT)}"
        _wait_http(f"{url}/health/readiness", 180, container)
        yield Gateway(url, master_key, container)


def test_real_claude_answers_a_streaming_request(live_gateway: Gateway) -> None:
    from openai import OpenAI

    client = OpenAI(
        base_url=f"{live_gateway.url}/v1",
        api_key=live_gateway.master_key,
        max_retries=0,
        timeout=180,
    )
    aliases = model_aliases()
    alias = next((a for a, m in aliases.items() if m == "haiku"), sorted(aliases)[0])
    stream = client.chat.completions.create(
        model=alias,
        messages=[{"role": "user", "content": "Reply with the single word: pong"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
    assert "pong" in text.lower()
    assert usage is not None
    assert usage.completion_tokens > 0
