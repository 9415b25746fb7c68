"""Bedrock and Vertex AI end to end: the real proxy, the real CLI, the fake as the cloud.

Nothing is mocked on our side: the proxy runs examples/proxy_config.yaml, the provider resolves
the cloud credential from the proxy's environment and starts the bundled CLI, and the CLI talks
to the fake (testing/_cloud.py) as it would to the cloud:

- Vertex AI: ``GOOGLE_APPLICATION_CREDENTIALS`` names a workload identity federation
  credentials file whose ``token_url`` is the fake; the CLI exchanges the subject token for an
  access token there and calls ``:streamRawPredict`` with it. (A service-account key file
  cannot be shown here: its token endpoint is fixed to Google's.)
- Bedrock: ``AWS_SHARED_CREDENTIALS_FILE`` names a shared credentials file; the CLI signs
  ``invoke-with-response-stream`` with SigV4, the fake verifies the signature with the same
  secret and answers in AWS's event-stream framing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litellm_claude_code.testing import FakeAnthropicServer
from litellm_claude_code.testing._cloud import access_token_for

from tests.support.stack import EXAMPLES, Proxy, start_proxy, stop_proxy, wait_until

pytestmark = pytest.mark.integration

AWS_KEY_ID = "AKIAFAKEGATEWAY00001"
AWS_SECRET = "fake-secret-access-key-of-the-gateway-0001"
SUBJECT = "subject-token-from-the-identity-provider-1"
PROJECT = "team-gateway-project"
SONNET_ON_VERTEX = "claude-sonnet-4-5@20250929"


def aws_credentials(secret: str) -> str:
    return f"[gateway]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {secret}\n"


def external_account(fake: FakeAnthropicServer, subject_file: Path) -> str:
    return json.dumps(
        {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/gw/providers/idp",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": fake.base_url + "/token",
            "credential_source": {"file": str(subject_file)},
        }
    )


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeAnthropicServer]:
    """The fake as both clouds: it verifies SigV4 with the gateway's AWS key."""
    with FakeAnthropicServer(aws_keys={AWS_KEY_ID: AWS_SECRET}) as server:
        yield server


@pytest.fixture
def fake(cloud: FakeAnthropicServer) -> FakeAnthropicServer:
    cloud.clear()
    return cloud


def chat(proxy: Proxy, text: str, model: str = "sonnet") -> str:
    stream = proxy.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


# --------------------------------------------------------------------------- Vertex AI


@pytest.fixture(scope="module")
def vertex(cloud: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Path]]:
    workdir = tmp_path_factory.mktemp("vertex-proxy")
    secrets = workdir / "credentials"
    secrets.mkdir(mode=0o700)
    (secrets / "subject-1").write_text(SUBJECT)
    credentials = secrets / "google-credentials.json"
    credentials.write_text(external_account(cloud, secrets / "subject-1"))
    credentials.chmod(0o600)
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        workdir,
        cloud,
        {
            "ANTHROPIC_API_KEY": "",  # the stack's default credential: the cloud is the only one
            "ANTHROPIC_BASE_URL": "",
            "CLAUDE_CODE_USE_VERTEX": "1",
            "CLOUD_ML_REGION": "europe-west1",
            "ANTHROPIC_VERTEX_PROJECT_ID": PROJECT,
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
            "ANTHROPIC_VERTEX_BASE_URL": cloud.base_url + "/v1",
            # The alias the CLI resolves, pinned to a Vertex model id.
            "ANTHROPIC_DEFAULT_SONNET_MODEL": SONNET_ON_VERTEX,
            "LITELLM_CLAUDE_CODE_WARM_MAX": "0",
        },
    )
    yield proxy, credentials
    stop_proxy(proxy)


def test_vertex_streams_with_an_access_token_from_the_credentials_file(
    vertex: tuple[Proxy, Path], fake: FakeAnthropicServer
) -> None:
    proxy, _ = vertex
    text = chat(proxy, "hello from the team")
    assert text.startswith(f"fake reply from {SONNET_ON_VERTEX}")
    streamed = [r for r in fake.cloud_requests("vertex") if r["path"].endswith(":streamRawPredict")]
    assert len(streamed) == 1, [r["path"] for r in fake.requests()]
    call = streamed[0]
    assert call["path"] == (
        f"/v1/projects/{PROJECT}/locations/europe-west1/publishers/anthropic/models/{SONNET_ON_VERTEX}:streamRawPredict"
    )
    assert (call["project"], call["region"], call["model"], call["status"]) == (
        PROJECT,
        "europe-west1",
        SONNET_ON_VERTEX,
        200,
    )
    assert call["body"]["anthropic_version"] == "vertex-2023-10-16" and "model" not in call["body"]
    # The bearer is the token the fake issued for the subject token the credentials file names.
    assert (call["auth_scheme"], call["auth"]) == ("bearer", access_token_for(SUBJECT))
    exchanges = [r for r in fake.requests() if r.get("api") == "google-sts"]
    assert exchanges and all(r["auth"] == SUBJECT and r["status"] == 200 for r in exchanges)
    # Nothing reached the Anthropic API route.
    assert fake.messages_requests() == []


