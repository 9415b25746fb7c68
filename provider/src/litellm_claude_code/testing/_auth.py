"""Who is asking: the credential a request carries (``x-api-key`` or ``Bearer``) and whether the
fake accepts it, by each API's rules (an API key, a Google access token the fake issued, an AWS
Signature Version 4 or a Bedrock API key)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from litellm_claude_code.testing._cloud import sigv4_problem
from litellm_claude_code.testing._state import _State
from litellm_claude_code.testing._wire import _api_error, _error_response


def _auth(request: web.Request) -> tuple[str | None, str | None]:
    key = request.headers.get("x-api-key")
    if key:
        return key, "x-api-key"
    authz = request.headers.get("authorization", "")
    scheme, _, value = authz.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    return None, None


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
