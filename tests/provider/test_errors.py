"""Typed errors: the HTTP status a client gets, Retry-After, and messages without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from litellm.litellm_core_utils.secret_redaction import redact_internal_details
from litellm.llms.custom_llm import CustomLLMError
from litellm_claude_code._credentials import resolve_credential
from litellm_claude_code._errors import (
    BadRequestError,
    ClaudeCodeError,
    CLIFailedError,
    CLINotFoundError,
    ConfigurationError,
    QueueFullError,
    RateLimitedError,
    RequestTimeoutError,
    StateDirectoryError,
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamServerError,
    from_upstream_status,
)
from litellm_claude_code._observability import redact

SECRET = "sk-ant-api03-SECRET-VALUE-0123456789abcdef"


@pytest.mark.parametrize(
    ("upstream", "error_class", "client_status"),
    [
        (401, UpstreamAuthError, 401),
        (403, UpstreamAuthError, 401),
        (429, RateLimitedError, 429),
        (529, UpstreamOverloadedError, 503),
        (503, UpstreamOverloadedError, 503),
        (400, BadRequestError, 400),
        (413, BadRequestError, 400),
        (408, RequestTimeoutError, 504),
        (504, RequestTimeoutError, 504),
        (500, UpstreamServerError, 502),
        (502, UpstreamServerError, 502),
        (404, CLIFailedError, 502),
        (None, CLIFailedError, 502),
    ],
)
def test_from_upstream_status_table(upstream: int | None, error_class: type, client_status: int) -> None:
    error = from_upstream_status(upstream, "upstream detail", "ANTHROPIC_API_KEY")
    assert type(error) is error_class
    assert error.status_code == client_status
    assert isinstance(error, CustomLLMError)  # what LiteLLM turns into an HTTP answer
    if upstream not in (None, 404, 429):  # 429 says "rate limit"; an unclassified status keeps only the detail
        assert f"HTTP {upstream}" in str(error)


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (BadRequestError, 400),
        (UpstreamAuthError, 401),
        (RateLimitedError, 429),
        (QueueFullError, 429),
        (UpstreamOverloadedError, 503),
        (UpstreamServerError, 502),
        (RequestTimeoutError, 504),
        (CLINotFoundError, 500),
        (ConfigurationError, 500),
        (CLIFailedError, 502),
        (StateDirectoryError, 503),
    ],
)
def test_each_error_class_has_its_status(error_class: type[ClaudeCodeError], status: int) -> None:
    error = error_class("what to change")
    assert error.status_code == status
    assert str(error) == "what to change" == error.message
    # A rate limit always says when to come back; nothing else invents a wait.
    assert error.headers == ({"retry-after": "10"} if error_class is RateLimitedError else {})


def test_status_can_be_overridden() -> None:
    assert ClaudeCodeError("x", status=418).status_code == 418


def test_bad_request_keeps_the_upstream_detail() -> None:
    error = from_upstream_status(400, "prompt is too long: 300000 tokens > 200000 maximum", "ANTHROPIC_API_KEY")
    assert "prompt is too long" in str(error)


# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(("seconds", "header"), [(30, "30"), (2.4, "2"), (2.6, "3"), (0.2, "1"), (0, "1")])
def test_retry_after_becomes_a_whole_seconds_header(seconds: float, header: str) -> None:
    error = QueueFullError("all slots busy", retry_after=seconds)
    assert error.retry_after == seconds
    assert error.headers == {"retry-after": header}


def test_overloaded_upstream_asks_to_retry_after_five_seconds() -> None:
    error = from_upstream_status(529, "overloaded", "ANTHROPIC_API_KEY")
    assert error.headers == {"retry-after": "5"}


def test_rate_limit_carries_the_upstream_wait_when_known() -> None:
    assert from_upstream_status(429, "slow down", "ANTHROPIC_API_KEY").headers == {"retry-after": "10"}
    error = from_upstream_status(429, "slow down", "ANTHROPIC_API_KEY", retry_after=17)
    assert error.headers == {"retry-after": "17"}


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("token_setting", ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY_FILE"])
def test_auth_error_names_the_token_setting(status: int, token_setting: str) -> None:
    message = str(from_upstream_status(status, "invalid x-api-key", token_setting))
    assert f"in {token_setting}" in message
    assert "claude setup-token" in message
    # LiteLLM scrubs client-facing messages of anything shaped like a secret: ours must survive.
    scrubbed = redact_internal_details(message)
    assert token_setting in scrubbed and "claude setup-token" in scrubbed, scrubbed


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CLAUDE_CODE_OAUTH_TOKEN": "t0ken-value"}, "CLAUDE_CODE_OAUTH_TOKEN (an environment variable: restart"),
        ({"ANTHROPIC_API_KEY_FILE": "KEYFILE"}, "the file that ANTHROPIC_API_KEY_FILE names (read at each request"),
    ],
)
def test_auth_error_says_where_the_credential_came_from(env: dict[str, str], says: str, tmp_path: Path) -> None:
    if "ANTHROPIC_API_KEY_FILE" in env:
        key_file = tmp_path / "key"
        key_file.write_text("t0ken-value\n")
        env = {"ANTHROPIC_API_KEY_FILE": str(key_file)}
    credential = resolve_credential(env)
    message = str(from_upstream_status(401, "invalid", credential.setting))
    assert says in message, message
    assert "t0ken-value" not in message
    assert says in redact_internal_details(message)


@pytest.mark.parametrize("status", [None, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 529])
def test_no_message_contains_a_credential(status: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.setenv(name, SECRET)
    for token_setting in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN_FILE"):
        error = from_upstream_status(status, "the upstream said no", token_setting)
        text = f"{error} {error.message} {error.headers}"
        assert SECRET not in text
        assert redact(text) == text, f"credential-shaped text in {text!r}"
