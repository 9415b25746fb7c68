"""The control API (``/_fake/*``): the request log, the scenario queue, the default scenario, the
prompt cache and a health check, for tests and operators driving the fake over HTTP."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._scenario import ScenarioError, validate_scenario
from litellm_claude_code.testing._state import STATE_KEY
from litellm_claude_code.testing._wire import _error_body, _error_response


async def _ctl_requests_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


async def _ctl_requests_delete(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        n = len(state.requests)
        state.requests.clear()
    return web.json_response({"ok": True, "cleared": n})


async def _read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps(_error_body("invalid_request_error", f"invalid JSON: {exc}")),
            content_type="application/json",
        ) from None


async def _ctl_cache_delete(request: web.Request) -> web.Response:
    cache = request.app[STATE_KEY].cache
    return web.json_response({"ok": True, "cleared": cache.clear() if cache is not None else 0})


async def _ctl_scenarios_post(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        queued = request.app[STATE_KEY].push(data)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc))
    return web.json_response({"ok": True, "queued": queued})


async def _ctl_scenarios_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        return web.json_response(list(state.queue))


async def _ctl_scenarios_delete(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        n = len(state.queue)
        state.queue.clear()
    return web.json_response({"ok": True, "cleared": n})


async def _ctl_default_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.cond:
        return web.json_response(state.default)


async def _ctl_default_put(request: web.Request) -> web.Response:
    data = await _read_json(request)
    try:
        checked = validate_scenario(data)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc))
    state = request.app[STATE_KEY]
    with state.cond:
        state.default = checked
    return web.json_response({"ok": True, "default": checked})


async def _ctl_health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})
