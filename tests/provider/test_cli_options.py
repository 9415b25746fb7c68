"""How a CLI process is started: options, environment, private files (``cli.build_options``).

No Claude Code CLI runs here. The SDK's own command builder shows the argv the options turn
into, and the launcher script runs with ``env`` in place of the CLI, which shows exactly the
environment the CLI would get.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeAgentOptions
from litellm_claude_code._cli import (
    PASSTHROUGH_VARIABLES,
    QUIET_VARIABLES,
    SDK_VARIABLES,
    Binding,
    Launch,
    Workspace,
    build_environment,
    build_options,
    install_launcher,
    working_directory,
)
from litellm_claude_code._credentials import Credential
from litellm_claude_code._settings import Settings

TOKEN = "sk-ant-oat01-test-token-for-options"
MASTER_KEY = "sk-litellm-master-key-must-not-leak"
DATABASE_URL = "postgresql://litellm:db-password-must-not-leak@db/litellm"
FAKE_CLI = "/opt/claude/bin/claude"

# What the provider itself sets, on top of the pass-through and quiet lists.
OWN_VARIABLES = {
    "HOME",
    "TMPDIR",
    "CLAUDE_CODE_TMPDIR",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_MAX_RETRIES",
    "API_TIMEOUT_MS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "LCC_KEEP",
    "LCC_CLI",
    "LCC_PIDFILE",
}
ALLOWED = {*PASSTHROUGH_VARIABLES, *QUIET_VARIABLES, *SDK_VARIABLES, *OWN_VARIABLES}


@pytest.fixture
def service_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A proxy's environment: its own secrets, and a different credential of another kind."""
    monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-must-not-leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-other-credential-must-not-leak")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://upstream.invalid:8080")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HOME", str(tmp_path / "service-home"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", cli_max_retries=0, api_timeout_ms=45_000)


CREDENTIAL = Credential("CLAUDE_CODE_OAUTH_TOKEN", TOKEN, "environment")


def options_for(
    settings: Settings, launch: Launch | None = None, binding: Binding | None = None
) -> tuple[ClaudeAgentOptions, Workspace, Path]:
    workspace = Workspace.create(settings.state_dir)
    launcher = install_launcher(settings.state_dir)
    options = build_options(
        settings,
        launch or Launch(CREDENTIAL),
        binding or Binding("sonnet"),
        workspace,
        cwd=working_directory(settings.state_dir),
        launcher=launcher,
        cli=FAKE_CLI,
        stderr=None,
    )
    return options, workspace, launcher


def sdk_command(options: ClaudeAgentOptions) -> list[str]:
    """The argv the SDK builds from ``options`` (its own code, not a copy of it)."""
    from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

    transport = SubprocessCLITransport(prompt="hello", options=options)
    return transport._build_command()


# --------------------------------------------------------------------------- options


@pytest.mark.usefixtures("service_environment")
def test_no_tools_no_settings_no_mcp(settings: Settings) -> None:
    options, _, _ = options_for(settings)
    assert options.tools == []
    assert options.allowed_tools == []
    assert options.setting_sources == []
    assert options.mcp_servers == {}
    assert options.strict_mcp_config is True
    assert options.max_turns == 1
    assert options.include_partial_messages is True
    assert options.verbatim_prompts is True  # user turns as written: no slash commands, no @path expansion
    assert options.model == "sonnet"
    assert "disable-slash-commands" in options.extra_args
    assert "no-session-persistence" in options.extra_args

    argv = sdk_command(options)
    tools = argv.index("--tools")
    assert argv[tools + 1] == ""  # `--tools ""`: no tool definitions upstream at all
    assert "--allowedTools" not in argv
    assert "--strict-mcp-config" in argv
    assert "--disable-slash-commands" in argv
    assert "--setting-sources=" in argv  # no user or project settings, no CLAUDE.md
    assert "--mcp-config" not in argv
    assert not any(arg.startswith("--resume") for arg in argv)


@pytest.mark.usefixtures("service_environment")
def test_a_shared_read_only_empty_working_directory_and_private_files(settings: Settings) -> None:
    options, workspace, launcher = options_for(settings)
    cwd = Path(str(options.cwd))
    assert cwd == (settings.state_dir / "work").resolve()
    assert cwd.is_dir() and list(cwd.iterdir()) == []
    assert cwd.stat().st_mode & 0o777 == 0o500  # nobody writes there, the CLI least of all
    assert not cwd.is_relative_to(workspace.root)
    for directory in (workspace.root, workspace.home, workspace.tmp, workspace.config_dir):
        assert directory.stat().st_mode & 0o077 == 0, f"{directory} is readable by others"
    assert options.cli_path == str(launcher)
    assert launcher.is_relative_to(settings.state_dir)
    other, other_workspace, _ = options_for(settings)
    assert other_workspace.root != workspace.root  # one workspace per process
    assert other.cwd == options.cwd  # one working directory for all: the same prompt prefix
    workspace.remove()
    assert not workspace.root.exists()


