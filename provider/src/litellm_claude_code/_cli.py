"""How one Claude Code CLI process is started: its options, its environment, its private files.

Safe by default, whatever the request says:

- no tools at all (``--tools ""``: ``allowed_tools=[]`` alone still sends twelve tool
  definitions upstream), no MCP servers, no setting sources (no user or project settings, no
  CLAUDE.md), no slash commands, no session files written (a conversation lives in its
  process only);
- a private workspace per process under the state directory, with its own HOME and TMPDIR,
  removed when the process ends, and one empty read-only working directory for all;
- an environment built from an allow-list. The SDK passes the whole service environment to
  the CLI (master keys, database URLs, ...), so the CLI is started through a small launcher
  that drops every variable not on the list before it ``exec``s the binary. Values never
  appear on a command line, where any local user could read them;
- no managed policy. Claude Code reads an administrator's policy from a fixed directory
  (:data:`MANAGED_POLICY_DIRS`: ``/etc/claude-code`` on Linux) whatever its flags, HOME or
  environment say: ``managed-settings.json`` and ``managed-settings.d/*.json`` (their hooks run
  shell commands on every session start, prompt and answer, with the prompt on stdin; their
  ``env``, permissions and model settings apply), ``managed-mcp.json`` (then the CLI refuses
  ``--strict-mcp-config`` and every start fails), ``CLAUDE.md`` and ``.claude/rules`` (sent to
  Claude in the first user turn), ``.claude/skills``, ``agents`` and ``commands``. No variable or
  flag of CLI 2.1.332 turns policy off (``--setting-sources``, ``disableAllHooks`` in
  ``--settings``, ``--safe-mode`` all leave it on; ``CLAUDE_CODE_MANAGED_SETTINGS_PATH`` is not
  read by this build; ``--bare`` drops OAuth). So :func:`check_managed_policy` refuses to start
  a CLI process while that directory holds any file, and names the files: a 500 for the request,
  until the policy is removed from the gateway host or hidden from the service. ``CLAUDE.md``
  files are also switched off outright (``CLAUDE_CODE_DISABLE_CLAUDE_MDS``).
  ``tests/provider/test_managed_settings.py`` pins both against the real CLI, in a private mount
  namespace.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from claude_agent_sdk import ClaudeAgentOptions

from ._compat import DependencyVersionError, check_bundled_cli_digest
from ._credentials import Credential
from ._errors import ClaudeCodeError, CLINotFoundError, ConfigurationError, StateDirectoryError
from ._reasoning import Reasoning
from ._settings import Settings
from ._tools import SERVER, ToolSet, hooks, mcp_server

# Variables passed through from the service environment when set: network plumbing the CLI
# may need behind a corporate proxy or with a private CA. Nothing secret by nature.
PASSTHROUGH_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "ANTHROPIC_BASE_URL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    # The Claude model each of the CLI's aliases (sonnet, opus, haiku) stands for: on Bedrock
    # and Vertex, where model ids differ and each must be enabled in the account, pin them
    # (docs/credentials.md#models-on-bedrock-and-vertex-ai).
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
)

# Set by the SDK itself on the way to the CLI; harmless, and some change its behaviour.
SDK_VARIABLES = (
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_AGENT_SDK_CLIENT_APP",
    "CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP",
    "CLAUDE_CODE_SDK_READS_SESSION_STATE",
)

QUIET_VARIABLES = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
    # Client tools reach Claude as its tool list, not behind the CLI's tool search (which
    # withholds MCP tools and adds a "DeferredToolPlaceholder" tool of its own).
    "ENABLE_TOOL_SEARCH": "false",
    # No CLAUDE.md or rules file of any source reaches Claude, the managed one included.
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",
}

MANAGED_POLICY_DIRS = {"linux": "/etc/claude-code", "darwin": "/Library/Application Support/ClaudeCode"}
"""Where Claude Code reads an administrator's managed policy, by ``sys.platform`` (CLI 2.1.332)."""

