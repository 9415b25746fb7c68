"""The master key rule: ``sk-`` and at least 32 characters, and an error that says what to change
without ever quoting the key."""

from __future__ import annotations

import secrets

import pytest
from litellm_claude_code._master_key import (
    MASTER_KEY_MIN_LENGTH,
    MASTER_KEY_PREFIX,
    check_master_key,
    master_key_problems,
)


def test_the_rule() -> None:
    assert MASTER_KEY_PREFIX == "sk-"
    assert MASTER_KEY_MIN_LENGTH == 32


@pytest.mark.parametrize(
    "key",
    [
        "sk-" + "a" * 29,  # exactly 32
        "sk-" + secrets.token_urlsafe(32),  # what `make secrets` writes
        "sk-master-" + "0123456789abcdef" * 2,
    ],
)
def test_a_good_key_passes(key: str) -> None:
    check_master_key(key)
    assert master_key_problems(key) == []


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("sk-" + "a" * 28, "it has 31 characters, fewer than 32"),
        ("master-" + "a" * 40, "does not start with 'sk-'"),
        ("SK-" + "a" * 40, "does not start with 'sk-'"),
        ("a" * 10, "it has 10 characters"),
        ("", "it is empty"),
        ("sk-" + "a" * 20 + " " + "b" * 20, "whitespace"),
        ("sk-" + "a" * 40 + "\n", "whitespace"),
    ],
)
def test_a_bad_key_is_refused_with_what_to_change(key: str, says: str) -> None:
    with pytest.raises(ValueError) as error:
        check_master_key(key)
    message = str(error.value)
    assert says in message, message
    assert message.startswith("LITELLM_MASTER_KEY is not a usable master key: ")
    # What to do instead: the rule and a command that makes a good key.
    assert "'sk-' followed by at least 29 random characters" in message
    assert "secrets.token_urlsafe(32)" in message and "make secrets" in message
    # Never the key, nor a part of it longer than the prefix.
    if len(key) > 3:
        assert key.strip()[3:] not in message


def test_an_unprefixed_short_key_names_both_problems() -> None:
    problems = master_key_problems("short")
    assert len(problems) == 2, problems
    assert "does not start with 'sk-'" in problems[0] and "it has 5 characters" in problems[1]


def test_the_message_names_the_setting_it_is_given() -> None:
    with pytest.raises(ValueError, match=r"^general_settings\.master_key is not a usable master key"):
        check_master_key("sk-short", name="general_settings.master_key")
