"""Subscription windows as the CLI reports them, for the log line and for a refusal's 429.

With a subscription token the upstream answers every request with
``anthropic-ratelimit-unified-*`` headers (status, reset time, the window that decides, and a
utilisation per window: ``5h``, ``7d``, ...). The CLI turns them into ``rate_limit_event``
messages (the SDK's :class:`~claude_agent_sdk.types.RateLimitEvent`), including for the 429
that refuses a request because a window is full. The provider logs the utilisation it sees
(``rate_limit=five_hour:0.82``), so an operator can watch a window fill up, and answers a
refusal with 429, ``Retry-After`` until the window resets, and the window's name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk.types import RateLimitEvent

from ._errors import RateLimitedError

WINDOW_NAMES = {
    "five_hour": "5-hour",
    "seven_day": "7-day",
    "seven_day_opus": "7-day Opus",
    "seven_day_sonnet": "7-day Sonnet",
    "seven_day_overage_included": "7-day",
    "overage": "extra-usage",
}


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The window that decides (``rate_limit_type``), its status and reset, and each window's utilisation."""

    status: str
    window: str | None
    resets_at: int | None
    utilization: dict[str, float]

    @classmethod
    def from_event(cls, event: RateLimitEvent) -> RateLimitState:
        info = event.rate_limit_info
        windows: dict[str, float] = {}
        raw: Any = (info.raw or {}).get("unifiedWindows")
        if isinstance(raw, dict):
            for name, window in raw.items():
                value = window.get("utilization") if isinstance(window, dict) else None
                if isinstance(value, int | float):
                    windows[str(name)] = float(value)
        if info.rate_limit_type and info.utilization is not None:
            windows.setdefault(info.rate_limit_type, float(info.utilization))
        return cls(info.status, info.rate_limit_type, info.resets_at, windows)

    def log_field(self) -> str:
        """``five_hour:0.82,seven_day:0.40`` (``-`` when no window reported a utilisation)."""
        if not self.utilization:
            return f"{self.window}:{self.status}" if self.window else "-"
        return ",".join(f"{name}:{value:.2f}" for name, value in self.utilization.items())

    def refusal(self) -> RateLimitedError:
        """The 429 for a request a subscription window refused: wait until it resets."""
        name = WINDOW_NAMES.get(self.window or "", self.window or "subscription")
        wait: float | None = None
        when = ""
        if self.resets_at:
            wait = max(1.0, self.resets_at - time.time())
            when = " It resets at " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.resets_at)) + "."
        return RateLimitedError(
            f"The Claude subscription's {name} usage limit ({self.window}) is reached.{when} Retry after the reset, "
            "or use another credential.",
            retry_after=wait,
        )
