"""``ClaudeCodeProvider``: the LiteLLM ``CustomLLM`` that answers through the Claude Code CLI.

The LiteLLM proxy only calls the async pair (``acompletion``, ``astreaming``), on its
event loop; nothing there blocks. The sync pair, for plain scripts, runs the same async
code on a private loop thread. Requests are validated before anything starts, so a bad
request costs no process and gets a 400 that says what to change.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import re
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ChatCompletionMessageToolCall, Function, GenericStreamingChunk, ModelResponse, Usage

from ._bridge import LoopThread, in_own_task
from ._compat import check_cli_version, check_dependencies, cli_version
from ._cost import attach_to_response, attach_to_usage
from ._engine import Engine, Request
from ._errors import BadRequestError, ClaudeCodeError, for_litellm
from ._messages import convert_messages
from ._observability import configure, logger
from ._parameters import drop_requested, screen
from ._reasoning import reasoning_chunk, reasoning_of
from ._settings import Limits, Settings
from ._stops import stops_of
from ._streaming import Delta, Outcome, ToolCallDelta
from ._structured import output_schema
from ._tools import check_strict, client_name, to_text, to_wire, tool_request

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\[\]-]{0,127}$")


class ClaudeCodeProvider(CustomLLM):
    """LiteLLM provider for Claude through the Claude Code CLI (see the package README)."""

    def __init__(self, settings: Settings | None = None) -> None:
        check_dependencies()  # DependencyVersionError: what to install (here, not at import)
        super().__init__()
        self._settings = settings
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engine] = weakref.WeakKeyDictionary()
        self._loop_thread: LoopThread | None = None
        self._lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings given, else read from the environment at first use."""
        return self.load_settings()

    def load_settings(self) -> Settings:
        """Read (once) and validate the settings; a bad value raises SettingsError naming it."""
        if self._settings is None:
            settings = Settings.from_env()
            if settings.cli_path:
                check_cli_version(cli_version(settings.cli_path), f"LITELLM_CLAUDE_CODE_CLI_PATH={settings.cli_path}")
            self._settings = settings
            configure(settings.log_level)
        return self._settings

    def engine(self) -> Engine:
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is None:
            engine = Engine(self.settings)
            self._engines[loop] = engine
        return engine

    def build_request(
        self,
        model: str,
        messages: Any,
        optional_params: dict[str, Any] | None,
        timeout: Any,
        *,
        stream: bool,
        litellm_params: dict[str, Any] | None = None,
    ) -> Request:
        """Validate and convert one call's arguments; every problem is a 400 naming the field."""
        settings = self.settings
        params = optional_params or {}
        name = (model or "").strip() or settings.default_model
        if not _MODEL_NAME.match(name):
            raise BadRequestError(
                f"model {name!r} is not a Claude model name; use sonnet, opus, haiku or a full model id."
            )
        not_applied = screen(params, drop=drop_requested(litellm_params))
        n = params.get("n")
        if n not in (None, 1):
            raise BadRequestError("n: only one choice per request is supported.")
        max_tokens = params.get("max_completion_tokens") or params.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise BadRequestError("max_tokens must be a positive integer.")
        conversation = convert_messages(messages)
        limits = Limits.of(settings)
        asked = tool_request(params, conversation, limits)
        tools = asked.tools
        schema = output_schema(params.get("response_format"), limits)
        if schema is not None and tools is not None:
            raise BadRequestError(
                "response_format with tools is not supported: Claude Code gives structured output as a call of its "
                "own tool, which would compete with the client's tools in one answer. Send one or the other."
            )
        if tools is not None:
            conversation = to_wire(conversation)
        elif asked.as_text:
            conversation = to_text(conversation)
        request_timeout = settings.request_timeout
        seconds = _timeout_seconds(timeout)
        if seconds is not None:
            request_timeout = min(request_timeout, seconds)
        request = Request(
            model=name,
            conversation=conversation,
            stream=stream,
            timeout=request_timeout,
            max_output_tokens=max_tokens,
            reasoning=reasoning_of(params),
            stop=stops_of(params.get("stop")),
            tenant=_tenant(litellm_params),
            tools=tools,
            schema=schema,
            forced=asked.forced,
            forced_name=asked.name,
            single_call=asked.single,
            not_applied=tuple(not_applied),
        )
        call_id = (litellm_params or {}).get("litellm_call_id")
        if isinstance(call_id, str) and call_id:
            request.request_id = call_id
        return request

    # -- async API (the proxy's) -----------------------------------------------------------

    async def astreaming(  # type: ignore[override]
        self, model: str, messages: list[Any], *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        # In a worker thread: it checks the client's schemas (bounded by _structured.CHECK_SECONDS).
        request = await asyncio.to_thread(
            self.build_request,
            model,
            messages,
            kwargs.get("optional_params"),
            kwargs.get("timeout"),
            stream=True,
            litellm_params=kwargs.get("litellm_params"),
        )
        async for chunk in self._chunks(request):
            yield chunk

    async def _chunks(self, request: Request) -> AsyncIterator[GenericStreamingChunk]:
        outcome = Outcome()
        response_id, created = f"chatcmpl-{uuid.uuid4()}", int(time.time())
        try:
            async for batch in in_own_task(self.engine().stream(request, outcome)):
                for delta in _merged(batch):
                    if delta.reasoning:
                        chunk = reasoning_chunk(
                            delta.reasoning, model=request.model, response_id=response_id, created=created
                        )
                        yield cast(GenericStreamingChunk, chunk)
                        continue
                    yield GenericStreamingChunk(
                        text=delta.text,
                        is_finished=False,
                        finish_reason="",
                        usage=None,
                        index=0,
                        tool_use=_tool_call_chunk(delta.tool_call) if delta.tool_call else None,
                    )
            if request.tools is not None:  # a thread hop only when there is something to check
                await asyncio.to_thread(check_strict, request.tools, outcome.tool_calls)
        except ClaudeCodeError as exc:
            raise for_litellm(exc, request.model) from None
        yield GenericStreamingChunk(
            text="",
            is_finished=True,
            finish_reason=outcome.finish_reason,
            usage=cast(Any, attach_to_usage(dict(outcome.usage.as_openai()), outcome.cost_usd)),
            index=0,
            tool_use=None,
        )

    async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> ModelResponse:
        request = await asyncio.to_thread(
            self.build_request,
            model,
            messages,
            kwargs.get("optional_params"),
            kwargs.get("timeout"),
            stream=False,
            litellm_params=kwargs.get("litellm_params"),
        )
        outcome = Outcome()
        try:
            parts = [delta.text async for delta in self.engine().stream(request, outcome) if delta.text]
            if request.tools is not None:
                await asyncio.to_thread(check_strict, request.tools, outcome.tool_calls)
        except ClaudeCodeError as exc:
            raise for_litellm(exc, request.model) from None
        response = kwargs.get("model_response")
        if not isinstance(response, ModelResponse):
            response = ModelResponse()
        return _fill_response(response, "".join(parts), outcome, request.model)

    # -- shutdown --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop every warm CLI process this provider started, from the running loop and the
        sync API's thread, so a host application (or a test) ends with no CLI process left."""
        engine = self._engines.get(asyncio.get_running_loop())
        if engine is not None:
            await engine.close()
        thread = self._loop_thread
        if thread is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_current_engine(), thread.loop))

    def close(self, timeout: float = 30) -> None:
        """The sync API's counterpart of :meth:`aclose`: stops the processes its thread started."""
        thread = self._loop_thread
        if thread is not None:
            asyncio.run_coroutine_threadsafe(self._close_current_engine(), thread.loop).result(timeout)

    async def _close_current_engine(self) -> None:
        engine = self._engines.get(asyncio.get_running_loop())
        if engine is not None:
            await engine.close()

    # -- sync API (scripts) ----------------------------------------------------------------

    def _thread(self) -> LoopThread:
        with self._lock:
            if self._loop_thread is None:
                self._loop_thread = LoopThread()
                atexit.register(_close_at_exit, weakref.ref(self))
            return self._loop_thread

    def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> ModelResponse:
        return self._thread().run(self.acompletion(model, messages, *args, **kwargs))

    def streaming(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        request = self.build_request(
            model,
            messages,
            kwargs.get("optional_params"),
            kwargs.get("timeout"),
            stream=True,
            litellm_params=kwargs.get("litellm_params"),
        )
        return self._thread().iterate(self._chunks(request))


def _merged(batch: list[Delta]) -> list[Delta]:
    """Adjacent pieces of text (or of reasoning) joined, in order; tool-call pieces kept as they are.

    A client reads the same text either way; OpenAI's streaming format promises no size of a
    delta.
    """
    if len(batch) == 1:
        return batch
    out: list[Delta] = []
    for delta in batch:
        last = out[-1] if out else None
        if last is not None and delta.tool_call is None and last.tool_call is None:
            if delta.text and not delta.reasoning and last.text and not last.reasoning:
                out[-1] = Delta(text=last.text + delta.text)
                continue
            if delta.reasoning and not delta.text and last.reasoning and not last.text:
                out[-1] = Delta(reasoning=last.reasoning + delta.reasoning)
                continue
        out.append(delta)
    return out


def _tenant(litellm_params: dict[str, Any] | None) -> str:
    """Who asks: the LiteLLM key the proxy authenticated (hashed again here), or "" outside the proxy.

    A CLI process serves one tenant for life, and a conversation is only ever continued for the
    tenant that started it. The proxy passes the key's hash in ``metadata`` (chat completions)
    or ``litellm_metadata`` (``/v1/messages``, ``/v1/responses``). A request that came through
    the proxy without one fails closed: it is a tenant of its own, which no other request
    shares, so it never takes a process or a conversation of anyone else's. Only a direct
    library call (no proxy request at all) is the shared tenant "".
    """
    params = litellm_params or {}
    for field in ("metadata", "litellm_metadata"):
        metadata = params.get(field)
        if not isinstance(metadata, dict):
            continue
        key = metadata.get("user_api_key_hash") or metadata.get("user_api_key")
        if isinstance(key, str) and key:
            return hashlib.sha256(key.encode()).hexdigest()[:32]
    if params.get("proxy_server_request"):
        logger.warning("a proxy request carried no key hash: it is served as a tenant of its own")
        return "unidentified-" + uuid.uuid4().hex
    return ""


def _tool_call_chunk(piece: ToolCallDelta) -> Any:
    """A tool-call piece as LiteLLM's streaming chunk carries it (OpenAI's ``delta.tool_calls[i]``)."""
    name = client_name(piece.name) if piece.name is not None else None
    return {
        "id": piece.id,
        "type": "function",
        "function": {"name": name, "arguments": piece.arguments},
        "index": piece.index,
    }


def _timeout_seconds(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, int | float):
        return float(timeout) if timeout > 0 else None
    read = getattr(timeout, "read", None)
    if isinstance(read, int | float) and read > 0:
        return float(read)
    return None


def _fill_response(response: ModelResponse, text: str, outcome: Outcome, model: str) -> ModelResponse:
    choice = response.choices[0]
    choice.message.content = text if text or not outcome.tool_calls else None
    if outcome.tool_calls:
        choice.message.tool_calls = [
            ChatCompletionMessageToolCall(
                id=call.id, type="function", function=Function(name=client_name(call.name), arguments=call.arguments)
            )
            for call in outcome.tool_calls
        ]
    if outcome.reasoning:
        choice.message.reasoning_content = outcome.reasoning
    choice.finish_reason = cast(Any, outcome.finish_reason)
    response.model = outcome.model or model
    response.created = int(time.time())
    usage = outcome.usage
    response.usage = Usage(  # type: ignore[attr-defined]
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details={"cached_tokens": usage.cache_read_input_tokens},
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        completion_tokens_details={"reasoning_tokens": usage.reasoning_tokens},
    )
    attach_to_response(response, outcome.cost_usd)
    return response


# How long interpreter exit waits for the sync API's processes to be stopped and reaped.
EXIT_CLOSE_TIMEOUT = 15.0


def _close_at_exit(ref: weakref.ReferenceType[ClaudeCodeProvider]) -> None:
    """A script's exit: close the sync API's engine, then stop its loop, before anything else.

    The loop thread is a daemon, so it keeps running while atexit handlers do and is frozen
    wherever it is when the interpreter finalizes. Left to run, it can start a spare (a new
    workspace directory) after the engine's last-resort kill has passed, and that workspace
    outlives the script. Stopping the loop first leaves it nothing to start.
    """
    provider = ref()
    if provider is None or provider._loop_thread is None or not provider._loop_thread.loop.is_running():
        return
    with contextlib.suppress(Exception):
        provider.close(timeout=EXIT_CLOSE_TIMEOUT)
    provider._loop_thread.stop(timeout=EXIT_CLOSE_TIMEOUT)


def register(provider: str = "claude-code", handler: ClaudeCodeProvider | None = None) -> ClaudeCodeProvider:
    """Make ``litellm.completion(model="<provider>/sonnet", ...)`` use Claude Code; return the handler."""
    from . import handler as default_handler

    chosen = handler or default_handler
    entries = [entry for entry in litellm.custom_provider_map if entry.get("provider") != provider]
    entries.append({"provider": provider, "custom_handler": chosen})
    litellm.custom_provider_map = entries
    from litellm.utils import custom_llm_setup

    custom_llm_setup()  # type: ignore[no-untyped-call]
    return chosen