def test_a_working_directory_with_something_in_it_is_refused(settings: Settings) -> None:
    path = settings.state_dir / "work"
    path.mkdir(parents=True)
    (path / "planted.txt").write_text("x")
    with pytest.raises(Exception, match="must be empty"):
        working_directory(settings.state_dir)


@pytest.mark.usefixtures("service_environment")
def test_no_system_prompt_on_the_command_line_and_the_snapshot_off(settings: Settings) -> None:
    options, _, _ = options_for(settings, binding=Binding("sonnet", "You are a pirate. SYSTEM-PROMPT-MARKER"))
    assert options.system_prompt == {"type": "custom", "prompt": "", "snapshot": False}
    argv = sdk_command(options)
    assert argv[argv.index("--system-prompt") + 1] == ""  # not the CLI's 7 KB preset; the prompt comes later
    assert not any("SYSTEM-PROMPT-MARKER" in arg for arg in argv)


@pytest.mark.usefixtures("service_environment")
# --------------------------------------------------------------------------- environment


@pytest.mark.usefixtures("service_environment")
def test_environment_holds_only_allow_listed_names(settings: Settings) -> None:
    options, workspace, _ = options_for(settings, binding=Binding("sonnet", None, 2048))
    env = options.env
    assert set(env) <= ALLOWED, f"not allow-listed: {set(env) - ALLOWED}"
    for secret in ("LITELLM_MASTER_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "ANTHROPIC_API_KEY"):
        assert secret not in env
        assert secret not in env["LCC_KEEP"].split()
    values = " ".join(env.values())
    assert MASTER_KEY not in values and "db-password-must-not-leak" not in values

    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == TOKEN  # the request's credential, under its own name
    assert env["HOME"] == str(workspace.home) and env["TMPDIR"] == str(workspace.tmp)
    assert env["CLAUDE_CONFIG_DIR"] == str(workspace.home / ".claude")
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert env["API_TIMEOUT_MS"] == "45000"
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "2048"
    assert env["HTTPS_PROXY"] == "http://proxy.invalid:3128"  # network plumbing passes through
    assert env["ANTHROPIC_BASE_URL"] == "http://upstream.invalid:8080"
    for name, value in QUIET_VARIABLES.items():
        assert env[name] == value
    assert set(env["LCC_KEEP"].split()) == (set(env) - {"LCC_KEEP", "LCC_CLI", "LCC_PIDFILE"}) | set(SDK_VARIABLES)
    assert env["LCC_CLI"] == FAKE_CLI


@pytest.mark.usefixtures("service_environment")
def test_launch_base_url_overrides_the_service_one(settings: Settings, tmp_path: Path) -> None:
    launch = Launch(CREDENTIAL, base_url="http://127.0.0.1:9999")
    env = build_environment(settings, launch, Workspace.create(settings.state_dir), FAKE_CLI)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9999"
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" not in env  # no limit asked, none set


@pytest.mark.usefixtures("service_environment")
def test_launcher_drops_everything_not_on_the_list(settings: Settings) -> None:
    # The SDK starts the launcher with the whole service environment plus the options' env.
    # With `env` standing in for the CLI, its output is exactly what the CLI would see.
    options, workspace, launcher = options_for(settings)
    env = {**os.environ, **options.env, "LCC_CLI": "/usr/bin/env", "CLAUDE_CODE_ENTRYPOINT": "sdk-py"}
    proc = subprocess.run([str(launcher)], env=env, capture_output=True, text=True, timeout=30, check=True)
    seen = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    kept = set(options.env["LCC_KEEP"].split())
    assert set(seen) - {"PWD", "SHLVL", "_"} <= kept, f"leaked: {set(seen) - kept}"
    assert "LITELLM_MASTER_KEY" not in seen and "DATABASE_URL" not in seen and "ANTHROPIC_API_KEY" not in seen
    assert MASTER_KEY not in proc.stdout and "db-password-must-not-leak" not in proc.stdout
    assert seen["CLAUDE_CODE_OAUTH_TOKEN"] == TOKEN
    assert seen["CLAUDE_CODE_ENTRYPOINT"] == "sdk-py"  # the SDK's own variables survive
    assert workspace.pid() is not None  # the launcher recorded the CLI's pid before exec


def test_launch_key_separates_what_must_not_share_a_process() -> None:
    base = Launch(CREDENTIAL)
    assert base.key == Launch(Credential("CLAUDE_CODE_OAUTH_TOKEN", TOKEN, "file /run/x")).key
    different = [
        Launch(Credential("CLAUDE_CODE_OAUTH_TOKEN", TOKEN + "2", "environment")),
        Launch(Credential("ANTHROPIC_API_KEY", TOKEN, "environment")),
        Launch(CREDENTIAL, base_url="http://127.0.0.1:1"),
    ]
    keys = {launch.key for launch in different}
    assert base.key not in keys and len(keys) == len(different)
    assert TOKEN not in repr(base)
