"""Every OpenAI chat-completions parameter, and what this provider does with it.

The table is the single place that says, per parameter, whether it is honoured (and how),
emulated, handled by the tools support, accepted but not applied, or refused. Agents send
sampling parameters by default (aider sends ``temperature: 0`` with every request), and not
applying them leaves the answer's shape unchanged: those are served, and the names of what was
not applied are reported in the ``x-claude-code-not-applied`` response header
(:mod:`.proxy_hooks`) and the request's log line (``not_applied=``). A parameter whose absence
would mislead the client (log probabilities it would read, audio it would play, tokens it
banned) follows LiteLLM's ``drop_params`` convention instead: refused with a 400 that names it
and says why, unless the deployment (``litellm_settings: drop_params: true``) or the request
(``drop_params: true``) asks for such parameters to be dropped; then it is reported as not
applied. ``docs/configuration.md`` shows the table (:func:`parameters_table`; a test keeps the
two identical).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import litellm

from ._errors import BadRequestError

logger = logging.getLogger("litellm_claude_code")


class Kind(StrEnum):
    HONOURED = "honoured"
    EMULATED = "emulated"
    TOOLS = "see tools"
    NOT_APPLIED = "accepted, not applied"
    UNAVAILABLE = "refused unless dropped"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One request parameter: its kind, and the sentence the docs show."""

    name: str
    kind: Kind
    how: str


_SAMPLING = "the Claude Code CLI passes no sampling parameters: Claude samples with its own defaults"

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("model", Kind.HONOURED, "the Claude model (`sonnet`, `opus`, `haiku` or a full id), bound late"),
    Parameter("messages", Kind.HONOURED, "written as real turns of the conversation (see architecture)"),
    Parameter("stream", Kind.HONOURED, "tokens as Claude sends them"),
    Parameter("stream_options", Kind.HONOURED, "`include_usage`: a final chunk with usage (added by LiteLLM)"),
    Parameter("max_tokens", Kind.HONOURED, "the output limit (`CLAUDE_CODE_MAX_OUTPUT_TOKENS`), bound late"),
    Parameter("max_completion_tokens", Kind.HONOURED, "as `max_tokens` (wins when both are sent)"),
    Parameter("n", Kind.HONOURED, "1 only; any other value is refused with 400"),
    Parameter(
        "stop",
        Kind.EMULATED,
        "the answer is cut before the first stop string, ends with `finish_reason: stop`, and the CLI's turn "
        "is interrupted so no more tokens are spent",
    ),
    Parameter(
        "reasoning_effort",
        Kind.HONOURED,
        "extended thinking: the effort level, and a thinking budget on models with budgeted thinking "
        "(see reasoning); the thinking arrives as `reasoning_content`",
    ),
    Parameter(
        "thinking",
        Kind.HONOURED,
        "LiteLLM's Anthropic form: `enabled` with `budget_tokens`, or `disabled` (see reasoning)",
    ),
    Parameter("timeout", Kind.HONOURED, "caps the request's timeout (`REQUEST_TIMEOUT`) when smaller"),
    Parameter("user", Kind.HONOURED, "used by LiteLLM (end-user tracking); not sent to Claude"),
    Parameter("metadata", Kind.HONOURED, "used by LiteLLM (logging, callbacks); not sent to Claude"),
    Parameter(
        "response_format",
        Kind.HONOURED,
        "`json_schema` and `json_object`: Claude answers through the CLI's structured-output tool, the content "
        "is its JSON, checked against the schema (502 if it does not match, or cannot be checked within 1 s); "
        "`text` as without; with `tools`, or a schema larger than `MAX_RESPONSE_SCHEMA_BYTES`, refused with 400 "
        "(see structured output)",
    ),
    Parameter(
        "tools",
        Kind.TOOLS,
        "type `function`: Claude is offered exactly these tools (names, descriptions, schemas); its calls come "
        "back as `tool_calls`, never run on the gateway; more than `MAX_TOOLS` tools, or a schema larger than "
        "`MAX_TOOL_SCHEMA_BYTES`, refused with 400 (see client tools)",
    ),
    Parameter(
        "tool_choice",
        Kind.TOOLS,
        "`auto` honoured; `none` offers no tools; `required` (Anthropic's `any`) and a named function (Anthropic's "
        "`tool`) emulated: a named function is the only tool Claude is offered, a turn that ends without a call is "
        "asked once more for one in the same process, then 502; text Claude writes beside the call is held back "
        "(Anthropic's forced `tool_choice` writes none)",
    ),
    Parameter(
        "parallel_tool_calls",
        Kind.TOOLS,
        "`true` honoured (several calls per turn); `false` emulated: the first call is handed back, the others "
        "are kept from the client and cut off the CLI's conversation",
    ),
    Parameter("functions", Kind.TOOLS, "the deprecated form of `tools`: refused with 400 saying to send `tools`"),
    Parameter(
        "function_call", Kind.TOOLS, "the deprecated form of `tool_choice`: refused with 400 saying to send `tools`"
    ),
    Parameter("temperature", Kind.NOT_APPLIED, _SAMPLING),
    Parameter("top_p", Kind.NOT_APPLIED, _SAMPLING),
    Parameter("top_k", Kind.NOT_APPLIED, "Anthropic's sampling parameter (`/v1/messages`); " + _SAMPLING),
    Parameter("presence_penalty", Kind.NOT_APPLIED, "Claude has no such parameter; a sampling hint"),
    Parameter("frequency_penalty", Kind.NOT_APPLIED, "Claude has no such parameter; a sampling hint"),
    Parameter("seed", Kind.NOT_APPLIED, "Claude has no seed; OpenAI's own is best effort, never a guarantee"),
    Parameter(
        "logit_bias",
        Kind.UNAVAILABLE,
        "Claude has no such parameter, and a client that bans or forces tokens relies on it; an empty map passes",
    ),
    Parameter(
        "logprobs", Kind.UNAVAILABLE, "Claude returns no log probabilities, which the client would read; `false` passes"
    ),
    Parameter(
        "top_logprobs", Kind.UNAVAILABLE, "Claude returns no log probabilities, which the client would read; 0 passes"
    ),
    Parameter("modalities", Kind.UNAVAILABLE, 'text is the only output, audio would not come; `["text"]` passes'),
    Parameter("audio", Kind.UNAVAILABLE, "Claude has no audio output, which the client would play"),
    Parameter("prediction", Kind.NOT_APPLIED, "Claude has no predicted outputs; a latency hint, the answer is whole"),
    Parameter("service_tier", Kind.NOT_APPLIED, "Claude Code has one tier; the request is served as usual"),
    Parameter("store", Kind.NOT_APPLIED, "nothing is stored on OpenAI's side; `false` passes unreported"),
    Parameter(
        "web_search_options",
        Kind.UNAVAILABLE,
        "the CLI runs with no tools of its own: the answer would not be searched, and the client would take it as if",
    ),
    Parameter("safety_identifier", Kind.NOT_APPLIED, "OpenAI's abuse tracking; Claude Code has no such field"),
    Parameter("prompt_cache_key", Kind.NOT_APPLIED, "Claude's prompt cache is keyed on the prompt itself"),
    Parameter("prompt_cache_retention", Kind.NOT_APPLIED, "Claude's prompt cache keeps its own lifetime"),
    Parameter("verbosity", Kind.NOT_APPLIED, "a length hint; the CLI has no option for it"),
    Parameter("extra_headers", Kind.NOT_APPLIED, "the CLI makes its own upstream requests"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}

