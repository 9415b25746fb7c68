"""The fake's aiohttp application: Messages API handlers (JSON and SSE streaming), the
``/_fake/*`` control endpoints, and the guard that turns a bug into a clean 500.

The wire format lives here and only here, so protocol fidelity is checked in one file."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._cache import (
    DEFAULT_MIN_TOKENS,
    CacheControlError,
    CacheUsage,
    Prompt,
    PromptCache,
    analyze,
)
from litellm_claude_code.testing._cloud import (
    BEDROCK_ACTIONS,
    BEDROCK_ERRORS,
    BEDROCK_ROUTE,
    BEDROCK_VERSION,
    TOKEN_ROUTE,
    VERTEX_ACTIONS,
    VERTEX_ROUTE,
    VERTEX_VERSION,
    bedrock_frame,
    sigv4_problem,
    token_exchange,
)
from litellm_claude_code.testing._planner import (
    _last_user_message,
    _merge,
    _message_texts,
    _Plan,
    _plan,
    _system_text,
    _tool_results_reply,
    estimate_input_tokens,
)
from litellm_claude_code.testing._scenario import (
    _ERROR_TYPES,
    _KNOWN_PATHS,
    _REASONS,
    DEFAULT_TOKENS,
    Scenario,
    ScenarioError,
    _find_directives,
    _is_number,
    validate_scenario,
)
from litellm_claude_code.testing._state import STATE_KEY, _State

# The CLI entry point's logger name, so one ``--quiet`` or ``getLogger(...)`` governs the fake.
LOG = logging.getLogger("litellm_claude_code.testing.fake_anthropic")


def _fingerprint(secret: str | None) -> str:
    """Short, non-reversible tag for logs: never print credentials."""
    if not secret:
        return "-"
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def _error_body(err_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": err_type, "message": message}}


def _error_response(
    status: int,
    err_type: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> web.Response:
    err_type = err_type or _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    hdrs = dict(headers or {})
    if request_id:
        hdrs.setdefault("request-id", request_id)
    return web.json_response(
        _error_body(err_type, message or f"fake {err_type}"),
        status=status,
        reason=_REASONS.get(status),
        headers=hdrs,
    )


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


Frame = Callable[[str, Mapping[str, Any]], bytes]


def _api_error(
    api: str,
    status: int,
    err_type: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> web.Response:
    """An error as the API the request came by answers it: Anthropic's JSON, or Bedrock's."""
    if api != "bedrock":
        return _error_response(status, err_type, message, headers, request_id)
    hdrs = dict(headers or {})
    hdrs["x-amzn-errortype"] = BEDROCK_ERRORS.get(
        status, "InternalServerException" if status >= 500 else "ValidationException"
    )
    if request_id:
        hdrs.setdefault("x-amzn-requestid", request_id)
    return web.json_response({"message": message or f"fake {hdrs['x-amzn-errortype']}"}, status=status, headers=hdrs)


def _auth(request: web.Request) -> tuple[str | None, str | None]:
    key = request.headers.get("x-api-key")
    if key:
        return key, "x-api-key"
    authz = request.headers.get("authorization", "")
    scheme, _, value = authz.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    return None, None


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


def _check_auth(state: _State, record: dict[str, Any], request: web.Request | None = None) -> web.Response | None:
    if record["api"] == "vertex":
        return _check_vertex_auth(state, record)
    if record["api"] == "bedrock" and request is not None:
        return _check_bedrock_auth(state, record, request)
    auth = record["auth"]
    if auth is None:
        return _error_response(401, message="x-api-key header is required", request_id=record["id"])
    with state.cond:
        accepted = state.accept_keys
    if accepted is not None and auth not in accepted:
        return _error_response(401, message="invalid x-api-key", request_id=record["id"])
    return None


def _check_vertex_auth(state: _State, record: dict[str, Any]) -> web.Response | None:
    """A Google access token: one this fake's token endpoint issued, or one of ``accept_keys``."""
    auth = record["auth"] if record["auth_scheme"] == "bearer" else None
    with state.cond:
        known = auth is not None and (
            auth in state.issued or (state.accept_keys is not None and auth in state.accept_keys)
        )
    if known:
        return None
    message = (
        "Request is missing required authentication credential (Authorization: Bearer <OAuth 2 access token>)"
        if auth is None
        else "Request had invalid authentication credentials (an access token this server did not issue)"
    )
    return _error_response(401, "authentication_error", message, request_id=record["id"])