_MAX_POLICY_ENTRIES = 1000

# Largest single JSON line read from the CLI. The SDK's default (1 MiB) is too small for some
# lines the CLI writes (a long answer assembled in one assistant message, error details that
# quote the request); the buffer only grows as a line needs it.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

LAUNCHER = """#!/bin/sh
# Written by litellm-claude-code. Runs the Claude Code CLI with only the environment
# variables named in LCC_KEEP, and records its process id in LCC_PIDFILE, so the provider
# can kill it at once when a request is cancelled.
lcc_cli=$LCC_CLI
lcc_keep=" $LCC_KEEP "
if [ -n "$LCC_PIDFILE" ]; then echo $$ > "$LCC_PIDFILE"; fi
for lcc_name in $(env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p'); do
  case "$lcc_keep" in
    *" $lcc_name "*) ;;
    *) unset "$lcc_name" 2>/dev/null ;;
  esac
done
exec "$lcc_cli" "$@"
"""


# A full or read-only filesystem passes (space is freed, the filesystem is made writable again):
# a 503 that names the path, and the next request tries again. Anything else is a setting to fix.
_PASSING_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}


def state_dir_error(path: Path, exc: OSError, doing: str, fix: str) -> ClaudeCodeError:
    """The error for an ``OSError`` met while ``doing`` something under the state directory."""
    condition = _PASSING_ERRNOS.get(exc.errno or 0)
    if condition is not None:
        return StateDirectoryError(
            f"Cannot {doing} {path}: the filesystem is {condition} ({exc.strerror}). Free space in (or make "
            "writable) the state directory, LITELLM_CLAUDE_CODE_STATE_DIR; the gateway serves again by itself."
        )
    return ConfigurationError(f"Cannot {doing} {path} ({exc.strerror}). {fix}")


def bundled_cli_path() -> Path:
    """The CLI binary shipped inside the claude-agent-sdk wheel."""
    import claude_agent_sdk

    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def resolve_cli(settings: Settings) -> str:
    """The CLI binary to run, or a 500 that says how to install one.

    The bundled CLI must also have the SHA-256 pinned for this claude-agent-sdk and machine
    (:func:`._compat.check_bundled_cli_digest`: hashed once per process, 0.3 to 0.8 s). A binary
    named by ``LITELLM_CLAUDE_CODE_CLI_PATH`` is the operator's: only its version is checked.
    """
    candidate = Path(settings.cli_path) if settings.cli_path else bundled_cli_path()
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        where = (
            f"LITELLM_CLAUDE_CODE_CLI_PATH={settings.cli_path}"
            if settings.cli_path
            else "the CLI bundled with claude-agent-sdk"
        )
        raise CLINotFoundError(
            f"Claude Code CLI not found or not executable ({where}). Install the Linux wheel of claude-agent-sdk "
            "(`pip install claude-agent-sdk`, which bundles the CLI), or set LITELLM_CLAUDE_CODE_CLI_PATH to a "
            "`claude` binary."
        )
    if not settings.cli_path:
        try:
            check_bundled_cli_digest(candidate)
        except DependencyVersionError as exc:
            raise ConfigurationError(str(exc)) from None
    return str(candidate)


def managed_policy_dir() -> Path | None:
    """Claude Code's managed-policy directory on this platform (None: a platform the provider does not know)."""
    for prefix, path in MANAGED_POLICY_DIRS.items():
        if sys.platform.startswith(prefix):
            return Path(path)
    return None


def managed_policy_files(root: Path | None = None) -> list[Path]:
    """Every file under the managed-policy directory (symlinks followed), sorted; empty directories are not files.

    A directory this process cannot read is one the CLI (same user) cannot read either: skipped.
    """
    root = root if root is not None else managed_policy_dir()
    if root is None:
        return []
    found: list[Path] = []
    seen = 0
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        subdirectories.sort()
        for name in sorted(files):
            found.append(Path(directory) / name)
        seen += len(subdirectories) + len(files)
        if seen > _MAX_POLICY_ENTRIES:
            break  # a symlink loop, or a tree large enough to name already
    return found


