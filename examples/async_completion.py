"""Several chat completions at once through Claude Code, with ``litellm.acompletion``.

Run it with a Claude credential in the environment, as a deployment would set it::

    export CLAUDE_CODE_OAUTH_TOKEN=...     # from `claude setup-token`; or ANTHROPIC_API_KEY=...
    export LITELLM_LOCAL_MODEL_COST_MAP=True
    python examples/async_completion.py "First question" "Second question" ...

Each argument is one request, and all of them run concurrently (each in its own Claude
Code CLI process, at most ``LITELLM_CLAUDE_CODE_MAX_CONCURRENCY`` at a time; the others
queue). ``ANTHROPIC_BASE_URL`` is optional. Answers are printed in the order asked.
"""

from __future__ import annotations

import asyncio
import sys
import time

import litellm
import litellm_claude_code
from litellm_claude_code import ClaudeCodeError, resolve_credential

DEFAULT_PROMPTS = [
    "Name a prime number larger than 100.",
    "Name a river in Africa.",
    "Name a programming language older than C.",
]


async def ask(index: int, prompt: str) -> str:
    response = await litellm.acompletion(
        model="claude-code/sonnet",
        messages=[{"role": "user", "content": prompt}],
    )
    usage = response.usage
    answer = response.choices[0].message.content
    return (
        f"[{index}] {answer}\n"
        f"[{index}] usage: prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens}"
    )


async def run(prompts: list[str]) -> None:
    started = time.monotonic()
    results = await asyncio.gather(*(ask(i, prompt) for i, prompt in enumerate(prompts)))
    for line in results:
        print(line)
    print(f"{len(prompts)} requests in {time.monotonic() - started:.1f} s")


def main(argv: list[str]) -> int:
    try:
        resolve_credential()  # the same lookup the provider makes at each request
    except ClaudeCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    litellm_claude_code.register()
    asyncio.run(run(argv or DEFAULT_PROMPTS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
