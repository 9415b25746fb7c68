"""Master-key check for the LiteLLM proxy that answers 401, as clients expect.

Without a database, LiteLLM answers a wrong master key with 400 "No connected db." and a
missing one with 500. Set ``general_settings.custom_auth:
litellm_claude_code.proxy_auth.user_api_key_auth`` and every request must carry the master
key (``Authorization: Bearer <key>`` or ``x-api-key``); anything else gets 401. The
comparison runs in constant time. Health probes (``/health/liveliness``,
``/health/readiness``) stay open, as LiteLLM keeps them.
"""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

_OPEN_PATHS = ("/health/liveliness", "/health/readiness", "/health/liveness")


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
        raise HTTPException(status_code=401, detail="Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
    return UserAPIKeyAuth(api_key=presented, user_role=LitellmUserRoles.PROXY_ADMIN)
