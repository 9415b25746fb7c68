"""A streamed chat completion through Claude Code: tokens are printed as they arrive.

Run it with a Claude credential in the environment, as a deployment would set it::

    export CLAUDE_CODE_OAUTH_TOKEN=...     # from `claude setup-token`; or ANTHROPIC_API_KEY=...
    export LITELLM_LOCAL_MODEL_COST_MAP=True
    python examples/streaming.py "Write a haiku about pipes."

``ANTHROPIC_BASE_URL`` is optional (another Messages API, such as the fake upstream of
``litellm_claude_code.testing``). With ``stream_options={"include_usage": True}`` the last
chunk carries the token usage, printed after the text.
"""

from __future__ import annotations

import sys

import litellm
import litellm_claude_code
from litellm_claude_code import ClaudeCodeError, resolve_credential

DEFAULT_PROMPT = "Count from one to ten in words."


def main(argv: list[str]) -> int:
    try:
        resolve_credential()  # the same lookup the provider makes at each request
    except ClaudeCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    litellm_claude_code.register()
    prompt = " ".join(argv) or DEFAULT_PROMPT
    stream = litellm.completion(
        model="claude-code/sonnet",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    finish_reason = None
    usage = None
    for chunk in stream:
        if chunk.choices:
            choice = chunk.choices[0]
            if choice.delta.content:
                print(choice.delta.content, end="", flush=True)
            finish_reason = choice.finish_reason or finish_reason
        usage = getattr(chunk, "usage", None) or usage
    print()
    print(f"finish_reason: {finish_reason}")
    if usage is not None:
        print(
            f"usage: prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens} "
            f"total_tokens={usage.total_tokens}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
