"""The Anthropic Messages API (``/v1/messages``, ``count_tokens``): check, choose the scenario, answer
(JSON or streamed); the same answer behind the clouds' routes (:func:`_cloud_messages`); and the
logged 404/405 for a path the fake does not implement."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._auth import _check_auth
from litellm_claude_code.testing._cache import CacheControlError, CacheUsage, Prompt, analyze
from litellm_claude_code.testing._cloud import bedrock_frame
from litellm_claude_code.testing._planner import (
    _last_user_message,
    _merge,
    _message_texts,
    _Plan,
    _plan,
    _tool_results_reply,
    estimate_input_tokens,
)
from litellm_claude_code.testing._record import _new_record
from litellm_claude_code.testing._scenario import (
    _KNOWN_PATHS,
    Scenario,
    ScenarioError,
    _find_directives,
    _is_number,
    validate_scenario,
)
from litellm_claude_code.testing._sse import Frame, _abort, _signature, _sleep, _sse, _stream, _usage
from litellm_claude_code.testing._state import STATE_KEY, _State
from litellm_claude_code.testing._wire import LOG, _api_error, _error_response, _fingerprint


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