def _check_bedrock_auth(state: _State, record: dict[str, Any], request: web.Request) -> web.Response | None:
    """AWS Signature Version 4 (checked against ``aws_keys`` when set), or a Bedrock API key as Bearer."""
    if record["auth_scheme"] == "bearer":
        with state.cond:
            accepted = state.accept_keys
        if accepted is None or record["auth"] in accepted:
            return None
        return _api_error(
            "bedrock", 403, message="Invalid API Key format or unknown Bedrock API key", request_id=record["id"]
        )
    with state.cond:
        aws_keys = dict(state.aws_keys) if state.aws_keys is not None else None
    with state.cond:
        raw = record.pop("_raw", b"")
    key_id, problem = sigv4_problem(
        request.method, request.raw_path.split("?", 1)[0], request.query_string, record["headers"], raw, aws_keys
    )
    state.update(record, auth=key_id, auth_scheme="sigv4" if key_id else None, sigv4_problem=problem)
    if problem is None:
        return None
    return _api_error("bedrock", 403, message=problem, request_id=record["id"])


def _validate_body(body: Any, *, need_max_tokens: bool) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("messages"), list):
        return "messages: Field required"
    if need_max_tokens:
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            return "max_tokens: Field required (a positive integer)"
    return None


def _choose(state: _State, body: Mapping[str, Any]) -> tuple[Scenario, str, str]:
    """Pick the scenario (directive > queue > default) and the echo text."""
    found: list[Any] = []
    pieces: list[str] = []
    for text in _message_texts(_last_user_message(body.get("messages"))):
        hits, rest = _find_directives(text)
        found.extend(hits)
        pieces.append(rest)
    echo_text = "\n".join(p.strip() for p in pieces if p.strip())
    with state.cond:
        default = copy.deepcopy(state.default)
    if found:
        return _merge(default, validate_scenario(found[-1])), "directive", echo_text
    queued = state.pop()
    if queued is not None:
        return _merge(default, queued), "queue", echo_text
    quoted = _tool_results_reply(body.get("messages"))
    if quoted is not None and not any(k in default for k in ("echo", "text")):
        return _merge(default, {"text": quoted}), "tool_results", echo_text
    return _merge(default, {}), "default", echo_text


def _simulate_cache(
    state: _State, record: dict[str, Any], body: Mapping[str, Any], prompt: Prompt | None
) -> CacheUsage:
    """Apply the request to the prompt cache (once, when the reply is about to start,
    as the real API does: a rejected request writes nothing) and log the figures.

    The total stays :func:`estimate_input_tokens` unless the blocks weigh more (tool
    definitions, which the estimator ignores, or a bare system string, which weighs as a
    text block): then the blocks' sum is used, so cached tokens never exceed the total.
    """
    total = estimate_input_tokens(body)
    if state.cache is None or prompt is None:
        return CacheUsage.uncached(total)
    namespace = (_fingerprint(record["auth"]), str(body.get("model") or ""))
    usage = state.cache.use(namespace, prompt, max(total, prompt.total_tokens))
    state.update(record, cache=usage.record())
    return usage


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


def _message_json(plan: _Plan, cache: CacheUsage) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.thinking:
        content.append({"type": "thinking", "thinking": "".join(plan.thinking), "signature": _signature(plan.thinking)})
    if plan.tokens:
        content.append({"type": "text", "text": "".join(plan.tokens)})
    content.extend(plan.tool_uses)
    return {
        "id": f"msg_fake{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": _usage(plan, cache),
    }


