"""The request log's record: every request, answered or not, is logged before anything can fail,
so a test can inspect even a rejected or dropped one."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._auth import _auth
from litellm_claude_code.testing._planner import _system_text
from litellm_claude_code.testing._state import _State


def _headers_dict(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _peer(request: web.Request) -> str | None:
    """``host:port`` of the client's end of the connection: tells a test which process sent it."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else None


async def _new_record(request: web.Request, state: _State) -> tuple[dict[str, Any], Any]:
    """Read the body and log the request before anything can fail, so tests can
    inspect even rejected or dropped requests."""
    raw = await request.read()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
    auth, scheme = _auth(request)
    obj = body if isinstance(body, dict) else {}
    tools = obj.get("tools")
    record: dict[str, Any] = {
        "id": f"req_fake{next(state.ids):06d}",
        "time": time.time(),
        "peer": _peer(request),
        "path": request.path,
        "query": dict(request.query),
        "method": request.method,
        "headers": _headers_dict(request),
        "auth": auth,
        "auth_scheme": scheme,
        "body": body,
        "body_bytes": len(raw),
        "model": obj.get("model") if isinstance(obj.get("model"), str) else None,
        "system_text": _system_text(obj.get("system")),
        "messages": obj.get("messages") if isinstance(obj.get("messages"), list) else [],
        "tool_names": [
            t["name"]
            for t in (tools if isinstance(tools, list) else [])
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        ],
        "stream": obj.get("stream") is True,
        "api": "anthropic",
        "scenario": None,
        "scenario_source": None,
        "cache": None,
        "status": None,
        "outcome": None,
    }
    state.log(record)
    return record, body
