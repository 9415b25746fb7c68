"""The fake's cloud routes alone (no CLI): Bedrock's event stream and errors, Vertex's checks, the token exchange."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from litellm_claude_code.testing import FakeAnthropicServer
from litellm_claude_code.testing._cloud import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    access_token_for,
    decode_eventstream,
    eventstream_message,
)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(aws_keys={"AKIAKNOWN": "known-secret"}, accept_keys=["ABSK-good", "subject-ok"]) as server:
        yield server


def test_eventstream_framing_round_trips_and_checks_both_crcs() -> None:
    one = eventstream_message({":event-type": "chunk"}, b'{"bytes":"e30="}')
    two = eventstream_message({":message-type": "event", ":content-type": "application/json"}, b"")
    assert decode_eventstream(one + two) == [
        ({":event-type": "chunk"}, b'{"bytes":"e30="}'),
        ({":message-type": "event", ":content-type": "application/json"}, b""),
    ]
    for position in (9, len(one) - 6):  # the prelude's CRC, then the payload
        broken = bytearray(one)
        broken[position] ^= 0xFF
        with pytest.raises(ValueError, match="CRC"):
            decode_eventstream(bytes(broken))


def test_bedrock_streams_messages_events_as_chunks(fake: FakeAnthropicServer) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES}
    reply = httpx.post(
        f"{fake.base_url}/model/us.anthropic.claude-x-v1:0/invoke-with-response-stream",
        json=body,
        headers={"authorization": "Bearer ABSK-good"},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/vnd.amazon.eventstream"
    frames = decode_eventstream(reply.content)
    assert all(headers[":event-type"] == "chunk" for headers, _ in frames)
    events = [json.loads(base64.b64decode(json.loads(payload)["bytes"])) for _, payload in frames]
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-1]["type"] == "message_stop"
    assert events[0]["message"]["model"] == "us.anthropic.claude-x-v1:0"


def test_bedrock_errors_are_bedrocks(fake: FakeAnthropicServer) -> None:
    url = f"{fake.base_url}/model/anthropic.claude-x/invoke"
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": MESSAGES}
    bad_key = httpx.post(url, json=body, headers={"authorization": "Bearer ABSK-bad"}, timeout=10)
    assert bad_key.status_code == 403 and "message" in bad_key.json()
    signature = (
        "AWS4-HMAC-SHA256 Credential=AKIAKNOWN/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    forged = httpx.post(
        url, json=body, headers={"authorization": signature, "x-amz-date": "20260101T000000Z"}, timeout=10
    )
    assert forged.status_code == 403 and "signature" in forged.json()["message"]
    assert forged.headers["x-amzn-errortype"] == "AccessDeniedException"
    with_model = httpx.post(url, json={**body, "model": "x"}, headers={"authorization": "Bearer ABSK-good"}, timeout=10)
    assert with_model.status_code == 400 and with_model.headers["x-amzn-errortype"] == "ValidationException"


def test_vertex_takes_only_tokens_it_issued(fake: FakeAnthropicServer) -> None:
    form = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": "subject-ok", "subject_token_type": "jwt"}
    issued = httpx.post(f"{fake.base_url}/token", data=form, timeout=10).json()
    assert issued["access_token"] == access_token_for("subject-ok")
    assert issued["issued_token_type"] == ACCESS_TOKEN_TYPE and issued["expires_in"] > 0
    refused = httpx.post(f"{fake.base_url}/token", data={**form, "subject_token": "subject-unknown"}, timeout=10)
    assert refused.status_code == 401
    wrong_grant = httpx.post(f"{fake.base_url}/token", data={**form, "grant_type": "password"}, timeout=10)
    assert wrong_grant.status_code == 400

    url = f"{fake.base_url}/v1/projects/p1/locations/global/publishers/anthropic/models/claude-x@20250101:rawPredict"
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": MESSAGES}
    auth = {"authorization": f"Bearer {issued['access_token']}"}
    answer = httpx.post(url, json=body, headers=auth, timeout=10)
    assert answer.status_code == 200 and answer.json()["model"] == "claude-x@20250101"
    record = fake.cloud_requests("vertex")[-1]
    assert (record["project"], record["region"], record["stream"]) == ("p1", "global", False)
    assert (
        httpx.post(url, json={**body, "anthropic_version": "2023-06-01"}, headers=auth, timeout=10).status_code == 400
    )
    assert httpx.post(url.replace(":rawPredict", ":predict"), json=body, headers=auth, timeout=10).status_code == 404
