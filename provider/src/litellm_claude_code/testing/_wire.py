"""The fake's shared wire pieces: its logger, the credential fingerprint its log lines show, and
errors as each API shapes them (Anthropic's JSON body, Bedrock's ``x-amzn-errortype``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._cloud import BEDROCK_ERRORS
from litellm_claude_code.testing._scenario import _ERROR_TYPES, _REASONS

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
