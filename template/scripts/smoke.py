"""Smoke test: one streaming request through a throwaway proxy of this gateway.

    make smoke                 # or: .venv/bin/python scripts/smoke.py [--model ALIAS] [--fake]

Starts `litellm --config config/litellm.yaml` on a free local port with a throwaway master
key and sends one streaming chat completion with the official `openai` client, printing the
tokens as they arrive. Upstream:

- real Claude when the token variable (TOKEN_ENV below) is set, in the environment or in
  secrets.env, and --fake is not given: this spends a few tokens;
- otherwise the fake Anthropic upstream bundled with the provider
  (`python -m litellm_claude_code.testing.fake_anthropic`): no token, no cost.

It says which one it used. Exit status 0 means the gateway answered a streaming request.
The proxy's and the fake's own output goes to a temporary log, printed only when something
fails (or as it comes with --verbose).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import project  # scripts/project.py: the answers and config/provider.env

ROOT = project.ROOT
PROJECT = project.load()
TOKEN_ENV = PROJECT.token_env


def served_models() -> list[str]:
    """The model names config/litellm.yaml serves."""
    import yaml  # installed with litellm

    config = yaml.safe_load((ROOT / "config" / "litellm.yaml").read_text())
    return [entry["model_name"] for entry in config["model_list"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token_from_secrets_file() -> str:
    path = ROOT / "secrets.env"
    if not path.exists():
        return ""
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == TOKEN_ENV:
            return value.strip().strip("'\"")
    return ""


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"smoke: {proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"smoke: {url} did not answer within {timeout:.0f} s")


def start(
    stack: ExitStack, args: list[str], env: dict[str, str], log: Path | None
) -> subprocess.Popen[bytes]:
    """Start a background process, stopped when the stack closes; its output goes to `log`."""
    out = stack.enter_context(log.open("wb")) if log else None
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=PROJECT.default_model, choices=served_models())
    parser.add_argument("--fake", action="store_true", help="always use the fake upstream")
    parser.add_argument("--prompt", default="Say hello in five words.")
    parser.add_argument(
        "--verbose", action="store_true", help="show the proxy's output instead of logging it"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smoke-") as logdir:
        logs = [Path(logdir) / "fake-upstream.log", Path(logdir) / "proxy.log"]
        try:
            return run(args, None if args.verbose else logs)
        except BaseException:
            for log in logs:
                if log.exists() and log.stat().st_size:
                    tail = log.read_text(errors="replace").splitlines()[-40:]
                    print(f"\nsmoke: last lines of {log.name}:", *tail, sep="\n", file=sys.stderr)
            raise


def run(args: argparse.Namespace, logs: list[Path] | None) -> int:
    """Start the upstream (unless a token is set) and the proxy; stream one answer."""
    from openai import OpenAI  # the venv has it (requirements-dev.txt)

    bindir = Path(sys.executable).parent
    token = "" if args.fake else (os.environ.get(TOKEN_ENV) or token_from_secrets_file())
    master_key = "sk-smoke-" + secrets.token_urlsafe(32)  # sk- and at least 32 characters
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "LITELLM_MASTER_KEY"))
    }
    # The provider's settings as the gateway runs them (the environment wins, as under make);
    # against the fake, a cloud project's settings without the cloud (the fake is Anthropic's API).
    settings = project.provider_env() if token else project.fake_provider_env()
    for name, value in settings.items():
        env.setdefault(name, value)
    env["LITELLM_MASTER_KEY"] = master_key
    prompt = args.prompt
    with ExitStack() as stack:
        if token:
            env[TOKEN_ENV] = token
            where = {"bedrock": "Amazon Bedrock", "vertex": "Google Vertex AI"}.get(
                PROJECT.auth_method, "the real Claude API"
            )
            print(f"smoke: upstream is {where} ({TOKEN_ENV} is set)", flush=True)
        else:
            fake_port = free_port()
            fake = start(
                stack,
                [
                    str(bindir / "python"),
                    "-m",
                    "litellm_claude_code.testing.fake_anthropic",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(fake_port),
                    "--quiet",
                ],
                env,
                logs[0] if logs else None,
            )
            wait_http(f"http://127.0.0.1:{fake_port}/_fake/health", 30, fake)
            env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{fake_port}"
            env[PROJECT.fake_token_env] = "fake-token-for-smoke-test"
            prompt += ' [[fake:{"token_delay": 0.05, "tokens": 20}]]'
            print(
                f"smoke: upstream is the bundled fake Anthropic API ({TOKEN_ENV} is not set):"
                " no Claude call, no cost",
                flush=True,
            )
        port = free_port()
        proxy = start(
            stack,
            [
                str(bindir / "litellm"),
                "--config",
                "config/litellm.yaml",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            logs[1] if logs else None,
        )
        wait_http(f"http://127.0.0.1:{port}/health/readiness", 120, proxy)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=master_key, max_retries=0)
        started = time.monotonic()
        first: float | None = None
        chunks = 0
        print(f"smoke: {args.model} > ", end="", flush=True)
        stream = client.chat.completions.create(
            model=args.model,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    first = first if first is not None else time.monotonic() - started
                    chunks += 1
                    print(choice.delta.content, end="", flush=True)
        total = time.monotonic() - started
        print()
        if not chunks:
            raise SystemExit("smoke: FAILED: no content streamed")
        print(
            f"smoke: OK: {chunks} chunks, first after {first or 0:.2f} s, last after {total:.2f} s"
            + (f", usage {usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