def check_managed_policy(root: Path | None = None) -> None:
    """Refuse to start a CLI process while Claude Code's managed policy is installed (see the module docstring)."""
    base = root if root is not None else managed_policy_dir()
    files = managed_policy_files(base)
    if not files:
        return
    shown = ", ".join(str(path) for path in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    raise ConfigurationError(
        f"Claude Code's managed policy is installed on this host ({shown}). The CLI applies it whatever the "
        "provider's isolation (its hooks run commands on every prompt, its env and permissions apply), so no Claude "
        f"Code process is started. Remove it from the gateway host, or hide {base} from the service (systemd: "
        f"TemporaryFileSystem={base}:ro; a container: do not mount it)."
    )


def install_launcher(state_dir: Path) -> Path:
    """Write the launcher script under the state directory (once per content) and return its path."""
    digest = hashlib.sha256(LAUNCHER.encode()).hexdigest()[:12]
    bin_dir = state_dir / "bin"
    path = bin_dir / f"claude-launcher-{digest}"
    if path.is_file():
        return path
    try:
        bin_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = bin_dir / f".launcher-{uuid.uuid4().hex}"
        tmp.write_text(LAUNCHER, encoding="utf-8")
        tmp.chmod(stat.S_IRWXU)
        tmp.replace(path)
    except OSError as exc:
        raise state_dir_error(
            state_dir,
            exc,
            "write under the state directory",
            "Set LITELLM_CLAUDE_CODE_STATE_DIR to a directory the service user owns.",
        ) from None
    return path


@dataclass(frozen=True, slots=True)
class Launch:
    """What a CLI process is bound to for life: its credential and the upstream it talks to.

    Everything else a request asks for (model, system prompt, output limit, the conversation)
    is given to a running process over its control channel, so a process started ahead of
    time fits whatever request comes next. Two requests with another credential or upstream
    never share a process.
    """

    credential: Credential
    base_url: str | None = None

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for part in (self.credential.variable, self.credential.value, self.base_url or ""):
            h.update(part.encode())
            h.update(b"\x1f")
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Binding:
    """What a request asks of the process that answers it, all changeable while it runs but the tools."""

    model: str
    system_prompt: str | None = None
    max_output_tokens: int | None = None
    tools: ToolSet | None = None
    """The client's tools, fixed when the process starts (a CLI lists its MCP tools once)."""
    reasoning: Reasoning = field(default_factory=Reasoning)
    """Effort and thinking budget (:mod:`.reasoning`); the default leaves the CLI's own."""
    schema: str | None = None
    """The ``response_format`` schema (canonical JSON, :mod:`.structured`), fixed when the process starts."""


@dataclass(slots=True)
class Workspace:
    """A process's private directory: HOME (with the CLI's config directory), TMPDIR, pid file."""

    root: Path
    home: Path = field(init=False)
    tmp: Path = field(init=False)
    pidfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.pidfile = self.root / "cli.pid"

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"

    @classmethod
    def create(cls, state_dir: Path) -> Workspace:
        runs = state_dir / "run"
        try:
            runs.mkdir(parents=True, exist_ok=True, mode=0o700)
            root = runs / uuid.uuid4().hex
            root.mkdir(mode=0o700)
            workspace = cls(root)
            for directory in (workspace.home, workspace.tmp, workspace.config_dir):
                directory.mkdir(mode=0o700)
        except OSError as exc:
            raise state_dir_error(
                state_dir,
                exc,
                "create a workspace under",
                "Set LITELLM_CLAUDE_CODE_STATE_DIR to a writable directory.",
            ) from None
        return workspace

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def working_directory(state_dir: Path) -> Path:
    """The empty, read-only working directory every CLI process runs in.

    The CLI tells Claude its working directory in the first turn of every conversation. One
    directory for all processes (on every gateway that uses the same state directory path)
    keeps that text, and so the prompt prefix that Anthropic's prompt cache matches, the same
    whichever process serves a conversation. It holds nothing and nobody may write to it: the
    CLI runs with no tools, and its own files go to its private HOME and TMPDIR.
    """
    path = state_dir / "work"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o500)
        if any(path.iterdir()):
            raise ConfigurationError(
                f"The working directory {path} must be empty (every Claude Code process runs in it); remove what is "
                "in it."
            )
        path.chmod(0o500)
    except OSError as exc:
        raise state_dir_error(
            path,
            exc,
            "prepare the working directory",
            "Set LITELLM_CLAUDE_CODE_STATE_DIR to a directory the service user owns.",
        ) from None
    return path.resolve()