async def _messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    record, body = await _new_record(request, state)
    resp, outcome = await _answer(request, state, record, body)
    state.update(record, status=resp.status, outcome=outcome)
    LOG.info(
        "%s %s model=%s stream=%s auth=%s:%s scenario=%s status=%s outcome=%s",
        request.method,
        request.path_qs,
        record["model"],
        record["stream"],
        record["auth_scheme"] or "none",
        _fingerprint(record["auth"]),
        record["scenario_source"],
        resp.status,
        outcome,
    )
    return resp


async def _answer(
    request: web.Request,
    state: _State,
    record: dict[str, Any],
    body: Any,
    *,
    stream: bool | None = None,
    frame: Frame = _sse,
) -> tuple[web.StreamResponse, str]:
    """Answer one Messages request; ``stream`` (Vertex, Bedrock) is the route's, not the body's."""
    api = record["api"]
    if not record.get("_authenticated") and (denied := _check_auth(state, record, request)):
        return denied, "unauthenticated"
    count_only = request.path.endswith("/count_tokens")
    if problem := _validate_body(body, need_max_tokens=not count_only):
        return _api_error(api, 400, message=problem, request_id=record["id"]), "invalid_request"
    if count_only:
        return web.json_response({"input_tokens": estimate_input_tokens(body)}), "ok"
    try:
        # Validated only when caching is on: ``--no-cache`` keeps the old, lenient fake.
        prompt = analyze(body) if state.cache is not None else None
    except CacheControlError as exc:
        return _error_response(400, message=str(exc), request_id=record["id"]), "invalid_request"
    try:
        scenario, source, echo_text = _choose(state, body)
    except ScenarioError as exc:
        return _error_response(400, message=str(exc), request_id=record["id"]), "bad_directive"
    state.update(record, scenario=scenario, scenario_source=source)
    plan = _plan(scenario, body, echo_text)
    await _sleep(plan.delay)
    if plan.error is not None:
        err = plan.error
        status = int(err.get("status", 500))
        headers = dict(plan.headers)
        if "retry_after" in err:
            ra = err["retry_after"]
            headers["retry-after"] = str(int(ra)) if _is_number(ra) and float(ra).is_integer() else str(ra)
        resp = _api_error(api, status, err.get("type"), err.get("message"), headers, record["id"])
        _apply_should_retry(resp, scenario)
        return resp, "error"
    cache = _simulate_cache(state, record, body, prompt)
    if (body.get("stream") is True) if stream is None else stream:
        return await _stream(request, plan, cache, record, frame)
    if plan.drop_after is not None:
        await _sleep(plan.token_delay * plan.drop_after)
        _abort(request)
        resp = web.Response(status=200)
        resp.force_close()
        return resp, "dropped"
    if plan.error_after is not None:
        await _sleep(plan.token_delay * plan.error_after)
        # Without a stream there is no in-band error: the same failure as a 529.
        resp = _error_response(
            529,
            plan.stream_error.get("type"),
            plan.stream_error.get("message"),
            request_id=record["id"],
        )
        return resp, "error"
    await _sleep(plan.token_delay * len(plan.tokens))
    resp = web.json_response(_message_json(plan, cache), headers={"request-id": record["id"], **plan.headers})
    return resp, "ok"


def _apply_should_retry(resp: web.StreamResponse, scenario: Scenario) -> None:
    if "should_retry" in scenario:
        resp.headers["x-should-retry"] = "true" if scenario["should_retry"] else "false"


def _cloud_body(body: Any, version: str, model: str) -> tuple[Any, str | None]:
    """The body as the Messages API would take it (the model from the URL), or what is wrong with it."""
    if not isinstance(body, dict):
        return body, "request body must be a JSON object"
    if body.get("anthropic_version") != version:
        return body, f"anthropic_version: must be {version!r}, got {body.get('anthropic_version')!r}"
    if "model" in body:
        return body, "model: Extra inputs are not permitted (the model is named in the URL)"
    return {**body, "model": model}, None


