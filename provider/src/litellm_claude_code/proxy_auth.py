"""The proxy's ``custom_auth`` hook: who may call which route, with which model.

Set ``general_settings.custom_auth: litellm_claude_code.proxy_auth.user_api_key_auth``. LiteLLM
then uses what this hook returns as it is: none of its own route checks runs after it, so
this hook is the whole policy. Three credentials are known:

- **The master key** (``LITELLM_MASTER_KEY``): every route, as LiteLLM's proxy admin. It must
  start with ``sk-`` and have at least 32 characters (``_master_key``), or the proxy does
  not start: LiteLLM hashes only ``sk-`` keys before they reach its logs and metric labels.
- **A person's key** (``LITELLM_CLAUDE_CODE_KEYS_FILE`` names the store, ``keys.py``): only
  the model API routes of :data:`~litellm_claude_code._routes.PERSON_ROUTES` (chat
  completions, ``/v1/messages`` and its ``count_tokens``, ``/v1/responses``, the model list).
  Any other route is a 403 that names its class (pass-through, metrics, admin, ...). The
  model is checked where LiteLLM will take it from: the path when the route names one, the
  body otherwise, and a request naming two different models is a 400. The model must be
  one the proxy serves under that name (not a raw ``provider/model`` string nor a
  comma-separated list; a wildcard entry such as ``claude-*`` serves single model ids only) and
  one the key may use (403; an alias a key lists covers Claude's full ids of its family, as
  Claude Code sends them: :func:`_covers`). Fallbacks in the body are refused:
  they would serve another model than the one checked. A key without its own ``parallel``
  gets a share of the gateway's CLI slots (``LITELLM_CLAUDE_CODE_KEY_PARALLEL``, default
  half of ``MAX_CONCURRENCY``, at least 1), so one key cannot hold every slot and the queue.
- **The scrape key**: derived from the master key (``keys.metrics_key``; print it with
  ``python -m litellm_claude_code.keys metrics-key``), it opens ``GET /metrics`` and nothing
  else, so Prometheus never holds the master key.

Health probes (``/health/liveliness``, ``/health/readiness``) stay open, as LiteLLM keeps
them. Everything else without a known key is a 401. Keys are compared in constant time;
LiteLLM sees a person's key hash, never the key, so it cannot reach a log or a callback.

The hook also puts a cap on request bodies in front of the proxy's app (``_body_limit``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from ._body_limit import install_body_limit, max_body_bytes
from ._master_key import check_master_key
from ._routes import match_person_route, route_class
from .keys import METRICS_KEY_PREFIX, STORE_ENV, KeyRecord, KeyStore, metrics_key

__all__ = ["user_api_key_auth"]

_OPEN_PATHS = ("/health/liveliness", "/health/readiness", "/health/liveness")
_METRICS_PATHS = ("/metrics", "/metrics/")
KEY_PARALLEL_ENV = "LITELLM_CLAUDE_CODE_KEY_PARALLEL"
# Body keys that make LiteLLM serve another model than the one the request names.
_REROUTING_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "model_group_alias")


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


def _route_of(request: Request) -> str:
    """The path the proxy routes on (``scope["path"]`` less the root path), as LiteLLM takes it."""
    from litellm.proxy.auth.auth_utils import get_request_route

    return get_request_route(request=request)


async def _body(request: Request) -> dict[str, Any]:
    """The request body as LiteLLM parsed it (it caches the parsed body); {} when there is none."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return {}
    try:
        from litellm.proxy.common_utils.http_parsing_utils import _read_request_body

        body: Any = await _read_request_body(request=request)
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


def _served_models() -> list[str] | None:
    """The model names the proxy's router serves (None: no router to ask)."""
    try:
        from litellm.proxy import proxy_server

        router = proxy_server.llm_router
    except Exception:
        return None
    if router is None:
        return None
    return [str(name) for name in router.get_model_names()]


# A name a wildcard entry may serve: one model id (no ``provider/model`` string, no list).
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\[\]-]{0,127}")
_FAMILY = re.compile(r"(?<![a-z])(opus|sonnet|haiku)(?![a-z])")


def _is_served(model: str, served: Sequence[str]) -> bool:
    if model in served:
        return True
    return bool(_MODEL_ID.fullmatch(model)) and any("*" in name and fnmatch.fnmatchcase(model, name) for name in served)


def _family(name: str) -> str | None:
    """The Claude family (opus, sonnet, haiku) of what ``name`` routes to; None: none or several."""
    try:
        from litellm.proxy import proxy_server

        router = proxy_server.llm_router
        deployments = (router.get_model_list(model_name=name) or []) if router is not None else []
    except Exception:
        return None
    families = {
        found
        for deployment in deployments
        for found in _FAMILY.findall(str((deployment.get("litellm_params") or {}).get("model", "")).lower())
    }
    return families.pop() if len(families) == 1 else None


