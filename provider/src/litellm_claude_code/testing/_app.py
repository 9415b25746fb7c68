"""The fake's aiohttp application: the routes of every API and of the control endpoints, and the
guard that turns a bug into a clean 500."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._anthropic import _messages, _unknown
from litellm_claude_code.testing._bedrock import _bedrock, _bedrock_inference_profiles
from litellm_claude_code.testing._cache import DEFAULT_MIN_TOKENS, PromptCache
from litellm_claude_code.testing._cloud import BEDROCK_ROUTE, TOKEN_ROUTE, VERTEX_ROUTE
from litellm_claude_code.testing._control import (
    _ctl_cache_delete,
    _ctl_default_get,
    _ctl_default_put,
    _ctl_health,
    _ctl_requests_delete,
    _ctl_requests_get,
    _ctl_scenarios_delete,
    _ctl_scenarios_get,
    _ctl_scenarios_post,
)
from litellm_claude_code.testing._scenario import DEFAULT_TOKENS, Scenario
from litellm_claude_code.testing._state import STATE_KEY, _State
from litellm_claude_code.testing._vertex import _token, _vertex
from litellm_claude_code.testing._wire import LOG, _error_response


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn any bug or odd input into an Anthropic-shaped 500 instead of a dead
    connection, so one bad request never takes the fake down for the next test."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except ConnectionError:
        raise
    except Exception as exc:  # the point is to survive anything
        LOG.exception("fake server error on %s %s", request.method, request.path)
        return _error_response(500, "api_error", f"fake server error: {exc!r}")


def build_app(
    *,
    tokens: int = DEFAULT_TOKENS,
    token_delay: float = 0.0,
    accept_keys: Iterable[str] | None = None,
    default: Scenario | None = None,
    cache: bool = True,
    cache_min_tokens: int = DEFAULT_MIN_TOKENS,
) -> web.Application:
    """Build the aiohttp application (for embedding in an existing aiohttp test)."""
    base: Scenario = {"tokens": tokens, "token_delay": token_delay}
    base.update(default or {})
    return _make_app(_State(base, accept_keys, PromptCache(cache_min_tokens) if cache else None))


def _make_app(state: _State) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app.router.add_post("/v1/messages", _messages)
    app.router.add_post("/v1/messages/count_tokens", _messages)
    app.router.add_post(VERTEX_ROUTE, _vertex)
    app.router.add_post(BEDROCK_ROUTE, _bedrock)
    app.router.add_get("/inference-profiles", _bedrock_inference_profiles)
    app.router.add_post(TOKEN_ROUTE, _token)
    app.router.add_get("/_fake/requests", _ctl_requests_get)
    app.router.add_delete("/_fake/requests", _ctl_requests_delete)
    app.router.add_get("/_fake/scenarios", _ctl_scenarios_get)
    app.router.add_post("/_fake/scenarios", _ctl_scenarios_post)
    app.router.add_delete("/_fake/scenarios", _ctl_scenarios_delete)
    app.router.add_get("/_fake/default", _ctl_default_get)
    app.router.add_put("/_fake/default", _ctl_default_put)
    app.router.add_delete("/_fake/cache", _ctl_cache_delete)
    app.router.add_get("/_fake/health", _ctl_health)
    app.router.add_route("*", "/{tail:.*}", _unknown)
    return app


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
