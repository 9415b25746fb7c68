"""``reasoning_effort`` and LiteLLM's ``thinking`` as what the Claude Code CLI can bind late.

The CLI decides the ``thinking`` field of its upstream request from the model (measured with
CLI 2.1.332, pinned in ``tests/provider/test_compat_cli.py``):

- models with adaptive thinking (the current ``sonnet``, ``opus``, ``haiku``) always get
  ``thinking: {type: adaptive}``, and their depth follows ``output_config.effort``, which the
  control request ``apply_flag_settings`` with ``effortLevel`` sets on a running process
  (``null``: the CLI's default, ``medium``). Nothing the CLI offers turns their thinking off.
- models with budgeted thinking (older full ids such as ``claude-sonnet-4-5-20250929``) get
  ``thinking: {type: enabled, budget_tokens: N}``; the control request
  ``set_max_thinking_tokens`` sets N on a running process (``0``: thinking disabled, ``null``:
  the CLI's default, the whole output limit).

A request binds both, so one process serves either kind of model. The budgets per level are
LiteLLM's own for Anthropic (``DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import BadRequestError

# reasoning_effort -> (the CLI's effort level, thinking budget in tokens)
LEVELS: dict[str, tuple[str, int]] = {
    "none": ("low", 0),
    "minimal": ("low", 128),
    "low": ("low", 1024),
    "medium": ("medium", 2048),
    "high": ("high", 4096),
    "xhigh": ("xhigh", 8192),
    "max": ("max", 16384),
}


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What a request asks of Claude's thinking; ``None`` fields leave the CLI's default."""

    effort: str | None = None
    budget: int | None = None


def reasoning_of(params: dict[str, Any]) -> Reasoning:
    """Read ``reasoning_effort`` and ``thinking``; a value Claude Code cannot take is a 400 naming it."""
    effort = params.get("reasoning_effort")
    thinking = params.get("thinking")
    if effort is not None and thinking is not None:
        raise BadRequestError("reasoning_effort and thinking: send one of the two, not both.")
    if effort is not None:
        if not isinstance(effort, str) or effort not in LEVELS:
            raise BadRequestError(f"reasoning_effort must be one of {', '.join(LEVELS)}; got {effort!r}.")
        level, budget = LEVELS[effort]
        return Reasoning(level, budget)
    if thinking is None:
        return Reasoning()
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise BadRequestError("thinking.budget_tokens must be a positive integer.")
        return Reasoning(None, budget)
    if kind == "disabled":
        return Reasoning("low", 0)
    if kind == "adaptive":
        return Reasoning()
    raise BadRequestError('thinking must be {"type": "enabled", "budget_tokens": N}, {"type": "disabled"} or adaptive.')


def reasoning_table() -> str:
    """The budgets per level, as ``docs/configuration.md`` shows them."""
    rows = [
        "| `reasoning_effort` | effort (adaptive models) | thinking budget (budgeted models) |",
        "| --- | --- | --- |",
    ]
    for name, (level, budget) in LEVELS.items():
        rows.append(f"| `{name}` | `{level}` | {'off' if budget == 0 else f'{budget} tokens'} |")
    return "\n".join(rows)


async def bind(control: Any, before: Reasoning, wanted: Reasoning) -> None:
    """Bring a running process from ``before`` to ``wanted`` over its control channel."""
    if wanted.effort != before.effort:
        await control({"subtype": "apply_flag_settings", "settings": {"effortLevel": wanted.effort}})
    if wanted.budget != before.budget:
        await control({"subtype": "set_max_thinking_tokens", "max_thinking_tokens": wanted.budget})


def reasoning_chunk(text: str, *, model: str, response_id: str, created: int) -> Any:
    """A streamed piece of thinking as LiteLLM expects it from a custom provider.

    A ``GenericStreamingChunk`` has no reasoning field (its ``provider_specific_fields`` end up
    beside the delta, not in it); a ``ModelResponseStream`` chunk is passed through as is, so
    the client gets ``delta.reasoning_content``. Passed through, it carries only what is set
    here: LiteLLM builds the final response of a stream (``/v1/responses``, logging, usage)
    from its first chunk's ``model``, and a stream that starts with thinking ended in
    ``response.failed`` without one. ``response_id`` and ``created`` are the stream's own, the
    same for each piece of thinking; LiteLLM takes the id of a chunk passed through for the
    chunks it builds after it, so an answer that starts with thinking has one id throughout.
    """
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    return ModelResponseStream(
        id=response_id,
        created=created,
        model=model,
        choices=[StreamingChoices(index=0, delta=Delta(reasoning_content=text))],
    )
