"""Provider settings from ``LITELLM_CLAUDE_CODE_*`` variables, and the table in the docs."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from litellm_claude_code._host import concurrency_for, floor_for, read_host
from litellm_claude_code._settings import PREFIX, Settings, SettingsError, settings_table

REPO = Path(__file__).resolve().parents[2]
CONFIGURATION_DOC = REPO / "docs" / "configuration.md"
TABLE_START = "<!-- settings-table:start -->"
TABLE_END = "<!-- settings-table:end -->"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No provider variable and no state directory hint from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    return home


def test_defaults(clean_environment: Path) -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.default_model == "sonnet"
    found = read_host()
    assert settings.max_concurrency == concurrency_for(found.cpus, found.memory)  # auto (test_host.py)
    assert settings.queue_timeout == 30.0
    assert settings.request_timeout == 600.0
    assert settings.cli_max_retries == 1
    assert settings.api_timeout_ms == 600_000
    assert settings.state_dir == clean_environment / ".local" / "state" / "litellm-claude-code"
    assert settings.cli_path == ""
    assert settings.log_level == "INFO"
    assert settings.warm_enabled is True
    assert settings.warm_max == settings.max_concurrency
    assert settings.warm_floor == min(floor_for(read_host().cpus), settings.warm_max - 1) >= 1
    assert settings.warm_window == 300.0
    assert settings.warm_ready_timeout == 30.0
    assert settings.warm_idle_timeout == 300.0
    assert settings.warm_max_uses == 100
    assert settings.warm_max_age == 900.0
    assert settings.max_tools == 128
    assert settings.max_tool_schema_bytes == 65_536
    assert settings.max_response_schema_bytes == 65_536


def test_every_variable_is_parsed(tmp_path: Path) -> None:
    env = {
        "LITELLM_CLAUDE_CODE_DEFAULT_MODEL": "opus",
        "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "8",
        "LITELLM_CLAUDE_CODE_QUEUE_TIMEOUT": "2.5",
        "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT": "90",
        "LITELLM_CLAUDE_CODE_CLI_MAX_RETRIES": "0",
        "LITELLM_CLAUDE_CODE_API_TIMEOUT_MS": "30000",
        "LITELLM_CLAUDE_CODE_STATE_DIR": str(tmp_path / "state"),
        "LITELLM_CLAUDE_CODE_CLI_PATH": "/opt/claude/bin/claude",
        "LITELLM_CLAUDE_CODE_LOG_LEVEL": "debug",
        "LITELLM_CLAUDE_CODE_WARM_ENABLED": "false",
        "LITELLM_CLAUDE_CODE_WARM_MAX": "0",
        "LITELLM_CLAUDE_CODE_WARM_FLOOR": "0",
        "LITELLM_CLAUDE_CODE_WARM_WINDOW": "45",
        "LITELLM_CLAUDE_CODE_WARM_READY_TIMEOUT": "7.5",
        "LITELLM_CLAUDE_CODE_WARM_IDLE_TIMEOUT": "12",
        "LITELLM_CLAUDE_CODE_WARM_MAX_USES": "5",
        "LITELLM_CLAUDE_CODE_WARM_MAX_AGE": "60.5",
        "LITELLM_CLAUDE_CODE_MAX_TOOLS": "32",
        "LITELLM_CLAUDE_CODE_MAX_TOOL_SCHEMA_BYTES": "8192",
        "LITELLM_CLAUDE_CODE_MAX_RESPONSE_SCHEMA_BYTES": "16384",
    }
    assert {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)} == set(env)  # one variable per field
    settings = Settings.from_env(env)
    assert settings == Settings(
        default_model="opus",
        max_concurrency=8,
        queue_timeout=2.5,
        request_timeout=90.0,
        cli_max_retries=0,
        api_timeout_ms=30000,
        state_dir=tmp_path / "state",
        cli_path="/opt/claude/bin/claude",
        log_level="DEBUG",
        warm_enabled=False,
        warm_max=0,
        warm_floor=0,
        warm_window=45.0,
        warm_ready_timeout=7.5,
        warm_idle_timeout=12.0,
        warm_max_uses=5,
        warm_max_age=60.5,
        max_tools=32,
        max_tool_schema_bytes=8192,
        max_response_schema_bytes=16384,
    )
    assert isinstance(settings.max_concurrency, int) and isinstance(settings.queue_timeout, float)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_CLAUDE_CODE_MAX_CONCURRENCY", "7")
    assert Settings.from_env().max_concurrency == 7


def test_blank_values_mean_the_default_and_values_are_trimmed() -> None:
    settings = Settings.from_env(
        {"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "   ", "LITELLM_CLAUDE_CODE_WARM_MAX": " 3 ", PREFIX + "CLI_PATH": ""}
    )
    assert settings.max_concurrency == Settings().max_concurrency
    assert settings.warm_max == 3
    assert settings.cli_path == ""


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"LITELLM_CLAUDE_CODE_NO_SUCH_THING": "x", "MAX_CONCURRENCY": "0"}) == Settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("False", False), ("no", False)],
)
def test_booleans(value: str, expected: bool) -> None:
    assert Settings.from_env({"LITELLM_CLAUDE_CODE_WARM_ENABLED": value}).warm_enabled is expected


@pytest.mark.parametrize(
    ("suffix", "value", "expected"),
    [
        ("MAX_CONCURRENCY", "four", "is not a whole number"),
        ("MAX_CONCURRENCY", "2.5", "is not a whole number"),
        ("MAX_CONCURRENCY", "0", "must be at least 1"),
        ("QUEUE_TIMEOUT", "soon", "is not a number of seconds"),
        ("QUEUE_TIMEOUT", "-1", "must be 0 or more seconds"),
        ("REQUEST_TIMEOUT", "0", "must be more than 0 seconds"),
        ("REQUEST_TIMEOUT", "10m", "is not a number of seconds"),
        ("CLI_MAX_RETRIES", "-1", "must be 0 or more"),
        ("CLI_MAX_RETRIES", "many", "is not a whole number"),
        ("API_TIMEOUT_MS", "999", "must be at least 1000 ms"),
        ("API_TIMEOUT_MS", "1e6", "is not a whole number"),
        ("LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("WARM_ENABLED", "maybe", "is not a boolean"),
        ("WARM_MAX", "-1", "must be 0 or more"),
        ("WARM_MAX", "two", "is not a whole number"),
        ("MAX_CONCURRENCY", "automatic", "is not a whole number"),
        ("WARM_IDLE_TIMEOUT", "0", "must be more than 0 seconds"),
        ("WARM_FLOOR", "-2", "must be 0 or more"),
        ("WARM_FLOOR", "one", "is not a whole number"),
        ("WARM_FLOOR", "40", "must be at most WARM_MAX"),
        ("WARM_WINDOW", "0", "must be more than 0 seconds"),
        ("WARM_READY_TIMEOUT", "-1", "must be 0 or more seconds"),
        ("WARM_MAX_USES", "0", "must be at least 1"),
        ("WARM_MAX_AGE", "-5", "must be more than 0 seconds"),
        ("WARM_MAX_AGE", "nan", "must be more than 0 seconds"),
        ("MAX_TOOLS", "0", "must be at least 1"),
        ("MAX_TOOL_SCHEMA_BYTES", "1k", "is not a whole number"),
        ("MAX_RESPONSE_SCHEMA_BYTES", "100", "must be at least 1024 bytes"),
    ],
)
def test_bad_values_name_the_variable(suffix: str, value: str, expected: str) -> None:
    name = PREFIX + suffix
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    message = str(info.value)
    assert message.startswith(name), message
    assert expected in message
    assert isinstance(info.value, ValueError)


def test_empty_default_model_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^LITELLM_CLAUDE_CODE_DEFAULT_MODEL must not be empty"):
        Settings(default_model="  ").validate()


# --------------------------------------------------------------------------- state directory


def test_state_dir_from_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/claude-gw:/var/lib/other")
    assert Settings.from_env({}).state_dir == Path("/var/lib/claude-gw")  # the first of several


def test_state_dir_from_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert Settings.from_env({}).state_dir == tmp_path / "xdg" / "litellm-claude-code"


def test_explicit_state_dir_wins_and_expands_the_home(monkeypatch: pytest.MonkeyPatch, clean_environment: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/claude-gw")
    settings = Settings.from_env({"LITELLM_CLAUDE_CODE_STATE_DIR": "~/cc-state"})
    assert settings.state_dir == clean_environment / "cc-state"


def test_state_dir_given_as_a_string_is_a_path(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path / "state"))  # type: ignore[arg-type]
    assert settings.state_dir == tmp_path / "state"
    assert isinstance(settings.state_dir, Path)
    assert (settings.state_dir / "bin").parent == tmp_path / "state"  # what a TypeError used to break
    assert settings == Settings(state_dir=tmp_path / "state")


# --------------------------------------------------------------------------- documentation


def test_settings_table_lists_every_setting_with_its_default() -> None:
    table = settings_table()
    lines = table.splitlines()
    assert lines[:2] == ["| variable | default | meaning |", "| --- | --- | --- |"]
    assert len(lines) == 2 + len(dataclasses.fields(Settings))
    names = [re.match(r"^\| `(\w+)` \|", line).group(1) for line in lines[2:]]  # type: ignore[union-attr]
    assert names == [PREFIX + f.name.upper() for f in dataclasses.fields(Settings)]
    assert (
        "| `LITELLM_CLAUDE_CODE_MAX_CONCURRENCY` | auto: min(4 × CPUs, (memory − 1 GiB) / 300 MiB), 1 to 32 |" in table
    )
    assert "| `LITELLM_CLAUDE_CODE_WARM_MAX` | auto: `MAX_CONCURRENCY` |" in table
    assert "| `LITELLM_CLAUDE_CODE_WARM_ENABLED` | `true` |" in table
    assert (
        "| `LITELLM_CLAUDE_CODE_STATE_DIR` | `$STATE_DIRECTORY`, else `~/.local/state/litellm-claude-code` |" in table
    )
    assert "| `LITELLM_CLAUDE_CODE_CLI_PATH` | bundled CLI |" in table


def test_configuration_doc_shows_the_current_settings_table() -> None:
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1, "the table markers must appear once"
    region = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert region.strip() == settings_table(), (
        "docs/configuration.md is out of date: put the output of "
        "`python -c 'from litellm_claude_code._settings import settings_table; print(settings_table())'` "
        f"between {TABLE_START} and {TABLE_END}"
    )


@pytest.mark.parametrize(("cpus", "floor"), [(0.5, 1), (1, 1), (2, 1), (4, 1), (6, 2), (16, 4), (64, 16)])
def test_the_floor_rule_is_one_clean_process_per_four_cpus(cpus: float, floor: int) -> None:
    assert floor_for(cpus) == floor


def test_the_floor_defaults_within_warm_max_and_auto_parses(tmp_path: Path) -> None:
    assert Settings(state_dir=tmp_path, max_concurrency=8, warm_max=0).warm_floor == 0
    # One idle place is left for a conversation: WARM_MAX=1 keeps the chat, not a clean process.
    assert Settings(state_dir=tmp_path, max_concurrency=8, warm_max=1).warm_floor == 0
    assert Settings(state_dir=tmp_path, max_concurrency=8, warm_max=2).warm_floor == 1
    auto = Settings.from_env({PREFIX + "WARM_FLOOR": "auto", PREFIX + "STATE_DIR": str(tmp_path)})
    assert auto.warm_floor == min(floor_for(read_host().cpus), auto.warm_max - 1)