def _covers(served: Sequence[str]) -> Callable[[str, str], bool]:
    """A key's rule for Claude's full ids: an alias it lists covers the ids of its family.

    Claude Code turns ``haiku`` into ``claude-haiku-4-5-...`` itself, and the gateway serves
    those ids through a wildcard entry. A key limited to ``haiku`` may use them, never an opus
    id. Only names served through a wildcard are covered: another exact alias stays the
    operator's to list.
    """

    def covers(entry: str, model: str) -> bool:
        if model in served or entry not in served:
            return False
        family = _family(entry)
        return family is not None and family == _family(model)

    return covers


_default_parallel: int | None = None


def _key_parallel_default() -> int:
    """A key's share of the CLI slots when it sets none: half of ``MAX_CONCURRENCY``, at least 1."""
    global _default_parallel
    if _default_parallel is None:
        raw = os.environ.get(KEY_PARALLEL_ENV, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{KEY_PARALLEL_ENV} must be a whole number of requests, not {raw!r}") from None
            if value < 1:
                raise ValueError(f"{KEY_PARALLEL_ENV} must be at least 1, not {value}")
            _default_parallel = value
        else:
            from ._settings import Settings

            _default_parallel = max(1, math.ceil(Settings.from_env().max_concurrency / 2))
    return _default_parallel


async def _person(request: Request, record: KeyRecord) -> UserAPIKeyAuth:
    if record.revoked:
        raise _unauthorized("This API key has been revoked.")
    if record.expired():
        raise _unauthorized("This API key has expired.")
    route = _route_of(request)
    allowed = match_person_route(request.method, route)
    if allowed is None:
        from litellm.proxy.auth.auth_utils import get_request_route_template

        kind = route_class(route, get_request_route_template(request))
        raise HTTPException(
            status_code=403,
            detail=(
                f"{request.method} {route} is not open to this API key ({kind} route): "
                "a person's key reaches only the model API (chat completions, /v1/messages, "
                "/v1/responses, /v1/models)."
            ),
        )
    body = await _body(request)
    body_model = body.get("model")
    if body_model is not None and not isinstance(body_model, str):
        raise HTTPException(status_code=400, detail="'model' must be a string naming one model.")
    model = allowed.path_model or body_model
    if allowed.path_model is not None and body_model is not None and body_model != allowed.path_model:
        raise HTTPException(
            status_code=400,
            detail=f"The path names model {allowed.path_model!r} and the body names {body_model!r}: name one model.",
        )
    rerouting = sorted(key for key in _REROUTING_KEYS if body.get(key))
    if rerouting:
        raise HTTPException(
            status_code=400,
            detail=f"{', '.join(rerouting)} may not be set by this API key: the gateway's operator sets fallbacks.",
        )
    if model is not None:
        served = _served_models()
        if served is not None and not _is_served(model, served):
            usable = [name for name in served if record.allows(name)]
            raise HTTPException(
                status_code=400,
                detail=f"Unknown model {model!r}: this gateway serves {', '.join(usable) or 'no model for this key'}.",
            )
        if not record.allows(model, _covers(served or [])):
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
        max_parallel_requests=record.parallel if record.parallel is not None else _key_parallel_default(),
        user_role=LitellmUserRoles.INTERNAL_USER,
    )


_checked_master: str | None = None


def _master_key() -> str:
    global _checked_master
    try:
        from litellm.proxy import proxy_server

        key = proxy_server.master_key
    except Exception:
        key = None
    key = key or os.environ.get("LITELLM_MASTER_KEY", "")
    if key and key != _checked_master:
        try:
            check_master_key(key)
        except ValueError as error:
            raise HTTPException(status_code=500, detail=str(error)) from None
        _checked_master = key
    return key


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
    route = _route_of(request)
    if route in _OPEN_PATHS:
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER)
    master = _master_key()
    if not master:
        raise HTTPException(status_code=500, detail="LITELLM_MASTER_KEY is not set on the proxy.")
    presented = _presented_key(request, api_key or "")
    if not presented:
        raise _unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
    if hmac.compare_digest(presented.encode(), master.encode()):
        return UserAPIKeyAuth(api_key=presented, user_role=LitellmUserRoles.PROXY_ADMIN)
    if presented.startswith(METRICS_KEY_PREFIX) and hmac.compare_digest(
        presented.encode(), metrics_key(master).encode()
    ):
        if request.method == "GET" and route in _METRICS_PATHS:
            return UserAPIKeyAuth(api_key=hashlib.sha256(presented.encode()).hexdigest(), user_id="metrics-scraper")
        raise HTTPException(status_code=403, detail="The scrape key opens GET /metrics and nothing else.")
    store = _key_store()
    record = store.find(presented) if store is not None else None
    if record is None:
        raise _unauthorized("Invalid API key.")
    return await _person(request, record)


def _install() -> None:
    """At import (the proxy loads this hook while it starts): check the master key, cap bodies."""
    master = os.environ.get("LITELLM_MASTER_KEY", "")
    if master:
        check_master_key(master)
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    if proxy_server is None:  # imported outside a running proxy: no app to cap
        return
    install_body_limit(proxy_server.app, max_body_bytes())


_install()
