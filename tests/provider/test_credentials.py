"""Claude credentials, resolved at request time (``credentials.resolve_credential``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litellm_claude_code._credentials import CREDENTIAL_VARIABLES, Credential, resolve_credential
from litellm_claude_code._errors import ConfigurationError

OAUTH = "sk-ant-oat01-oauth-token-value"
API_KEY = "sk-ant-api03-api-key-value"
AUTH_TOKEN = "gateway-bearer-token-value"


def refused(env: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        resolve_credential(env)
    assert info.value.status_code == 500
    return info.value


def test_the_three_variables_in_order_of_preference() -> None:
    assert CREDENTIAL_VARIABLES == ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def test_oauth_token_wins_over_api_key_and_auth_token() -> None:
    env = {"CLAUDE_CODE_OAUTH_TOKEN": OAUTH, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_AUTH_TOKEN": AUTH_TOKEN}
    credential = resolve_credential(env)
    assert (credential.variable, credential.value, credential.source) == (
        "CLAUDE_CODE_OAUTH_TOKEN",
        OAUTH,
        "environment",
    )


def test_api_key_wins_over_auth_token() -> None:
    credential = resolve_credential({"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_AUTH_TOKEN": AUTH_TOKEN})
    assert (credential.variable, credential.value) == ("ANTHROPIC_API_KEY", API_KEY)


def test_auth_token_alone() -> None:
    credential = resolve_credential({"ANTHROPIC_AUTH_TOKEN": f"  {AUTH_TOKEN}\n"})
    assert (credential.variable, credential.value) == ("ANTHROPIC_AUTH_TOKEN", AUTH_TOKEN)  # trimmed


def test_blank_variable_is_not_a_credential() -> None:
    credential = resolve_credential({"CLAUDE_CODE_OAUTH_TOKEN": "  ", "ANTHROPIC_API_KEY": API_KEY})
    assert credential.variable == "ANTHROPIC_API_KEY"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    assert resolve_credential().value == API_KEY


# --------------------------------------------------------------------------- _FILE variants


def test_file_variant_is_read_at_each_call(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OAUTH + "\n")
    env = {"CLAUDE_CODE_OAUTH_TOKEN_FILE": str(token_file)}
    first = resolve_credential(env)
    assert (first.variable, first.value, first.source) == ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH, f"file {token_file}")
    token_file.write_text("sk-ant-oat01-rotated-token\n")  # rotated: no restart needed
    assert resolve_credential(env).value == "sk-ant-oat01-rotated-token"


def test_variable_wins_over_its_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file")
    credential = resolve_credential({"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_API_KEY_FILE": str(token_file)})
    assert credential.value == API_KEY


def test_preferred_kind_from_a_file_wins_over_a_later_kind_in_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "oauth"
    token_file.write_text(OAUTH)
    credential = resolve_credential({"CLAUDE_CODE_OAUTH_TOKEN_FILE": str(token_file), "ANTHROPIC_API_KEY": API_KEY})
    assert credential.variable == "CLAUDE_CODE_OAUTH_TOKEN"


def test_empty_file_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    token_file = tmp_path / "empty"
    token_file.write_text("\n  \n")
    error = refused({"ANTHROPIC_API_KEY_FILE": str(token_file), "ANTHROPIC_AUTH_TOKEN": AUTH_TOKEN})
    assert "ANTHROPIC_API_KEY_FILE" in str(error) and str(token_file) in str(error) and "empty" in str(error)


def test_unreadable_file_is_an_error_that_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    error = refused({"CLAUDE_CODE_OAUTH_TOKEN_FILE": str(missing)})
    message = str(error)
    assert "CLAUDE_CODE_OAUTH_TOKEN_FILE" in message and str(missing) in message
    assert "No such file or directory" in message and "service user" in message


# --------------------------------------------------------------------------- systemd credentials


def test_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "anthropic_api_key").write_text(API_KEY + "\n")
    credential = resolve_credential({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert (credential.variable, credential.value) == ("ANTHROPIC_API_KEY", API_KEY)
    assert credential.source == "systemd credential anthropic_api_key"


def test_systemd_credential_of_a_preferred_kind_wins(tmp_path: Path) -> None:
    (tmp_path / "claude_code_oauth_token").write_text(OAUTH)
    credential = resolve_credential({"CREDENTIALS_DIRECTORY": str(tmp_path), "ANTHROPIC_API_KEY": API_KEY})
    assert credential.variable == "CLAUDE_CODE_OAUTH_TOKEN"


def test_variable_wins_over_the_systemd_credential_of_the_same_kind(tmp_path: Path) -> None:
    (tmp_path / "anthropic_api_key").write_text("from-systemd")
    credential = resolve_credential({"CREDENTIALS_DIRECTORY": str(tmp_path), "ANTHROPIC_API_KEY": API_KEY})
    assert credential.value == API_KEY


def test_empty_systemd_credential_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "claude_code_oauth_token").write_text("")
    (tmp_path / "anthropic_auth_token").write_text(AUTH_TOKEN)
    credential = resolve_credential({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert credential.variable == "ANTHROPIC_AUTH_TOKEN"


# --------------------------------------------------------------------------- nothing set, fingerprints


def test_nothing_set_names_all_three_variables(tmp_path: Path) -> None:
    message = str(refused({"CREDENTIALS_DIRECTORY": str(tmp_path), "PATH": "/usr/bin"}))
    for variable in CREDENTIAL_VARIABLES:
        assert variable in message
    assert "_FILE" in message and "claude setup-token" in message


def test_fingerprint_tells_credentials_apart_without_showing_them() -> None:
    one = Credential("ANTHROPIC_API_KEY", API_KEY, "environment")
    same = Credential("ANTHROPIC_API_KEY", API_KEY, "file /somewhere")
    other = Credential("ANTHROPIC_API_KEY", API_KEY + "x", "environment")
    assert re.fullmatch(r"[0-9a-f]{12}", one.fingerprint)
    assert one.fingerprint == same.fingerprint
    assert one.fingerprint != other.fingerprint
    assert one.fingerprint not in API_KEY
    assert API_KEY not in repr(one)  # the value stays out of reprs (and so out of tracebacks)


@pytest.mark.parametrize("variable", CREDENTIAL_VARIABLES)
def test_a_token_put_in_the_file_variable_is_not_echoed(variable: str) -> None:
    # An easy slip: CLAUDE_CODE_OAUTH_TOKEN_FILE=<the token>. The error must not repeat the token.
    message = str(refused({f"{variable}_FILE": OAUTH}))
    assert OAUTH not in message
    assert f"{variable}_FILE" in message and "not a path" in message


def test_a_relative_path_that_exists_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("token.txt").write_text("")
    assert "'token.txt', which is empty" in str(refused({"ANTHROPIC_API_KEY_FILE": "token.txt"}))
