"""Talking to a running proxy over HTTP and reading its request log: shared by the provider tests.

``post`` sends with the master key; ``error_message`` and ``assert_no_traceback`` read what a
client was told; ``log_lines`` and ``log_fields`` read the provider's ``claude_code_request``
line of one request (its ``request_id`` is the ``x-litellm-call-id`` header the client got).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.stack import MASTER_KEY, Proxy, wait_until

# A bound on one request: generous, since two cores are shared with other test runs. A hang
# shows up as a timeout of the HTTP client, which fails the test.
HTTP_TIMEOUT = 60.0

TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', '.py", line ')


def user(text: str) -> list[dict[str, Any]]:
    """One user message: a request's ``messages``."""
    return [{"role": "user", "content": text}]


def post(proxy: Proxy, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST /v1/chat/completions with the master key (unless ``headers`` says otherwise)."""
    if headers is None:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=HTTP_TIMEOUT)


def error_message(response: httpx.Response) -> str:
    """The OpenAI-shaped error message of a failed response (the test fails if there is none)."""
    body = response.json()
    assert isinstance(body.get("error"), dict), body
    message = body["error"]["message"]
    assert isinstance(message, str)
    return message


def assert_no_traceback(text: str) -> None:
    """A client is told what went wrong, never shown our stack."""
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, f"a traceback leaked into a response: {text[:2000]}"


def log_lines(proxy: Proxy, request_id: str) -> list[str]:
    """The proxy log's ``claude_code_request`` lines of one request (one, once it has finished)."""
    return [
        line
        for line in proxy.log_text().splitlines()
        if "claude_code_request " in line and f"request_id={request_id} " in line
    ]


def log_fields(proxy: Proxy, request_id: str, *, timeout: float = 10) -> dict[str, str]:
    """The ``key=value`` fields of one request's log line, waiting up to ``timeout`` for it.

    A request has exactly one such line: a second one (a request logged twice) fails the test.
    """
    assert wait_until(lambda: bool(log_lines(proxy, request_id)), timeout), f"no request log line for {request_id}"
    (line,) = log_lines(proxy, request_id)
    return dict(re.findall(r"(\w+)=(\S+)", line.split("claude_code_request ", 1)[1]))
