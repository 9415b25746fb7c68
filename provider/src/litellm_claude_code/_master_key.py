"""What a proxy master key must look like, checked once at start-up.

LiteLLM hashes a key before it uses it as ``user_api_key_hash`` (logs, spend records, the
``hashed_api_key`` label of its Prometheus metrics) only when the key starts with ``sk-`` (or is
a JWT). Any other master key would be written there as it is. And a short key can be guessed.
So the master key must start with ``sk-`` and be at least 32 characters long: ``make secrets``
writes such a key (``sk-`` and 43 random URL-safe characters) and the gateway role's preflight
refuses any other.

The error never repeats the key, not even a part of it: only its length and what to change.
"""

from __future__ import annotations

MASTER_KEY_PREFIX = "sk-"
MASTER_KEY_MIN_LENGTH = 32
# How to make a good one, for the error message (the same command `make secrets` runs).
GENERATE_HINT = "python3 -c 'import secrets; print(\"sk-\" + secrets.token_urlsafe(32))'"


def master_key_problems(key: str) -> list[str]:
    """What is wrong with ``key`` as a master key, in words that never quote it (empty: nothing)."""
    if not key:
        return ["it is empty"]
    problems = []
    if not key.startswith(MASTER_KEY_PREFIX):
        problems.append(
            f"it does not start with {MASTER_KEY_PREFIX!r} (LiteLLM hashes only keys with that prefix;"
            " any other master key would appear as it is in its logs and in the hashed_api_key label of its metrics)"
        )
    if len(key) < MASTER_KEY_MIN_LENGTH:
        problems.append(f"it has {len(key)} characters, fewer than {MASTER_KEY_MIN_LENGTH}")
    if key != key.strip() or any(char.isspace() for char in key):
        problems.append("it contains whitespace (a client cannot send that as a Bearer key)")
    return problems


def check_master_key(key: str, name: str = "LITELLM_MASTER_KEY") -> None:
    """Raise ``ValueError`` saying what to change unless ``key`` starts with ``sk-`` and has at
    least 32 characters (and no whitespace). ``name`` is what the message calls the setting."""
    problems = master_key_problems(key)
    if problems:
        raise ValueError(
            f"{name} is not a usable master key: {'; '.join(problems)}. Set it to 'sk-' followed by at least "
            f"{MASTER_KEY_MIN_LENGTH - len(MASTER_KEY_PREFIX)} random characters, e.g. the output of "
            f"{GENERATE_HINT} (`make secrets` in a generated project writes one into secrets.env)."
        )
