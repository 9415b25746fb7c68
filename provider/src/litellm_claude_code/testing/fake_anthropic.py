"""A protocol-faithful fake of the Anthropic Messages API.

Why this exists: the provider runs the real Claude Code CLI, and the CLI talks to
``$ANTHROPIC_BASE_URL/v1/messages``.  Tests must never reach the real API (cost,
flakiness, secrets), yet they should exercise the real CLI binary end to end.  This
server speaks enough of the Messages API (SSE streaming event order, error JSON,
headers) that the CLI accepts it, and it lets a test *script* each reply: slow
responses, HTTP errors, in-band stream errors, dropped connections, tool calls.

Operators use the same server to smoke-test a deployment without spending tokens::

    python -m litellm_claude_code.testing.fake_anthropic --host 127.0.0.1 --port 8787

How a request picks its behaviour (first match wins):

1. a directive ``[[fake:{...json...}]]`` in the text of the last user message
   (the last occurrence wins; see :func:`directive`);
2. the next scenario of the FIFO queue (``POST /_fake/scenarios`` or
   :meth:`FakeAnthropicServer.push`);
3. when the last user turn holds ``tool_result`` blocks: a reply quoting them,
   ``Tool results: <tool name>(<tool_use_id>) -> <content>; ...``;
4. the server default (:meth:`FakeAnthropicServer.set_default`).

A scripted ``tool_use`` may name a tool by its own name: when the request offers exactly
one tool whose name ends with ``__<name>`` (the CLI's ``mcp__<server>__`` prefix), the call
names that one, as Claude would.

A request that offers the CLI's ``StructuredOutput`` tool (structured output) and scripts no
``tool_use`` is answered with a call of it whose input is generated from its schema
(:mod:`._structured`); a scripted ``tool_use`` of it gives any other input.

The chosen scenario is layered over the server default, so a default
``token_delay`` also applies to a directive that only sets ``text``.

Prompt caching is simulated (see :mod:`litellm_claude_code.testing._cache`): blocks up to
a ``cache_control`` breakpoint are cached per credential and model, and the usage
reports ``cache_creation_input_tokens`` / ``cache_read_input_tokens`` as the real API
would.  A system text block starting with ``x-anthropic-billing-header:`` (the Claude
Code CLI's per-request billing header) is ignored by the cache, as the real API does,
so it does not break every cache hit.  Turn it off with ``cache=False`` / ``--no-cache``;
a scenario's explicit ``usage`` still overrides the simulated figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from litellm_claude_code.testing._app import _make_app, _url_host, build_app
from litellm_claude_code.testing._cache import (
    DEFAULT_MIN_TOKENS,
    PromptCache,
)
from litellm_claude_code.testing._planner import _merge
from litellm_claude_code.testing._scenario import (
    DEFAULT_PORT,
    DEFAULT_TOKENS,
    DIRECTIVE_PREFIX,
    DIRECTIVE_SUFFIX,
    Scenario,
    ScenarioError,
    directive,
    validate_scenario,
)
from litellm_claude_code.testing._server import FakeAnthropicServer
from litellm_claude_code.testing._state import _State

__all__ = [
    "DIRECTIVE_PREFIX",
    "DIRECTIVE_SUFFIX",
    "FakeAnthropicServer",
    "Scenario",
    "ScenarioError",
    "build_app",
    "directive",
    "main",
    "validate_scenario",
]

# Named, not __name__: run as ``python -m`` this module is ``__main__``, and the handlers log here.
LOG = logging.getLogger("litellm_claude_code.testing.fake_anthropic")

# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m litellm_claude_code.testing.fake_anthropic",
        description="Fake Anthropic Messages API for tests and token-free smoke tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help="default reply length")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument(
        "--accept-key",
        action="append",
        default=[],
        help="accept only these keys (repeatable; also FAKE_ANTHROPIC_ACCEPT_KEYS=a,b)",
    )
    parser.add_argument(
        "--default-scenario",
        default=None,
        help="JSON scenario layered into the default",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="do not simulate prompt caching (all input reported as uncached)",
    )
    parser.add_argument(
        "--cache-min-tokens",
        type=int,
        default=DEFAULT_MIN_TOKENS,
        help="shortest cacheable prefix in (estimated) tokens",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser.parse_args(argv)


async def _serve(state: _State, host: str, port: int) -> None:
    runner = web.AppRunner(_make_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    print(
        f"fake-anthropic listening on http://{_url_host(host)}:{bound}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (
            NotImplementedError,
            RuntimeError,
        ):  # pragma: no cover - non-main thread
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s fake-anthropic %(message)s",
        force=True,  # an import may have configured logging already; --quiet must still hold
    )
    LOG.setLevel(logging.WARNING if args.quiet else logging.INFO)
    keys = list(args.accept_key)
    env_keys = os.environ.get("FAKE_ANTHROPIC_ACCEPT_KEYS", "")
    keys += [k.strip() for k in env_keys.split(",") if k.strip()]
    default: Scenario = {"tokens": args.tokens, "token_delay": args.token_delay}
    try:
        if args.default_scenario:
            default = _merge(default, validate_scenario(json.loads(args.default_scenario)))
        state = _State(default, keys or None)
    except (ValueError, ScenarioError) as exc:
        print(f"fake-anthropic: bad --default-scenario: {exc}", file=sys.stderr)
        return 2
    if args.cache_min_tokens < 1:
        print("fake-anthropic: --cache-min-tokens must be at least 1", file=sys.stderr)
        return 2
    state.cache = PromptCache(args.cache_min_tokens) if args.cache else None
    try:
        asyncio.run(_serve(state, args.host, args.port))
    except OSError as exc:
        print(
            f"fake-anthropic: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
