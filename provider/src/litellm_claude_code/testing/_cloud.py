"""What the fake needs to stand in for Claude on Google Vertex AI and Amazon Bedrock.

Both clouds carry the Messages API itself, with the model in the URL instead of the body:

- Vertex AI: ``POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/
  {model}:streamRawPredict`` (Server-Sent Events, as the Anthropic API) and ``:rawPredict``
  (one JSON reply), body ``anthropic_version: vertex-2023-10-16``, a Google OAuth access
  token as ``Authorization: Bearer``. The fake issues such tokens itself at ``POST /token``,
  an OAuth 2.0 token exchange (RFC 8693) as Google's STS answers it for a workload identity
  federation credentials file, so a test can point ``GOOGLE_APPLICATION_CREDENTIALS`` at a
  file whose ``token_url`` is the fake and see the whole exchange.
- Bedrock: ``POST /model/{model}/invoke-with-response-stream`` (the Messages events, each the
  base64 ``bytes`` of a ``chunk`` in AWS's binary event-stream framing) and ``/invoke`` (one
  JSON reply), body ``anthropic_version: bedrock-2023-05-31``, signed with AWS Signature
  Version 4, which the fake verifies when it knows the secret key (``aws_keys``), or a
  Bedrock API key as ``Authorization: Bearer``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

VERTEX_VERSION = "vertex-2023-10-16"
BEDROCK_VERSION = "bedrock-2023-05-31"
VERTEX_ROUTE = "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{target}"
BEDROCK_ROUTE = "/model/{model}/{action}"
TOKEN_ROUTE = "/token"  # noqa: S105 (a path, not a password)
VERTEX_ACTIONS = {"streamRawPredict": True, "rawPredict": False}
BEDROCK_ACTIONS = {"invoke-with-response-stream": True, "invoke": False}
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
ACCESS_TOKEN_PREFIX = "ya29.fake-"  # noqa: S105

# Bedrock's error names for the statuses a scenario scripts (``x-amzn-errortype``).
BEDROCK_ERRORS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    529: "ServiceUnavailableException",
}

_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


# ---------------------------------------------------------------------------------- event stream


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def eventstream_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message of AWS's event-stream encoding (string headers only).

    Prelude: total length and headers length (big-endian u32) and the CRC32 of those 8
    bytes; then the headers (name length u8, name, type 7 = string, value length u16,
    value), the payload, and the CRC32 of everything before it.
    """
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    head = prelude + struct.pack("!I", binascii.crc32(prelude)) + raw_headers + payload
    return head + struct.pack("!I", binascii.crc32(head))


def decode_eventstream(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split a byte string into event-stream messages, checking lengths and both CRCs (for tests)."""
    out: list[tuple[dict[str, str], bytes]] = []
    offset = 0
    while offset < len(data):
        total, headers_length = struct.unpack_from("!II", data, offset)
        (prelude_crc,) = struct.unpack_from("!I", data, offset + 8)
        if binascii.crc32(data[offset : offset + 8]) != prelude_crc:
            raise ValueError("event stream: bad prelude CRC")
        message = data[offset : offset + total]
        (message_crc,) = struct.unpack_from("!I", message, total - 4)
        if binascii.crc32(message[:-4]) != message_crc:
            raise ValueError("event stream: bad message CRC")
        headers: dict[str, str] = {}
        pos = 12
        while pos < 12 + headers_length:
            name_length = message[pos]
            name = message[pos + 1 : pos + 1 + name_length].decode()
            pos += 1 + name_length
            kind, value_length = struct.unpack_from("!BH", message, pos)
            if kind != 7:
                raise ValueError(f"event stream: header type {kind} is not a string")
            headers[name] = message[pos + 3 : pos + 3 + value_length].decode()
            pos += 3 + value_length
        out.append((headers, message[12 + headers_length : -4]))
        offset += total
    return out


def bedrock_frame(event: str, data: Mapping[str, Any]) -> bytes:
    """A Messages API event as Bedrock streams it: a ``chunk`` whose ``bytes`` is the event's JSON.

    An ``error`` event becomes an exception message, as Bedrock ends a failed stream.
    """
    if event == "error":
        found = data.get("error")
        error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        payload = json.dumps({"message": str(error.get("message", "stream error"))}).encode()
        headers = {":message-type": "exception", ":exception-type": "internalServerException"}
        return eventstream_message({**headers, ":content-type": "application/json"}, payload)
    raw = json.dumps(data, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(raw).decode()}).encode()
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return eventstream_message(headers, payload)


# ---------------------------------------------------------------------------------- SigV4


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query_string: str) -> str:
    pairs = []
    for part in query_string.split("&") if query_string else []:
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def sigv4_problem(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    aws_keys: Mapping[str, str] | None,
) -> tuple[str | None, str | None]:
    """Check an AWS Signature Version 4 ``Authorization`` header: (access key id, problem or None).

    The canonical URI is the path as sent, each segment URI-encoded once more (SigV4 for
    every service but S3). With ``aws_keys`` (access key id -> secret key) the signature is
    recomputed and compared; without, only its form is checked.
    """
    found = _SIGV4.fullmatch(headers.get("authorization", "").strip())
    if found is None:
        return None, "Authorization is not an AWS Signature Version 4 header"
    key_id = found["key"]
    if found["service"] != "bedrock":
        return key_id, f"signed for service {found['service']!r}, not 'bedrock'"
    if headers.get("x-amz-content-sha256", hashlib.sha256(body).hexdigest()) != hashlib.sha256(body).hexdigest():
        return key_id, "x-amz-content-sha256 does not match the body"
    if aws_keys is None:
        return key_id, None
    secret = aws_keys.get(key_id)
    if secret is None:
        return key_id, "The security token included in the request is invalid (unknown access key id)"
    signed = found["headers"].split(";")
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    canonical_uri = "/".join(quote(segment, safe="-_.~") for segment in raw_path.split("/"))
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join(
        [method, canonical_uri, _canonical_query(query_string), canonical_headers, found["headers"], payload_hash]
    )
    amz_date = headers.get("x-amz-date", "")
    scope = f"{found['date']}/{found['region']}/{found['service']}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(f"AWS4{secret}".encode(), found["date"])
    for part in (found["region"], found["service"], "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, found["signature"]):
        return key_id, "The request signature we calculated does not match the signature you provided"
    return key_id, None


# ---------------------------------------------------------------------------------- Google STS


def access_token_for(subject_token: str) -> str:
    """The access token the fake's token endpoint issues for a subject token (stable, not reversible)."""
    return ACCESS_TOKEN_PREFIX + hashlib.sha256(subject_token.encode()).hexdigest()[:32]


def token_exchange(form: Mapping[str, str], accepted: frozenset[str] | None) -> tuple[int, dict[str, Any]]:
    """Answer an RFC 8693 token exchange as Google's STS does: (status, JSON body)."""
    if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
        return 400, {"error": "unsupported_grant_type", "error_description": f"grant_type {form.get('grant_type')!r}"}
    subject = form.get("subject_token", "").strip()
    if not subject or (accepted is not None and subject not in accepted):
        return 401, {"error": "invalid_grant", "error_description": "The subject token is not accepted."}
    return 200, {
        "access_token": access_token_for(subject),
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": 3600,
    }
