"""One Claude Code CLI process: start it, fit it to a request, give it a turn, keep its conversation.

A process is bound for life only to its :class:`~.cli.Launch` (credential and upstream).
Everything else is given to it over the SDK's control channel while it runs, which is what lets
a process started ahead of time serve whatever request comes next:

- the model with ``set_model`` (only while its conversation is empty: on a conversation the CLI
  records a model switch as a note in the next user turn, which the client never wrote);
- the system prompt with ``set_model``'s ``system_prompt`` (the prompt snapshot is off, so it
  applies from the next turn on, also within a conversation, except in a ``haiku`` session:
  :data:`NO_GUARDED_SWITCH`); a process that was given a system prompt cannot go back to none;
- the output limit with ``apply_flag_settings`` (``CLAUDE_CODE_MAX_OUTPUT_TOKENS``).

A process keeps the conversation it answered, as the CLI holds it: the turns, each with the
chain fingerprint of the conversation up to it (:func:`.messages.chain_of`) and the CLI's uuid
for it. A later request whose earlier turns are a prefix of that conversation is served by
writing only its new turn. Any other request first has the conversation cut back with
``rewind_conversation`` to the turns the two share, possibly none, and the cut counts only when
the CLI confirms exactly that cut: the turn it removed from and the assistant message left
before it. The earlier turns the process does not hold are then written as real turns, before
the new one: a user turn with ``shouldQuery: false`` (the CLI records it and answers at once
with an empty result, no upstream request), an assistant turn as an assistant message (recorded
in place). The CLI keeps the uuid written with each, which later cuts name. So any idle process
of the request's credential can take any conversation, and the history reaches Claude laid out
exactly as if the conversation had grown in that process: the same prompt prefix, the same
cache. Nothing of one conversation can reach another's upstream request.

The SDK's own shutdown waits up to five seconds after closing stdin before it sends SIGTERM;
a cancelled request must free its process at once, so :meth:`CliProcess.kill` sends SIGKILL to
the pid the launcher recorded and the SDK's ``disconnect`` then only reaps it. Every path out of
a process goes through :meth:`CliProcess.close`, which also removes its private workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError
from claude_agent_sdk import CLIConnectionError as SDKConnectionError
from claude_agent_sdk import CLINotFoundError as SDKCLINotFoundError
from claude_agent_sdk.types import AssistantMessage, Message, ResultMessage

from . import _reasoning as reasoning
from ._cli import Binding, Launch, Workspace, build_options, check_managed_policy, state_dir_error
from ._errors import ClaudeCodeError, CLIFailedError, CLINotFoundError
from ._messages import Conversation, Role, Turn, chain_of
from ._settings import Settings
from ._structured import SchemaTransport

logger = logging.getLogger("litellm_claude_code")

CONTROL_TIMEOUT = 5.0

# Model settings for which the CLI refuses every guarded set_model ("cannot confirm that it runs
# the model named": it maps them to another model internally, CLI 2.1.332), so their system
# prompt cannot change within a conversation. Setting the resolved id instead costs an upstream
# probe request per process (set_model validates a full id with a one-token "Hi"). Such a
# conversation is cut back to nothing and written again with the new system prompt instead;
# test_compat_cli.py pins both facts.
NO_GUARDED_SWITCH = frozenset({"haiku", "opusplan", "opusplan[1m]"})


@dataclass(frozen=True, slots=True)
class HeldTurn:
    """A turn a process holds: its role, the conversation's chain fingerprint through it, the CLI's uuid."""

    role: Role
    chain: str | None
    """None when what the CLI holds is not exactly what the client was sent (it matches nothing)."""
    uuid: str


@dataclass(frozen=True, slots=True)
class Plan:
    """How a process serves a request: turns it keeps, earlier turns written to it, then the user turn."""

    keep: int
    append: tuple[Turn, ...]
    rewind: bool

    @property
    def kind(self) -> str:
        """For the log line: ``continued`` (no cut), ``branched`` (cut to a shared prefix),
        ``rebuilt`` (nothing shared: the history written anew), ``new`` (no history)."""
        if self.keep and not self.rewind:
            return "continued"
        if self.keep:
            return "branched"
        if self.append:
            return "rebuilt"
        return "new"

    @property
    def affinity(self) -> bool:
        """The process already held part of the conversation."""
        return self.keep > 0


def plan_for(
    held: Sequence[HeldTurn],
    current: Binding,
    owner: str | None,
    conversation: Conversation,
    binding: Binding,
    tenant: str,
) -> Plan | None:
    """How a process holding ``held``, bound to ``current``, owned by ``owner``, could serve a request.

    None when it cannot: another tenant's process; a system prompt to take away; a cut that is
    not before a user turn; or a model change in a conversation it keeps.
    """
    if owner is not None and owner != tenant:
        return None
    if binding.system_prompt is None and current.system_prompt is not None:
        return None  # a system prompt once given cannot be taken back
    if binding.tools != current.tools:
        return None  # a process lists the client's tools once, when it starts
    if binding.schema != current.schema:
        return None  # so is its structured-output schema
    history = conversation.history
    chains = chain_of(history)
    keep = 0
    while keep < min(len(chains), len(held)) and held[keep].chain == chains[keep]:
        keep += 1
    if keep and binding.system_prompt != current.system_prompt and current.model in NO_GUARDED_SWITCH:
        keep = 0  # its system prompt changes only on an empty conversation: write the history again
    tail = history[keep:]
    rewind = keep < len(held)
    if rewind and held[keep].role != "user":
        return None  # the CLI cuts a conversation only before one of its user turns
    if keep and binding.model != current.model:
        return None
    return Plan(keep, tuple(tail), rewind)


class CliProcess:
    """A started (or starting) CLI process and the conversation it holds."""

    def __init__(
        self,
        settings: Settings,
        launch: Launch,
        binding: Binding,
        *,
        cwd: Path,
        launcher: Path,
        cli: str,
        stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.launch = launch
        self.binding = Binding(binding.model, None, binding.max_output_tokens, binding.tools, schema=binding.schema)
        # The model id the CLI resolved the binding's model to, once a set_model answer named it:
        # ``only_if_model_is_current`` does not match every alias (``haiku`` fails, CLI 2.1.332).
        self._resolved_model: str | None = None
        self.workspace = Workspace.create(settings.state_dir)
        self.held: list[HeldTurn] = []
        options = build_options(
            settings,
            launch,
            self.binding,
            self.workspace,
            cwd=cwd,
            launcher=launcher,
            cli=cli,
            stderr=stderr,
        )
        schema = self.binding.schema
        self._client = ClaudeSDKClient(
            options=options, transport=SchemaTransport(options, schema) if schema is not None else None
        )
        self.created_at = time.monotonic()
        self.last_used = self.created_at
        self.ready_at: float | None = None
        self.tenant: str | None = None
        """The LiteLLM key (hashed) this process serves; None until its first request."""
        self.uses = 0
        self.busy = False
        self.closed = False
        self.completed = False  # the last turn ended with the CLI's result: the process is between turns
        # Its last answer handed the client tool calls: the client's results are its next turn.
        self.awaits_tool_results = False
        self._turn: tuple[HeldTurn, str | None] | None = None  # the user turn in flight, the answer's uuid

    # -- life -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.workspace.pid()

    async def start(self) -> None:
        """Spawn the CLI and wait for its initialize handshake: the start-up a warm process pre-pays.

        Not while Claude Code's managed policy is installed on the host (:func:`.cli.check_managed_policy`,
        checked at every start: policy deployed while the gateway runs applies to the next process).
        """
        check_managed_policy()
        try:
            await self._client.connect()
        except SDKCLINotFoundError as exc:
            raise CLINotFoundError(
                f"Claude Code CLI not found: {exc}. Install claude-agent-sdk's Linux wheel, which bundles it, "
                "or set LITELLM_CLAUDE_CODE_CLI_PATH."
            ) from None
        except SDKConnectionError as exc:
            raise CLIFailedError(f"Claude Code CLI did not start: {exc}") from None
        except ClaudeSDKError as exc:
            raise self._start_failure(exc) from None
        self.ready_at = time.monotonic()

    def _start_failure(self, exc: ClaudeSDKError) -> ClaudeCodeError:
        """Why the CLI exited at start-up: a full or read-only state directory (503), else a 502.

        The CLI writes its home (settings, session transcript) in the workspace as it starts; on a
        full or read-only filesystem it exits at once with nothing useful on stderr, so one small
        write of our own there tells a passing condition of the host from a fault of the CLI.
        """
        probe = self.workspace.home / f".write-probe-{os.getpid()}"
        try:
            with probe.open("wb") as handle:
                handle.write(b"\0" * 4096)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            return state_dir_error(self.workspace.home, err, "write in", "Check the state directory's owner and mode.")
        finally:
            with contextlib.suppress(OSError):  # a read-only filesystem refuses even this
                probe.unlink(missing_ok=True)
        return CLIFailedError(f"Claude Code CLI failed at start-up: {exc}")

    def alive(self) -> bool:
        """True while the CLI process exists (a dead idle process is discarded, not used)."""
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

    # -- fitting a request -----------------------------------------------------------------

    def plan(self, conversation: Conversation, binding: Binding, tenant: str) -> Plan | None:
        """How this process could serve ``conversation`` exactly, or None if it cannot."""
        return plan_for(self.held, self.binding, self.tenant, conversation, binding, tenant)

    async def prepare(self, plan: Plan, binding: Binding) -> None:
        """Cut the conversation back, set model, system prompt and output limit, write the earlier turns."""
        if plan.rewind:
            await self._rewind(plan.keep)
        await self._bind(binding)
        start = self.held[-1].chain if self.held else ""
        chains: Sequence[str | None] = (
            chain_of(plan.append, start=start) if start is not None else [None] * len(plan.append)
        )
        for turn, chain in zip(plan.append, chains, strict=True):
            held = HeldTurn(turn.role, chain, str(uuid.uuid4()))
            if turn.role == "user":
                await self._record_user_turn(turn, held.uuid)
            else:
                await self.write({**_assistant_message(turn), "uuid": held.uuid})
            self.held.append(held)

    async def _record_user_turn(self, turn: Turn, turn_uuid: str) -> None:
        """Write an earlier user turn that the CLI records without asking Claude anything."""
        await self.write(
            {
                "type": "user",
                "message": {"role": "user", "content": turn.cli_content()},
                "parent_tool_use_id": None,
                "session_id": "default",
                "uuid": turn_uuid,
                "shouldQuery": False,
            }
        )
        result = await asyncio.wait_for(self._drain(), CONTROL_TIMEOUT)
        if result is None or result.is_error or result.num_turns != 0:
            raise CLIFailedError(f"an earlier user turn was not recorded as such ({result}); the process is stopped")

    async def _rewind(self, keep: int) -> None:
        """Cut the conversation back to its first ``keep`` held turns (``held[keep]`` is a user turn)."""
        last_user = next(t.uuid for t in reversed(self.held) if t.role == "user")
        await self._cut(self.held[keep].uuid, keep, last_user)
        del self.held[keep:]

    async def _cut(self, target: str, keep: int, last_user: str) -> None:
        answer = await self.control(
            {
                "subtype": "rewind_conversation",
                "target_message_uuid": target,
                "last_seen_user_message_uuid": last_user,
            }
        )
        preceding = self.held[keep - 1].uuid if keep else None
        verified = (
            answer.get("rewound") is True
            and answer.get("targetMessageUuid") == target
            and answer.get("precedingAssistantUuid") == preceding
        )
        if not verified:
            raise CLIFailedError(f"conversation cut not verified ({answer}); the process is stopped")

    async def _bind(self, binding: Binding) -> None:
        current = self.binding
        if binding.tools != current.tools or binding.schema != current.schema:
            raise RuntimeError("a process's tools and output schema are fixed when it starts")
        if binding.reasoning != current.reasoning:
            await reasoning.bind(self.control, current.reasoning, binding.reasoning)
            self.binding = current = replace(current, reasoning=binding.reasoning)
        if binding.model != current.model:
            if self.held:
                raise RuntimeError("the model of a conversation in progress cannot change")
            request: dict[str, Any] = {"subtype": "set_model", "model": binding.model}
            if binding.system_prompt is not None:
                request["system_prompt"] = binding.system_prompt
            self._learn_model(await self.control(request))
            current = replace(
                current, model=binding.model, system_prompt=binding.system_prompt or current.system_prompt
            )
        if binding.system_prompt != current.system_prompt:
            if binding.system_prompt is None:
                raise RuntimeError("a system prompt once set cannot be removed")
            request = {"subtype": "set_model", "model": current.model, "system_prompt": binding.system_prompt}
            if self.held:
                # On a conversation, a set_model that switched models would leave a note in the
                # next user turn; this one only changes the system prompt, and says so.
                request["model"] = self._resolved_model or current.model
                request["only_if_model_is_current"] = True
            self._learn_model(await self.control(request))
            current = replace(current, system_prompt=binding.system_prompt)
        if binding.max_output_tokens != current.max_output_tokens:
            value = str(binding.max_output_tokens) if binding.max_output_tokens else ""
            await self.control(
                {"subtype": "apply_flag_settings", "settings": {"env": {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": value}}}
            )
            current = replace(current, max_output_tokens=binding.max_output_tokens)
        self.binding = current

    def _learn_model(self, answer: dict[str, Any]) -> None:
        if isinstance(answer.get("model"), str) and answer["model"]:
            self._resolved_model = answer["model"]

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one control request to the CLI and return its answer (an error answer raises)."""
        query = getattr(self._client, "_query", None)
        send = getattr(query, "_send_control_request", None)
        if send is None:
            raise CLIFailedError("this claude-agent-sdk has no control channel; upgrade it")
        try:
            answer = await send(request, timeout=CONTROL_TIMEOUT)
        except ClaudeCodeError:
            raise
        except Exception as exc:
            raise CLIFailedError(f"Claude Code refused {request['subtype']}: {exc}") from None
        return answer if isinstance(answer, dict) else {}

    async def write(self, message: dict[str, Any]) -> None:
        """Write one stream-json message to the CLI's stdin."""

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield message

        await self._client.query(one())

    # -- a turn ----------------------------------------------------------------------------

    async def run(self, conversation: Conversation, *, follow_up: bool = False) -> AsyncIterator[Message]:
        """Send the conversation's last (user) turn; yield the CLI's messages up to and including the result.

        ``follow_up``: a further user turn of the same request (asking for a forced tool call,
        :meth:`.engine.Engine.stream`) after the turn just answered; the request's turn still
        starts at its first user turn, so :meth:`drop_turn` cuts both off.
        """
        if self.busy or self.closed:
            raise RuntimeError("a CLI process serves one request at a time")
        self.busy = True
        self.completed = False
        self.awaits_tool_results = False
        self.uses += 1
        self.last_used = time.monotonic()
        if follow_up and self._turn is not None:
            user = self._turn[0]
            turn_uuid = str(uuid.uuid4())
        else:
            user = HeldTurn("user", conversation.chain()[-1], str(uuid.uuid4()))
            turn_uuid = user.uuid
        self._turn = (user, None)
        message = {
            "type": "user",
            "message": {"role": "user", "content": conversation.last.cli_content()},
            "parent_tool_use_id": None,
            "session_id": "default",
            "uuid": turn_uuid,
        }
        try:
            await self.write(message)
            async for item in self._client.receive_response():
                if isinstance(item, AssistantMessage) and item.uuid and item.parent_tool_use_id is None:
                    self._turn = (user, item.uuid)
                    if self._resolved_model is None and item.model:
                        self._resolved_model = item.model  # the id the CLI sent upstream
                if isinstance(item, ResultMessage):
                    self.completed = True
                yield item
        except ClaudeCodeError:
            raise
        except ClaudeSDKError as exc:
            raise CLIFailedError(f"Claude Code CLI failed: {exc}") from None
        finally:
            self.busy = False
            self.last_used = time.monotonic()

    def commit(self, answer: Turn) -> bool:
        """Record the turn just answered, with ``answer`` exactly as the client received it.

        False (nothing recorded) unless the turn ended with the CLI's result and the CLI named
        the assistant message it recorded; the caller then stops the process.
        """
        if self._turn is None or not self.completed:
            return False
        user, answer_uuid = self._turn
        self._turn = None
        if answer_uuid is None or user.chain is None:
            return False
        self.held.append(user)
        self.held.append(HeldTurn("assistant", chain_of((answer,), start=user.chain)[0], answer_uuid))
        self.awaits_tool_results = any(block.get("type") == "tool_use" for block in answer.content)
        return True

    async def drop_turn(self) -> None:
        """Stop the turn in flight and cut it off: the process keeps only the turns before it.

        For answers that end without the CLI's result (the output limit reached, a refusal):
        the CLI would go on by itself (after ``max_tokens`` it asks Claude to resume), and what
        it holds of the turn is not what the client received.
        """
        if self._turn is None:
            raise RuntimeError("no turn to drop")
        user = self._turn[0]
        self._turn = None
        if not self.completed:
            await self.control({"subtype": "interrupt"})
            await asyncio.wait_for(self._drain(), CONTROL_TIMEOUT)
            self.completed = True
        await self._cut(user.uuid, len(self.held), user.uuid)

    async def _drain(self) -> ResultMessage | None:
        result: ResultMessage | None = None
        async for item in self._client.receive_response():
            if isinstance(item, ResultMessage):
                result = item
        return result


def _assistant_message(turn: Turn) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {"role": "assistant", "content": [dict(block) for block in turn.content]},
        "parent_tool_use_id": None,
        "session_id": "default",
    }
