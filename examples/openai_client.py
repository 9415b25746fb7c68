"""The official ``openai`` client against a running LiteLLM proxy that serves Claude Code.

Start the proxy first (see ``examples/proxy_config.yaml``), then::

    export OPENAI_BASE_URL=http://127.0.0.1:4000/v1
    export LITELLM_MASTER_KEY=sk-...       # the proxy's master key (or a virtual key)
    python examples/openai_client.py "Why is the sky blue?"

The Claude credential stays with the proxy; this client only needs the proxy's key.
``MODEL`` picks the proxy alias (default ``sonnet``). The reply is streamed to stdout as
it arrives, then the finish reason and the token usage.
"""

from __future__ import annotations

import os
import sys

import openai

DEFAULT_PROMPT = "In one sentence: what does a reverse proxy do?"


def main(argv: list[str]) -> int:
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    api_key = os.environ.get("LITELLM_MASTER_KEY", "").strip()
    missing = [name for name, value in (("OPENAI_BASE_URL", base_url), ("LITELLM_MASTER_KEY", api_key)) if not value]
    if missing:
        print(
            f"error: set {' and '.join(missing)}: the proxy's URL (for example http://127.0.0.1:4000/v1) and its "
            "master key.",
            file=sys.stderr,
        )
        return 2

    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
    prompt = " ".join(argv) or DEFAULT_PROMPT
    try:
        stream = client.chat.completions.create(
            model=os.environ.get("MODEL", "sonnet"),
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
            usage = chunk.usage or usage
    except openai.APIStatusError as exc:
        print(f"\nerror: the proxy answered HTTP {exc.status_code}: {exc.message}", file=sys.stderr)
        return 1
    except openai.APIConnectionError as exc:
        print(f"\nerror: cannot reach the proxy at {base_url}: {exc}", file=sys.stderr)
        return 1
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
