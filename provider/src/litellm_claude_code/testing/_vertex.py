"""Google Vertex AI's routes: rawPredict and streamRawPredict, and the STS token exchange that
gives the CLI its access token."""

from __future__ import annotations

from aiohttp import web

from litellm_claude_code.testing._anthropic import _cloud_messages, _unknown
from litellm_claude_code.testing._cloud import VERTEX_ACTIONS, VERTEX_VERSION, token_exchange
from litellm_claude_code.testing._record import _new_record
from litellm_claude_code.testing._state import STATE_KEY
from litellm_claude_code.testing._wire import LOG, _fingerprint


async def _vertex(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["target"].rpartition(":")
    if action not in VERTEX_ACTIONS or not model:
        return await _unknown(request)
    where = {"project": request.match_info["project"], "region": request.match_info["region"]}
    return await _cloud_messages(request, "vertex", model, VERTEX_ACTIONS[action], VERTEX_VERSION, where)


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