# Values that ask for nothing the provider would have to drop.
_HARMLESS: dict[str, tuple[Any, ...]] = {
    "modalities": (["text"],),
    "store": (False,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "n": (1,),
}

# Keys LiteLLM itself puts among a custom provider's optional parameters.
_LITELLM_KEYS = frozenset({"max_retries", "drop_params", "allowed_openai_params"})


def drop_requested(litellm_params: dict[str, Any] | None) -> bool:
    """LiteLLM's convention: the deployment's ``drop_params`` (``litellm.drop_params``) or the request's."""
    return litellm.drop_params is True or (litellm_params or {}).get("drop_params") is True


def screen(params: dict[str, Any], *, drop: bool) -> list[str]:
    """Refuse what cannot be served; return the names served but not applied, sorted.

    Not applied: the :attr:`Kind.NOT_APPLIED` parameters sent, and (``drop``) those dropped under
    LiteLLM's convention. Unknown parameters are treated as refused unless dropped: an unknown key
    is never silently ignored.
    """
    not_applied: list[str] = []
    dropped: list[str] = []
    for name, value in params.items():
        if value is None or name in _LITELLM_KEYS:
            continue
        entry = BY_NAME.get(name)
        if entry is not None and entry.kind in (Kind.HONOURED, Kind.EMULATED, Kind.TOOLS):
            continue
        if value in _HARMLESS.get(name, ()):
            continue
        if entry is not None and entry.kind is Kind.NOT_APPLIED:
            not_applied.append(name)
            continue
        if drop:
            dropped.append(name)
            continue
        why = entry.how if entry is not None else "this provider does not know it"
        raise BadRequestError(
            f"{name}: not available through Claude Code ({why}). Remove it from the request, or set drop_params: true "
            "(per request, or litellm_settings.drop_params in the proxy config) to have such parameters dropped."
        )
    if dropped:
        logger.info("dropped parameters not available through Claude Code: %s", ", ".join(sorted(dropped)))
    return sorted(not_applied + dropped)


def not_applied_in(body: Mapping[str, Any]) -> list[str]:
    """The parameters of a served request's body that were not applied, sorted (the response header).

    Read from the body the client sent (any route: chat completions, ``/v1/messages``,
    ``/v1/responses`` share these names): a request that was served and carried a parameter
    refused unless dropped had it dropped, by this provider or by LiteLLM.
    """
    names = []
    for name, value in body.items():
        entry = BY_NAME.get(name)
        if entry is None or value is None or entry.kind not in (Kind.NOT_APPLIED, Kind.UNAVAILABLE):
            continue
        if value in _HARMLESS.get(name, ()):
            continue
        names.append(name)
    return sorted(names)


def parameters_table() -> str:
    """The Markdown table of every parameter, as ``docs/configuration.md`` shows it."""
    rows = ["| parameter | what happens | how |", "| --- | --- | --- |"]
    for p in PARAMETERS:
        rows.append(f"| `{p.name}` | {p.kind.value} | {p.how} |")
    return "\n".join(rows)
