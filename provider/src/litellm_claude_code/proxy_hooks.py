"""The proxy's response headers: which request parameters were accepted but not applied.

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
