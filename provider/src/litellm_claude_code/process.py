"""One Claude Code CLI process: start it, give it a user turn, read its answer, reset or end it.

A process may serve several requests of the same :class:`ProcessSpec`, one at a time, but
only after a verified reset: the CLI is asked to rewind its conversation to before the user
turn it just answered (the ``rewind_conversation`` control request), and the reset counts
only when the CLI confirms that nothing precedes that turn any more. Anything else (an
unexpected reply, a timeout, an SDK without the control channel) ends the process instead.

The SDK's own shutdown waits up to five seconds after closing stdin before it sends
SIGTERM; a cancelled request must free its process at once, so :meth:`CliProcess.kill`
sends SIGKILL to the pid the launcher recorded and the SDK's ``disconnect`` then only reaps
it. Every path out of a request goes through :meth:`CliProcess.close`, which also removes
the process's private workspace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError
from claude_agent_sdk import CLIConnectionError as SDKConnectionError
from claude_agent_sdk import CLINotFoundError as SDKCLINotFoundError
from claude_agent_sdk.types import Message, ResultMessage, UserMessage

from .cli import ProcessSpec, Workspace, build_options
from .errors import ClaudeCodeError, CLIFailedError, CLINotFoundError
from .messages import Prompt
from .settings import Settings

logger = logging.getLogger("litellm_claude_code")


class CliProcess:
    """A started (or starting) CLI process, bound to one :class:`ProcessSpec`."""

    def __init__(
        self,
        settings: Settings,
        spec: ProcessSpec,
        *,
        launcher: Path,
        cli: str,
        stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.workspace = Workspace.create(settings.state_dir)
        self._client = ClaudeSDKClient(
            options=build_options(settings, spec, self.workspace, launcher=launcher, cli=cli, stderr=stderr)
        )
        self.created_at = time.monotonic()
        self.ready_at: float | None = None
        self.uses = 0
        self.busy = False
        self.closed = False
        self.completed = False  # the last run read the CLI's result: the process is between turns
        self._turn_uuid: str | None = None
        self._connected = False

    @property
    def pid(self) -> int | None:
        return self.workspace.pid()

    async def start(self) -> None:
        """Spawn the CLI and wait for its initialize handshake: the start-up a warm process pre-pays."""
        try:
            await self._client.connect()
            self._connected = True
        except SDKCLINotFoundError as exc:
            raise CLINotFoundError(
                f"Claude Code CLI not found: {exc}. Install claude-agent-sdk's Linux wheel, which bundles it, "
                "or set LITELLM_CLAUDE_CODE_CLI_PATH."
            ) from None
        except SDKConnectionError as exc:
            raise CLIFailedError(f"Claude Code CLI did not start: {exc}") from None
        except ClaudeSDKError as exc:
            raise CLIFailedError(f"Claude Code CLI failed at start-up: {exc}") from None
        self.ready_at = time.monotonic()

    def alive(self) -> bool:
        """True while the CLI process exists (a dead warm process is discarded, not used)."""
        pid = self.pid
        if pid is None or self.closed:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie still answers kill(0); look at its state.
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    async def run(self, prompt: Prompt) -> AsyncIterator[Message]:
        """Send the user turn and yield the CLI's messages up to and including the result."""
        if self.busy or self.closed:
            raise RuntimeError("a CLI process serves one request at a time")
        self.busy = True
        self.completed = False
        self.uses += 1
        self._turn_uuid = None

        async def one_message() -> AsyncIterator[dict[str, Any]]:
            yield prompt.as_cli_message()

        try:
            await self._client.query(one_message())
            async for message in self._client.receive_response():
                if isinstance(message, UserMessage) and self._turn_uuid is None:
                    self._turn_uuid = message.uuid  # the replayed user turn: what a reset rewinds to
                    continue
                if isinstance(message, ResultMessage):
                    self.completed = True
                yield message
        except ClaudeCodeError:
            raise
        except ClaudeSDKError as exc:
            raise CLIFailedError(f"Claude Code CLI failed: {exc}") from None
        finally:
            self.busy = False

    async def reset(self, timeout: float = 5.0) -> bool:
        """Forget the last turn, verified; True only if the conversation is now empty."""
        if self.closed or self.busy or not self.completed or not self._turn_uuid or not self.alive():
            logger.debug(
                "no reset: closed=%s busy=%s completed=%s turn=%s",
                self.closed,
                self.busy,
                self.completed,
                self._turn_uuid,
            )
            return False
        query = getattr(self._client, "_query", None)
        send = getattr(query, "_send_control_request", None)
        if send is None:
            return False  # an SDK without the control channel: processes are used once
        try:
            answer = await send(
                {"subtype": "rewind_conversation", "target_message_uuid": self._turn_uuid}, timeout=timeout
            )
        except Exception:
            logger.debug("conversation reset failed", exc_info=True)
            return False
        verified = (
            isinstance(answer, dict)
            and answer.get("rewound") is True
            and answer.get("targetMessageUuid") == self._turn_uuid
            and answer.get("precedingAssistantUuid") is None
        )
        if verified:
            self._turn_uuid = None
            self.completed = False
        else:
            logger.warning("conversation reset not verified (%s); the process is stopped", answer)
        return verified

    def kill(self) -> None:
        """SIGKILL the CLI now; safe to call at any time, any number of times."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def close(self) -> None:
        """Kill, reap and forget the process, and remove its workspace. Never raises."""
        if self.closed:
            return
        self.closed = True
        self.kill()
        try:
            # Shielded and bounded: a cancelled request still reaps its child, without hanging.
            await asyncio.wait_for(asyncio.shield(self._disconnect()), timeout=10)
        except (TimeoutError, asyncio.CancelledError, Exception):
            logger.debug("CLI disconnect did not finish cleanly", exc_info=True)
        finally:
            self.kill()
            self.workspace.remove()

    async def _disconnect(self) -> None:
        try:
            await self._client.disconnect()
        except Exception:
            logger.debug("CLI disconnect raised", exc_info=True)
