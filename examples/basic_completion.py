"""One chat completion through Claude Code, straight from Python (no proxy).

Run it with a Claude credential in the environment, as a deployment would set it::

    export CLAUDE_CODE_OAUTH_TOKEN=...     # from `claude setup-token`; or ANTHROPIC_API_KEY=...
    export LITELLM_LOCAL_MODEL_COST_MAP=True
    python examples/basic_completion.py "What is the capital of France?"

``ANTHROPIC_BASE_URL`` is optional (another Messages API, such as the fake upstream of
``litellm_claude_code.testing``). Any ``<NAME>_FILE`` variant of a credential works too.
The answer goes to stdout, followed by the finish reason and the token usage.
"""

from __future__ import annotations

import sys

import litellm
import litellm_claude_code
from litellm_claude_code import ClaudeCodeError, resolve_credential

DEFAULT_PROMPT = "In one sentence: what is LiteLLM?"


def main(argv: list[str]) -> int:
    try:
        resolve_credential()  # the same lookup the provider makes at each request
    except ClaudeCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    litellm_claude_code.register()  # "claude-code/<model>" now goes through the Claude Code CLI
    prompt = " ".join(argv) or DEFAULT_PROMPT
    response = litellm.completion(
        model="claude-code/sonnet",
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": prompt},
        ],
    )
    choice = response.choices[0]
    usage = response.usage
    print(choice.message.content)
    print(f"model: {response.model}")
    print(f"finish_reason: {choice.finish_reason}")
    print(
        f"usage: prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens} "
        f"total_tokens={usage.total_tokens}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
