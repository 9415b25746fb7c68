"""Logging: one structured line per request, CLI stderr at DEBUG, secrets redacted.

The provider logs under ``litellm_claude_code``. When nothing configured that logger, it
gets its own stderr handler at the configured level, so the per-request line shows up in
``journalctl`` or ``docker logs`` without touching LiteLLM's logging.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("litellm_claude_code")

_TOKEN_PATTERNS = re.compile(r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|Bearer\s+[A-Za-z0-9._\-]{8,})")


class RedactingFilter(logging.Filter):
    """Replaces credential-shaped strings and known secret values in every record."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self.secrets)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_filter = RedactingFilter()


def redact(text: str, secrets: set[str] | None = None) -> str:
    for secret in secrets or ():
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[REDACTED]")
    return _TOKEN_PATTERNS.sub("[REDACTED]", text)


def remember_secret(value: str) -> None:
    """Make sure ``value`` never appears in a log line of this provider."""
    _filter.secrets.add(value)


def configure(level: str) -> None:
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(_filter)
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


@dataclass(slots=True)
class RequestRecord:
    """What the per-request log line reports. Times are milliseconds from the request's arrival."""

    request_id: str
    model: str
    stream: bool
    status: int = 200
    warm: bool = False
    cold_reason: str | None = None
    conversation: str | None = None
    turns: int = 0
    queue_ms: float = 0.0
    cli_start_ms: float | None = None
    prepare_ms: float = 0.0
    hit_rate: float | None = None
    ttft_ms: float | None = None
    total_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str | None = None
    rate_limit: str | None = None
    """Utilisation of the subscription windows the CLI reported (``five_hour:0.82``)."""
    error: str | None = None
    not_applied: tuple[str, ...] = ()
    """Request parameters served but not applied (:mod:`._parameters`), as the response header names them."""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        parts = [
            f"request_id={self.request_id}",
            f"model={self.model}",
            f"stream={str(self.stream).lower()}",
            f"status={self.status}",
            f"warm={str(self.warm).lower()}",
            f"cold_reason={self.cold_reason or '-'}",
            f"conversation={self.conversation or '-'}",
            f"turns={self.turns}",
            f"queue_ms={self.queue_ms:.0f}",
            f"cli_start_ms={'-' if self.cli_start_ms is None else f'{self.cli_start_ms:.0f}'}",
            f"prepare_ms={self.prepare_ms:.0f}",
            f"ttft_ms={'-' if self.ttft_ms is None else f'{self.ttft_ms:.0f}'}",
            f"total_ms={self.total_ms:.0f}",
            f"prompt_tokens={self.prompt_tokens}",
            f"completion_tokens={self.completion_tokens}",
            f"cached_tokens={self.cached_tokens}",
            f"finish_reason={self.finish_reason or '-'}",
            f"warm_hit_rate={'-' if self.hit_rate is None else f'{self.hit_rate:.2f}'}",
            f"rate_limit={self.rate_limit or '-'}",
        ]
        if self.not_applied:
            parts.append(f"not_applied={','.join(self.not_applied)}")
        if self.error:
            parts.append(f'error="{self.error[:200]}"')
        return "claude_code_request " + " ".join(parts)
