"""The Messages API's streamed answer: events written and flushed one by one (true incremental
streaming), as server-sent events or, with ``frame=bedrock_frame``, Bedrock's event stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._cache import CacheUsage
from litellm_claude_code.testing._cloud import bedrock_frame
from litellm_claude_code.testing._planner import _Plan
from litellm_claude_code.testing._wire import _error_body


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


Frame = Callable[[str, Mapping[str, Any]], bytes]


def _usage(plan: _Plan, cache: CacheUsage) -> dict[str, int]:
    out_tokens = (
        len(plan.thinking) + len(plan.tokens) + sum(max(1, len(json.dumps(t["input"])) // 4) for t in plan.tool_uses)
    )
    usage = {
        "input_tokens": cache.input,
        "cache_creation_input_tokens": cache.creation,
        "cache_read_input_tokens": cache.read,
        "output_tokens": out_tokens,
    }
    usage.update(plan.usage)
    return usage


def _json_chunks(value: Any, size: int = 12) -> list[str]:
    raw = json.dumps(value, separators=(",", ":"))
    return [""] + [raw[i : i + size] for i in range(0, len(raw), size)]


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _stream(
    request: web.Request, plan: _Plan, cache: CacheUsage, record: dict[str, Any], frame: Frame = _sse
) -> tuple[web.StreamResponse, str]:
    """Write the events one by one, flushing each (true incremental streaming): SSE, or with
    ``frame=bedrock_frame`` Bedrock's event stream."""
    _sse = frame
    usage = _usage(plan, cache)
    content_type = (
        "application/vnd.amazon.eventstream" if frame is bedrock_frame else "text/event-stream; charset=utf-8"
    )
    resp = web.StreamResponse(
        status=200,
        headers={
            "content-type": content_type,
            "cache-control": "no-cache",
            "request-id": record["id"],
            **plan.headers,
        },
    )
    if plan.drop_after is not None:
        resp.force_close()
    msg_id = f"msg_fake{uuid.uuid4().hex[:24]}"
    start_usage = dict(usage, output_tokens=min(1, usage["output_tokens"]))
    sent = 0

    async def interrupt() -> str | None:
        if plan.drop_after is not None and sent >= plan.drop_after:
            _abort(request)
            return "dropped"
        if plan.error_after is not None and sent >= plan.error_after:
            await resp.write(
                _sse(
                    "error",
                    _error_body(plan.stream_error["type"], plan.stream_error["message"]),
                )
            )
            return "stream_error"
        return None

    try:
        await resp.prepare(request)
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": plan.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        )
        index = 0
        pinged = False
        if plan.thinking:
            await _stream_thinking(resp, plan)
            index = 1
        if plan.tokens or plan.error_after is not None or plan.drop_after is not None:
            await resp.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            await resp.write(_sse("ping", {"type": "ping"}))
            pinged = True
            for token in plan.tokens:
                if outcome := await interrupt():
                    return resp, outcome
                await _sleep(plan.token_delay)
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": token},
                        },
                    )
                )
                sent += 1
            if outcome := await interrupt():
                return resp, outcome
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if not pinged:
            await resp.write(_sse("ping", {"type": "ping"}))
        for tool in plan.tool_uses:
            await resp.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool["id"],
                            "name": tool["name"],
                            "input": {},
                        },
                    },
                )
            )
            for chunk in _json_chunks(tool["input"]):
                await _sleep(plan.token_delay)
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {
                                "type": "input_json_delta",
                                "partial_json": chunk,
                            },
                        },
                    )
                )
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": plan.stop_reason,
                        "stop_sequence": plan.stop_sequence,
                    },
                    "usage": usage,
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
    except ConnectionError:
        # The client went away mid-stream: normal life for a server, not a crash.
        return resp, "client_disconnected"
    return resp, "ok"


async def _stream_thinking(resp: web.StreamResponse, plan: _Plan) -> None:
    """A thinking block at index 0: its text in ``thinking_delta`` pieces, then its signature."""
    start = {"type": "thinking", "thinking": "", "signature": ""}
    await resp.write(_sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}))
    for token in plan.thinking:
        await _sleep(plan.token_delay)
        delta = {"type": "thinking_delta", "thinking": token}
        await resp.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    delta = {"type": "signature_delta", "signature": _signature(plan.thinking)}
    await resp.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))


def _signature(thinking: list[str]) -> str:
    return "fakesig" + hashlib.sha256("".join(thinking).encode()).hexdigest()[:32]
