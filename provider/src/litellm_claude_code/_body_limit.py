"""A cap on request bodies, on the gateway itself (the load balancer has its own).

LiteLLM reads a whole request body into memory before any key is checked, and it checks its
own ``max_request_size_mb`` only with an Enterprise licence. So a gateway reached directly
(``make run``, compose, a gateway's own port) would take a body of any size from anyone who
can reach it, key or no key. This ASGI wrapper answers 413 before the body is read when the
declared ``Content-Length`` is over the cap, and for a body without one (chunked) it reads at
most the cap and then answers 413; a body within the cap is handed on unchanged.

``LITELLM_CLAUDE_CODE_MAX_BODY_MB`` sets the cap (default 32, as the load balancer's
``claude_code_lb_client_max_body_size``: room for inline images); ``0`` turns it off.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BODY_LIMIT_ENV", "DEFAULT_MAX_BODY_MB", "BodyLimit", "install_body_limit", "max_body_bytes"]

BODY_LIMIT_ENV = "LITELLM_CLAUDE_CODE_MAX_BODY_MB"
DEFAULT_MAX_BODY_MB = 32

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("litellm_claude_code.proxy")


def max_body_bytes(env: MutableMapping[str, str] | None = None) -> int:
    """The cap in bytes from ``LITELLM_CLAUDE_CODE_MAX_BODY_MB`` (0: no cap)."""
    raw = (os.environ if env is None else env).get(BODY_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        raise ValueError(f"{BODY_LIMIT_ENV} must be a number of megabytes (0: no cap), not {raw!r}") from None
    if megabytes < 0:
        raise ValueError(f"{BODY_LIMIT_ENV} must be 0 or more megabytes, not {raw!r}")
    return int(megabytes * 1024 * 1024)


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)  # the server holds the body to its declared length
            return
        if _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body at all
            return
        # Chunked: read up to the cap, then hand the messages on as they came.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message.get("type") != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        pending = iter(messages)

        async def replay() -> Message:
            for message in pending:
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        limit_mb = self.max_bytes / (1024 * 1024)
        message = (
            f"Request body too large: this gateway accepts at most {limit_mb:g} MB "
            f"({BODY_LIMIT_ENV} on the gateway sets the limit)."
        )
        _log.warning("request refused: body over %g MB on %s", limit_mb, scope.get("path", ""))
        body = json.dumps(
            {"error": {"message": message, "type": "request_too_large", "param": None, "code": "413"}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def install_body_limit(app: Any, max_bytes: int) -> bool:
    """Put :class:`BodyLimit` in front of a Starlette ``app``'s middleware; False if it is there already.

    The proxy loads our auth hook while it starts, after Starlette has built the app's
    middleware stack, so the built stack is wrapped (or, before it is built, the builder).
    """
    if getattr(app, "_claude_code_body_limit", None) is not None:
        return False
    if app.middleware_stack is not None:
        app.middleware_stack = BodyLimit(app.middleware_stack, max_bytes)
    else:
        build = app.build_middleware_stack

        def build_with_limit() -> ASGIApp:
            return BodyLimit(build(), max_bytes)

        app.build_middleware_stack = build_with_limit
    app._claude_code_body_limit = max_bytes
    return True