def test_vertex_credentials_rotate_without_a_restart(vertex: tuple[Proxy, Path], fake: FakeAnthropicServer) -> None:
    proxy, credentials = vertex
    rotated = credentials.parent / "subject-2"
    rotated.write_text(SUBJECT + "-rotated")
    credentials.write_text(external_account(fake, rotated))
    pid = proxy.process.pid
    assert chat(proxy, "after the rotation").startswith("fake reply from")
    streamed = [r for r in fake.cloud_requests("vertex") if r["path"].endswith(":streamRawPredict")]
    assert [r["auth"] for r in streamed] == [access_token_for(SUBJECT + "-rotated")]
    assert proxy.process.pid == pid and proxy.process.poll() is None


def test_vertex_refuses_a_request_without_a_token(vertex: tuple[Proxy, Path], fake: FakeAnthropicServer) -> None:
    # The fake's side of the check: CLAUDE_CODE_SKIP_VERTEX_AUTH sends no token, and Vertex refuses it.
    import httpx

    url = f"{fake.base_url}/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x:rawPredict"
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    assert (
        httpx.post(url, json=body, headers={"authorization": "Bearer ya29.not-issued"}, timeout=10).status_code == 401
    )


# --------------------------------------------------------------------------- Bedrock


@pytest.fixture(scope="module")
def bedrock(cloud: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Path]]:
    workdir = tmp_path_factory.mktemp("bedrock-proxy")
    secrets = workdir / "credentials"
    secrets.mkdir(mode=0o700)
    credentials = secrets / "aws-credentials"
    credentials.write_text(aws_credentials(AWS_SECRET))
    credentials.chmod(0o600)
    config = secrets / "aws-config"
    config.write_text("[profile gateway]\nregion = eu-west-1\n")
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        workdir,
        cloud,
        {
            "ANTHROPIC_API_KEY": "",
            "ANTHROPIC_BASE_URL": "",
            "CLAUDE_CODE_USE_BEDROCK": "1",
            "AWS_REGION": "eu-west-1",
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_PROFILE": "gateway",
            "AWS_CONFIG_FILE": str(config),
            "AWS_EC2_METADATA_DISABLED": "true",
            "ANTHROPIC_BEDROCK_BASE_URL": cloud.base_url,
            "LITELLM_CLAUDE_CODE_WARM_MAX": "0",
        },
    )
    yield proxy, credentials
    stop_proxy(proxy)


def test_bedrock_streams_an_event_stream_signed_with_the_credentials_file(
    bedrock: tuple[Proxy, Path], fake: FakeAnthropicServer
) -> None:
    proxy, _ = bedrock
    text = chat(proxy, "hello from the team")
    streamed = [r for r in fake.cloud_requests("bedrock") if r["path"].endswith("/invoke-with-response-stream")]
    assert len(streamed) == 1, [(r["path"], r["status"], r.get("sigv4_problem")) for r in fake.requests()]
    call = streamed[0]
    # The CLI's sonnet, in the region's cross-region inference profile (eu. for eu-west-1).
    assert call["model"].startswith("eu.anthropic.claude-sonnet-"), call["model"]
    assert text.startswith(f"fake reply from {call['model']}")
    assert (call["auth_scheme"], call["auth"], call["sigv4_problem"], call["status"]) == (
        "sigv4",
        AWS_KEY_ID,
        None,
        200,
    )
    assert call["body"]["anthropic_version"] == "bedrock-2023-05-31" and "model" not in call["body"]
    assert fake.messages_requests() == []


def test_bedrock_wrong_secret_fails_then_a_rotated_file_works_without_a_restart(
    bedrock: tuple[Proxy, Path], fake: FakeAnthropicServer
) -> None:
    import openai

    proxy, credentials = bedrock
    credentials.write_text(aws_credentials("a-secret-the-cloud-does-not-know"))
    with pytest.raises(openai.APIStatusError) as info:
        chat(proxy, "with the wrong secret")
    assert info.value.status_code in (401, 403), info.value
    message = str(info.value)
    assert "The cloud rejected the credentials" in message and "AWS_SHARED_CREDENTIALS_FILE" in message, message
    assert "a-secret-the-cloud-does-not-know" not in message
    refused = [r for r in fake.cloud_requests("bedrock") if r["status"] == 403]
    assert refused and all("signature" in (r["sigv4_problem"] or "") for r in refused)

    fake.clear()
    credentials.write_text(aws_credentials(AWS_SECRET))
    assert chat(proxy, "after the rotation").startswith("fake reply from")
    assert wait_until(lambda: proxy.process.poll() is None, 1)
    assert all(r["sigv4_problem"] is None for r in fake.cloud_requests("bedrock"))
