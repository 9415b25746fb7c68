"""Amazon Bedrock's routes: InvokeModel and InvokeModelWithResponseStream, and the inference
profiles list the CLI asks for first."""

from __future__ import annotations

from aiohttp import web

from litellm_claude_code.testing._anthropic import _cloud_messages, _unknown
from litellm_claude_code.testing._cloud import BEDROCK_ACTIONS, BEDROCK_VERSION
from litellm_claude_code.testing._record import _new_record
from litellm_claude_code.testing._state import STATE_KEY


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
