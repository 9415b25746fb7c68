"""Hooks the LiteLLM proxy runs: warm processes before the port opens, and the response header
naming the request parameters accepted but not applied.

**Start-up** (:func:`warm_up`): LiteLLM awaits each ``LITELLM_WORKER_STARTUP_HOOKS`` entry
(``module:function``) in every worker's start-up, before it serves (LiteLLM 1.108.7,
``proxy_startup_event``); uvicorn opens the port only after it. The generated project's
``provider.env`` names ``litellm_claude_code.proxy_hooks:warm_up``, so ``/health/readiness`` (what
nginx, compose and the rolling update wait for) answers once the floor of clean CLI processes is
warm, or ``WARM_READY_TIMEOUT`` passed.

**Response headers**:

A custom provider cannot put a header on a streamed response: LiteLLM builds a stream's
headers from the stream wrapper it makes itself, before the provider runs (LiteLLM 1.108.7,
``proxy/common_request_processing.py``). A proxy callback can, on every route (chat
completions, ``/v1/messages``, ``/v1/responses``, streamed or not): its
``async_post_call_response_headers_hook`` runs once the model's response object exists, with
the request's body. The header names what the body asked for that Claude Code did not apply
(:func:`._parameters.not_applied_in`); the provider's log line has the same names
(``not_applied=``). Configured as ``litellm_settings.callbacks:
["litellm_claude_code.proxy_hooks.not_applied_header"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litellm.integrations.custom_logger import CustomLogger

if TYPE_CHECKING:
    from litellm.proxy._types import UserAPIKeyAuth

from ._parameters import not_applied_in

HEADER = "x-claude-code-not-applied"


class NotAppliedHeader(CustomLogger):
    """Adds ``x-claude-code-not-applied: temperature, top_p`` to a served response that had such parameters."""

    async def async_post_call_response_headers_hook(
        self,
        data: dict[Any, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: object,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, object] | None = None,
    ) -> dict[str, str] | None:
        if response is None or not isinstance(data, dict):
            return None  # an error: nothing was served
        names = not_applied_in(data)
        return {HEADER: ", ".join(names)} if names else None


not_applied_header = NotAppliedHeader()
"""The instance the proxy config names."""


async def warm_up() -> None:
    """Start the provider's floor of clean CLI processes on the proxy's event loop and wait for it
    (at most ``LITELLM_CLAUDE_CODE_WARM_READY_TIMEOUT``). A bad setting stops the start-up with its
    message; anything else is logged, and the proxy starts cold rather than not at all."""
    from . import handler
    from ._observability import logger

    handler.load_settings()  # SettingsError: the operator's to fix, and the proxy says so now
    try:
        await handler.engine().warm_up()
    except Exception:
        logger.exception("claude_code_warm_up outcome=error: the proxy starts without warm processes")
