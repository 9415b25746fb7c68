"""Typed errors, each with the HTTP status the proxy answers and a message for the operator.

LiteLLM turns a ``CustomLLMError`` into an answer with its ``status_code``; headers found on
the exception (``headers``) travel with it, which is how ``Retry-After`` reaches the client.
Messages say what to change, because the operator reads them in a client's error body or in
the proxy log, far from this code. No message ever includes a credential.
"""

from __future__ import annotations

from typing import Any, cast

from litellm.exceptions import RateLimitError, ServiceUnavailableError
from litellm.llms.custom_llm import CustomLLMError

# A 429 always says when to come back. The CLI reports the upstream's own Retry-After only
# when it retried; without one, this many seconds.
DEFAULT_RATE_LIMIT_RETRY_AFTER = 10


class ClaudeCodeError(CustomLLMError):
    """Base of every error the provider raises."""

    status: int = 500

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        code = status if status is not None else self.status
        super().__init__(status_code=code, message=message)  # type: ignore[no-untyped-call]
        self.retry_after = retry_after
        self.headers: dict[str, str] = {}
        if retry_after is not None:
            self.headers["retry-after"] = str(max(1, round(retry_after)))

    def __str__(self) -> str:
        return str(self.message)


class BadRequestError(ClaudeCodeError):
    """The request cannot be served as sent (400)."""

    status = 400


class UpstreamAuthError(ClaudeCodeError):
    """Anthropic refused the provider's credentials (401)."""

    status = 401


class RateLimitedError(ClaudeCodeError):
    """Anthropic rate-limited the request (429)."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        wait = DEFAULT_RATE_LIMIT_RETRY_AFTER if retry_after is None else retry_after
        super().__init__(message, retry_after=wait, status=status)


class QueueFullError(ClaudeCodeError):
    """Every CLI slot stayed busy for the whole queue timeout (429)."""

    status = 429


class UpstreamOverloadedError(ClaudeCodeError):
    """Anthropic is overloaded (529 upstream, 503 here)."""

    status = 503


class UpstreamServerError(ClaudeCodeError):
    """Anthropic or the network between failed (502)."""

    status = 502


class RequestTimeoutError(ClaudeCodeError):
    """The request ran past its timeout and its CLI process was killed (504)."""

    status = 504


class CLINotFoundError(ClaudeCodeError):
    """The Claude Code CLI binary is missing (500)."""

    status = 500


class ConfigurationError(ClaudeCodeError):
    """The provider is configured in a way that cannot work (500)."""

    status = 500


class StateDirectoryError(ClaudeCodeError):
    """The state directory is full or read-only (503): the service serves again once it is writable.

    Not a configuration mistake (that is :class:`ConfigurationError`, 500) but a condition of the
    host that passes: the message names the path and what is wrong with it.
    """

    status = 503


class CLIFailedError(ClaudeCodeError):
    """The CLI process failed for a reason it did not classify (502)."""

    status = 502


def from_upstream_status(
    status: int | None, detail: str, token_setting: str, *, retry_after: float | None = None, cloud: bool = False
) -> ClaudeCodeError:
    """Map the upstream HTTP status the CLI reported to the error the client should see.

    ``retry_after`` is the wait the upstream asked for, when the CLI reported one. ``cloud``:
    the credential is Bedrock's or Vertex AI's, so a refusal is the cloud's IAM, not a token
    that ``claude setup-token`` would mend.
    """
    if status == 401 or status == 403:
        # Worded so that LiteLLM's scrubbing of client-facing messages (which hides anything
        # shaped like "..._TOKEN: value") leaves it readable.
        if cloud:
            return UpstreamAuthError(
                f"The cloud rejected the credentials (HTTP {status}). Check {token_setting}, its permissions and "
                "that the model is enabled in the region (docs/credentials.md)."
            )
        return UpstreamAuthError(
            f"Anthropic rejected the credentials (HTTP {status}). Put a valid token (`claude setup-token`) "
            f"or API key in {token_setting}."
        )
    if status == 429:
        return RateLimitedError("Anthropic rate limit reached; retry later.", retry_after=retry_after)
    if status == 529 or status == 503:
        return UpstreamOverloadedError(f"Anthropic is overloaded (HTTP {status}); retry later.", retry_after=5)
    if status == 400 or status == 413:
        return BadRequestError(f"Anthropic refused the request (HTTP {status}): {detail}")
    if status == 408 or status == 504:
        return RequestTimeoutError(f"The upstream API timed out (HTTP {status}).")
    if status is not None and status >= 500:
        return UpstreamServerError(f"Anthropic returned HTTP {status}: {detail}")
    if status is not None:
        return CLIFailedError(f"Claude Code failed (upstream HTTP {status}): {detail}")
    return CLIFailedError(f"Claude Code failed: {detail}")


# LiteLLM maps a provider's exception to its own class and keeps the provider's headers only
# as `llm_provider-*` ones, so a plain ClaudeCodeError's Retry-After would reach a proxy client
# as `llm_provider-retry-after`. A LiteLLM exception is passed through unmapped, and the proxy
# answers with its `headers` as they are: errors that carry headers are raised as a class that
# is both the provider's error and LiteLLM's (`except QueueFullError` still works).
_LITELLM_CLASSES: dict[int, type[Exception]] = {
    429: RateLimitError,
    503: ServiceUnavailableError,
}
_HYBRIDS: dict[tuple[type[ClaudeCodeError], type[Exception]], type[Exception]] = {}


def for_litellm(exc: ClaudeCodeError, model: str) -> Exception:
    """``exc``, or an equivalent LiteLLM exception when it has headers (Retry-After) to send."""
    base = _LITELLM_CLASSES.get(exc.status_code)
    if not exc.headers or base is None:
        return exc
    key = (type(exc), base)
    hybrid = _HYBRIDS.get(key)
    if hybrid is None:
        hybrid = type(type(exc).__name__, (type(exc), base), {"__module__": type(exc).__module__})
        _HYBRIDS[key] = hybrid
    error: Any = hybrid.__new__(hybrid)
    cast(Any, base).__init__(error, message=exc.message, llm_provider="claude-code", model=model)
    error.retry_after = exc.retry_after
    error.headers = dict(exc.headers)
    return cast(Exception, error)
