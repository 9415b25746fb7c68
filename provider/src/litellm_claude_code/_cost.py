"""The CLI's own cost figure, handed to LiteLLM so its header, callbacks and spend show it.

LiteLLM prices a response from its model cost map, which has no entry for this provider, so
without this every response cost 0. The Claude Code CLI reports ``total_cost_usd`` in its
result: the API list price of the tokens used. For a subscription token that is what the
request would have cost on the API (an API-equivalent price, not a charge).

LiteLLM takes a provider-reported cost from two places: a plain response's hidden params
(``response_cost``, and the ``llm_provider-x-litellm-response-cost`` header it forwards), and
for a stream, ``usage.cost`` on the chunk that carries usage (its stream builder keeps it).

``total_cost_usd`` counts the whole session of a CLI process, and a warm process answers many
requests: each request's cost is the growth of that counter since the process's last result
(measured: three requests on one warm process reported 0.000802, 0.000842, 0.001646).
"""

from __future__ import annotations

import weakref
from typing import Any

from litellm.types.utils import ModelResponse

_HEADER = "llm_provider-x-litellm-response-cost"

# The last session total each live process reported; gone with the process.
_totals: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()


def request_cost(process: object, session_total: float | None) -> float | None:
    """This request's share of a process's session total (the growth since its last result)."""
    if session_total is None:
        return None
    before = _totals.get(process, 0.0)
    _totals[process] = session_total
    return max(0.0, session_total - before)


def attach_to_response(response: ModelResponse, cost_usd: float | None) -> None:
    if cost_usd is None:
        return
    hidden: dict[str, Any] = response._hidden_params
    hidden["response_cost"] = cost_usd
    headers = hidden.get("additional_headers") or {}
    headers[_HEADER] = cost_usd
    hidden["additional_headers"] = headers
    usage = getattr(response, "usage", None)
    if usage is not None:
        usage.cost = cost_usd


def attach_to_usage(usage: dict[str, Any], cost_usd: float | None) -> dict[str, Any]:
    if cost_usd is not None:
        usage["cost"] = cost_usd
    return usage
