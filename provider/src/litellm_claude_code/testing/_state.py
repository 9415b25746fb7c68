"""The fake server's shared state: request log, scenario queue and defaults.

One object shared by the server loop thread and test threads, so it has one lock."""

from __future__ import annotations

import copy
import itertools
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from litellm_claude_code.testing._cache import (
    PromptCache,
)
from litellm_claude_code.testing._scenario import Scenario, validate_scenario


class _State:
    """Request log, scenario queue and defaults, shared between the server loop
    thread and test threads (hence one lock for everything).  The prompt cache
    (``None``: caching disabled) has its own lock, see :class:`PromptCache`."""

    def __init__(
        self,
        default: Scenario,
        accept_keys: Iterable[str] | None,
        cache: PromptCache | None = None,
        aws_keys: dict[str, str] | None = None,
    ) -> None:
        self.cache = cache
        # Bedrock: access key id -> secret key, to verify SigV4 signatures (None: form only).
        self.aws_keys = aws_keys
        # Google access tokens the fake's token endpoint issued (Vertex accepts those).
        self.issued: set[str] = set()
        self.cond = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.queue: deque[Scenario] = deque()
        self.default: Scenario = validate_scenario(default)
        self.accept_keys: frozenset[str] | None = frozenset(accept_keys) if accept_keys is not None else None
        self.ids = itertools.count(1)

    def log(self, record: dict[str, Any]) -> None:
        with self.cond:
            self.requests.append(record)
            self.cond.notify_all()

    def update(self, record: dict[str, Any], **changes: Any) -> None:
        with self.cond:
            record.update(changes)
            self.cond.notify_all()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.cond:
            return copy.deepcopy(self.requests)

    def push(self, scenarios: object) -> int:
        items = scenarios if isinstance(scenarios, list) else [scenarios]
        checked = [validate_scenario(s) for s in items]
        with self.cond:
            self.queue.extend(checked)
            return len(self.queue)

    def pop(self) -> Scenario | None:
        with self.cond:
            return self.queue.popleft() if self.queue else None


STATE_KEY = web.AppKey("fake_anthropic_state", _State)