def build_environment(
    settings: Settings, launch: Launch, workspace: Workspace, cli: str, max_output_tokens: int | None = None
) -> dict[str, str]:
    """The CLI's whole environment: the allow-list, the credential (a token, or a cloud's variables), the quiet
    switches."""
    env: dict[str, str] = {}
    for name in PASSTHROUGH_VARIABLES:
        value = os.environ.get(name)
        if value:
            env[name] = value
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    if launch.base_url:
        env["ANTHROPIC_BASE_URL"] = launch.base_url
    env.update(QUIET_VARIABLES)
    env.update(
        {
            "HOME": str(workspace.home),
            "TMPDIR": str(workspace.tmp),
            "CLAUDE_CODE_TMPDIR": str(workspace.tmp),
            "CLAUDE_CONFIG_DIR": str(workspace.config_dir),
            "CLAUDE_CODE_MAX_RETRIES": str(settings.cli_max_retries),
            "API_TIMEOUT_MS": str(settings.api_timeout_ms),
        }
    )
    # The token under its own name, or a cloud's selector with its region, project and files
    # (:mod:`.credentials`): only what the credential itself names.
    env.update(launch.credential.environment)
    if max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(max_output_tokens)
    keep = sorted({*env, *SDK_VARIABLES})
    env["LCC_KEEP"] = " ".join(keep)
    env["LCC_CLI"] = cli
    env["LCC_PIDFILE"] = str(workspace.pidfile)
    return env


def build_options(
    settings: Settings,
    launch: Launch,
    binding: Binding,
    workspace: Workspace,
    *,
    cwd: Path,
    launcher: Path,
    cli: str,
    stderr: Callable[[str], None] | None,
) -> ClaudeAgentOptions:
    """SDK options for one process: no tools of its own, no settings, private files, partial messages on.

    The client's tools, if the binding has any, are the only tools: one in-process MCP server
    lists them, and a PreToolUse hook defers every call (:mod:`.tools`).

    The system prompt is never given here: the process starts with none (``--system-prompt
    ""``: no 7 KB preset upstream, and nothing on the command line that other local users
    could read) and with the prompt snapshot off, so a system prompt set later over the
    control channel applies from the next turn on.
    """
    client_tools = binding.tools
    return ClaudeAgentOptions(
        tools=[],
        allowed_tools=[],
        mcp_servers={SERVER: mcp_server(client_tools)} if client_tools else {},
        hooks=hooks() if client_tools else None,
        strict_mcp_config=True,
        setting_sources=[],
        system_prompt={"type": "custom", "prompt": "", "snapshot": False},
        model=binding.model,
        max_turns=1,
        cwd=str(cwd),
        cli_path=str(launcher),
        env=build_environment(settings, launch, workspace, cli, binding.max_output_tokens),
        include_partial_messages=True,
        max_buffer_size=MAX_MESSAGE_BYTES,
        stderr=stderr,
        # User turns are delivered as written: a turn that starts with "/" is text for Claude,
        # never one of the CLI's commands, and no "@path" is expanded.
        verbatim_prompts=True,
        extra_args={"no-session-persistence": None, "disable-slash-commands": None},
    )
