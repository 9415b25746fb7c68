"""Every OpenAI chat-completions parameter, and what this provider does with it.

The table is the single place that says, per parameter, whether it is honoured (and how),
emulated, handled by the tools support, or not available through Claude Code. A parameter
that is not available follows LiteLLM's ``drop_params`` convention: refused with a 400 that
names it, unless the deployment (``litellm_settings: drop_params: true``) or the request
(``drop_params: true``) asks for such parameters to be dropped. A few parameters are refused
whatever ``drop_params`` says, because dropping them would change the shape of the answer
the client parses. ``docs/configuration.md`` shows the table (:func:`parameters_table`; a
test keeps the two identical).
"""

from __future__ import annotations

import logging
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
    UNAVAILABLE = "not available"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One request parameter: its kind, and the sentence the docs show."""

    name: str
    kind: Kind
    how: str


_NOT_AVAILABLE = "the Claude Code CLI has no option for it"

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
        "`auto` honoured; `none` offers no tools; `required` or a named function refused with 400 (the CLI sets "
        "Claude's `tool_choice` itself)",
    ),
    Parameter("parallel_tool_calls", Kind.TOOLS, "`true` honoured (several calls per turn); `false` refused with 400"),
    Parameter("functions", Kind.TOOLS, "the deprecated form of `tools`: refused with 400 saying to send `tools`"),
    Parameter(
        "function_call", Kind.TOOLS, "the deprecated form of `tool_choice`: refused with 400 saying to send `tools`"
    ),
    Parameter("temperature", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("top_p", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("presence_penalty", Kind.UNAVAILABLE, "Claude has no such parameter"),
    Parameter("frequency_penalty", Kind.UNAVAILABLE, "Claude has no such parameter"),
    Parameter("logit_bias", Kind.UNAVAILABLE, "Claude has no such parameter"),
    Parameter("logprobs", Kind.UNAVAILABLE, "Claude returns no log probabilities"),
    Parameter("top_logprobs", Kind.UNAVAILABLE, "Claude returns no log probabilities"),
    Parameter("seed", Kind.UNAVAILABLE, "Claude has no such parameter"),
    Parameter("modalities", Kind.UNAVAILABLE, 'text is the only output; `["text"]` is accepted as is'),
    Parameter("audio", Kind.UNAVAILABLE, "Claude has no audio output"),
    Parameter("prediction", Kind.UNAVAILABLE, "Claude has no predicted outputs"),
    Parameter("service_tier", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("store", Kind.UNAVAILABLE, "nothing is stored on OpenAI's side; `false` is accepted as is"),
    Parameter("web_search_options", Kind.UNAVAILABLE, "the CLI runs with no tools of its own (no web search)"),
    Parameter("safety_identifier", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("prompt_cache_key", Kind.UNAVAILABLE, "Claude's prompt cache is keyed on the prompt itself"),
    Parameter("prompt_cache_retention", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("verbosity", Kind.UNAVAILABLE, _NOT_AVAILABLE),
    Parameter("extra_headers", Kind.UNAVAILABLE, "the CLI makes its own upstream requests"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}

# Values that ask for nothing the provider would have to drop.
_HARMLESS: dict[str, tuple[Any, ...]] = {
    "modalities": (["text"],),
    "store": (False,),
    "logprobs": (False,),
    "n": (1,),
}

# Keys LiteLLM itself puts among a custom provider's optional parameters.
_LITELLM_KEYS = frozenset({"max_retries", "drop_params", "allowed_openai_params"})


def drop_requested(litellm_params: dict[str, Any] | None) -> bool:
    """LiteLLM's convention: the deployment's ``drop_params`` (``litellm.drop_params``) or the request's."""
    return litellm.drop_params is True or (litellm_params or {}).get("drop_params") is True


def screen(params: dict[str, Any], *, drop: bool) -> list[str]:
    """Refuse what cannot be served; return the names dropped (``drop``); leave the rest to the caller.

    Unknown parameters are treated as not available: an unknown key is never silently ignored.
    """
    dropped: list[str] = []
    for name, value in params.items():
        if value is None or name in _LITELLM_KEYS:
            continue
        entry = BY_NAME.get(name)
        if entry is not None and entry.kind in (Kind.HONOURED, Kind.EMULATED, Kind.TOOLS):
            continue
        if value in _HARMLESS.get(name, ()):
            continue
        if entry is not None and entry.kind is Kind.REFUSED:
            raise BadRequestError(
                f"{name}: not available through Claude Code: {entry.how}. Remove it from the request."
            )
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
    return dropped


def parameters_table() -> str:
    """The Markdown table of every parameter, as ``docs/configuration.md`` shows it."""
    rows = ["| parameter | what happens | how |", "| --- | --- | --- |"]
    for p in PARAMETERS:
        rows.append(f"| `{p.name}` | {p.kind.value} | {p.how} |")
    return "\n".join(rows)
