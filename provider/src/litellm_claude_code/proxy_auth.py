"""Master-key check for the LiteLLM proxy that answers 401, as clients expect.

Without a database, LiteLLM answers a wrong master key with 400 "No connected db." and a
missing one with 500. Set ``general_settings.custom_auth:
litellm_claude_code.proxy_auth.user_api_key_auth`` and every request must carry the master
key (``Authorization: Bearer <key>`` or ``x-api-key``); anything else gets 401. The
comparison runs in constant time. Health probes (``/health/liveliness``,
``/health/readiness``) stay open, as LiteLLM keeps them.

Keys per person: with ``LITELLM_CLAUDE_CODE_KEYS_FILE`` naming a key store (``keys.py``), a
person's key is accepted too and comes back to LiteLLM as a ``UserAPIKeyAuth`` carrying the
owner (``user_id``, ``key_alias``, ``team_id``), the allowed aliases and the limits, which
LiteLLM's own rate limiter then enforces (429 with ``Retry-After``). An unknown, expired or
revoked key is 401; an alias the key may not use is 403. LiteLLM sees the key's hash, never
the key, so it cannot reach a log or a callback.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from .keys import STORE_ENV, KeyRecord, KeyStore

_OPEN_PATHS = ("/health/liveliness", "/health/readiness", "/health/liveness")


_stores: dict[str, KeyStore] = {}


def _key_store() -> KeyStore | None:
    path = os.environ.get(STORE_ENV, "")
    if not path:
        return None
    store = _stores.get(path)
    if store is None:
        store = _stores[path] = KeyStore(Path(path))
    return store


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def _requested_model(request: Request) -> str | None:
    """The ``model`` of the request body, as LiteLLM parsed it (it caches the parsed body)."""
    if request.method != "POST":
        return None
    try:
        from litellm.proxy.common_utils.http_parsing_utils import _read_request_body

        body: Any = await _read_request_body(request=request)
    except Exception:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


async def _person(request: Request, record: KeyRecord) -> UserAPIKeyAuth:
    if record.revoked:
        raise _unauthorized("This API key has been revoked.")
    if record.expired():
        raise _unauthorized("This API key has expired.")
    model = await _requested_model(request)
    if model is not None and not record.allows(model):
        raise HTTPException(
            status_code=403,
            detail=f"This API key may not use model {model!r}; it may use: {', '.join(record.models)}.",
        )
    return UserAPIKeyAuth(
        api_key=record.sha256,
        key_name=record.name,
        key_alias=record.name,
        user_id=record.name,
        team_id=record.team,
        models=list(record.models),
        rpm_limit=record.rpm,
        tpm_limit=record.tpm,
        max_parallel_requests=record.parallel,
        user_role=LitellmUserRoles.INTERNAL_USER,
    )


def _master_key() -> str:
    try:
        from litellm.proxy import proxy_server

        key = proxy_server.master_key
    except Exception:
        key = None
    return key or os.environ.get("LITELLM_MASTER_KEY", "")


# Headers LiteLLM takes a key from, in the order it prefers them.
_KEY_HEADERS = (
    "x-litellm-api-key",
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
)


def _presented_key(request: Request, api_key: str) -> str:
    """The key exactly as the client sent it, less the ``Bearer`` scheme of ``Authorization``.

    LiteLLM hands the hook a key with every ``Bearer `` removed (``str.replace``), so
    ``Bearer Bearer <key>`` or a key with ``Bearer `` spliced into it would match. The raw
    header that LiteLLM read is found again and only its scheme is taken off.
    """
    for name in _KEY_HEADERS:
        raw = request.headers.get(name)
        if raw is None:
            continue
        raw = raw.strip()
        if raw.replace("Bearer ", "").replace("bearer ", "").strip() == api_key.strip() or raw == api_key:
            # Only Authorization carries a scheme; an x-api-key value is the key itself.
            return raw[7:].strip() if name == "authorization" and raw[:7].lower() == "bearer " else raw
    return (api_key or "").strip()


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    path = request.url.path
    if path in _OPEN_PATHS:
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER)
    master = _master_key()
    if not master:
        raise HTTPException(status_code=500, detail="LITELLM_MASTER_KEY is not set on the proxy.")
    presented = _presented_key(request, api_key or "")
    if not presented:
        raise HTTPException(
            status_code=401,
            detail="Missing API key: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.encode(), master.encode()):
        store = _key_store()
        record = store.find(presented) if store is not None else None
        if record is None:
            raise _unauthorized("Invalid API key.")
        return await _person(request, record)
    return UserAPIKeyAuth(api_key=presented, user_role=LitellmUserRoles.PROXY_ADMIN)