async def _cloud_messages(
    request: web.Request, api: str, model: str, stream: bool, version: str, where: Mapping[str, str]
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    record, body = await _new_record(request, state)
    state.update(record, api=api, model=model, _raw=await request.read(), **where)
    resp: web.StreamResponse
    if denied := _check_auth(state, record, request):
        resp, outcome = denied, "unauthenticated"
    else:
        body, problem = _cloud_body(body, version, model)
        if problem is not None:
            resp, outcome = _api_error(api, 400, message=problem, request_id=record["id"]), "invalid_request"
        else:
            resp, outcome = await _answer_authenticated(request, state, record, body, stream, api)
    with state.cond:
        record.pop("_raw", None)
    state.update(record, status=resp.status, outcome=outcome)
    LOG.info(
        "%s %s api=%s model=%s stream=%s auth=%s:%s status=%s outcome=%s",
        request.method,
        request.path_qs,
        api,
        model,
        stream,
        record["auth_scheme"] or "none",
        _fingerprint(record["auth"]),
        resp.status,
        outcome,
    )
    return resp


async def _answer_authenticated(
    request: web.Request, state: _State, record: dict[str, Any], body: Any, stream: bool, api: str
) -> tuple[web.StreamResponse, str]:
    """:func:`_answer` past its authentication check (done already, by the cloud's own rules)."""
    record["_authenticated"] = True
    try:
        return await _answer(
            request, state, record, body, stream=stream, frame=bedrock_frame if api == "bedrock" else _sse
        )
    finally:
        record.pop("_authenticated", None)


async def _vertex(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["target"].rpartition(":")
    if action not in VERTEX_ACTIONS or not model:
        return await _unknown(request)
    where = {"project": request.match_info["project"], "region": request.match_info["region"]}
    return await _cloud_messages(request, "vertex", model, VERTEX_ACTIONS[action], VERTEX_VERSION, where)


async def _bedrock(request: web.Request) -> web.StreamResponse:
    action = request.match_info["action"]
    if action not in BEDROCK_ACTIONS:
        return await _unknown(request)
    model = request.match_info["model"]
    return await _cloud_messages(request, "bedrock", model, BEDROCK_ACTIONS[action], BEDROCK_VERSION, {})


async def _bedrock_inference_profiles(request: web.Request) -> web.Response:
    """ListInferenceProfiles, which the CLI asks before its first request: none of its own here."""
    state = request.app[STATE_KEY]
    record, _ = await _new_record(request, state)
    state.update(record, api="bedrock", status=200, outcome="ok")
    return web.json_response({"inferenceProfileSummaries": []})


async def _token(request: web.Request) -> web.Response:
    """Google's STS token exchange: a subject token (from the credentials file) for an access token."""
    state = request.app[STATE_KEY]
    record, _ = await _new_record(request, state)
    form = {name: str(value) for name, value in (await request.post()).items()}
    with state.cond:
        accepted = state.accept_keys
    status, answer = token_exchange(form, accepted)
    with state.cond:
        if status == 200:
            state.issued.add(answer["access_token"])
    subject = form.get("subject_token")
    state.update(record, api="google-sts", auth=subject, auth_scheme="subject_token" if subject else None)
    state.update(record, status=status, outcome="ok" if status == 200 else "unauthenticated")
    LOG.info("POST %s token exchange subject=%s status=%s", request.path, _fingerprint(subject), status)
    return web.json_response(answer, status=status)


async def _unknown(request: web.Request) -> web.StreamResponse:
    """Unknown paths are logged too: a 404 is often the first hint that a client
    (or a new CLI version) calls an endpoint the fake does not implement."""
    state = request.app[STATE_KEY]
    record, _ = await _new_record(request, state)
    if request.path in _KNOWN_PATHS:
        resp = _error_response(
            405,
            "invalid_request_error",
            f"method {request.method} not allowed",
            request_id=record["id"],
        )
    else:
        resp = _error_response(
            404,
            "not_found_error",
            f"fake server: no route for {request.method} {request.path}",
            request_id=record["id"],
        )
    state.update(record, status=resp.status, outcome="not_found")
    LOG.info("%s %s status=%s", request.method, request.path_qs, resp.status)
    return resp


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
