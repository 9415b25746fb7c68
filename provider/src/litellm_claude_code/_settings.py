"""Provider settings: one typed object, read from environment variables with one prefix.

Every knob an operator may turn lives here, with its default and the sentence that the
configuration table in ``docs/configuration.md`` shows (a test keeps the two in sync).
Values are validated when read, and a bad value names the variable to fix, because the
person reading the error is an operator looking at a unit file, not at this code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import _host as host

PREFIX = "LITELLM_CLAUDE_CODE_"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """A setting has a value the provider cannot use; the message names the variable."""


def _default_state_dir() -> Path:
    # systemd's StateDirectory= exports STATE_DIRECTORY; use it so a unit needs no extra line.
    state_directory = os.environ.get("STATE_DIRECTORY")
    if state_directory:
        return Path(state_directory.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "litellm-claude-code"


# The default of WARM_MAX: resolved to MAX_CONCURRENCY when the settings are made.
WARM_MAX_AUTO = -1
# The default of WARM_FLOOR: resolved from the host (at most WARM_MAX - 1) when the settings are made.
WARM_FLOOR_AUTO = WARM_MAX_AUTO

# OpenAI's own limit on a request's tools; Claude Code sends about 25.
DEFAULT_MAX_TOOLS = 128
DEFAULT_MAX_SCHEMA_BYTES = 65_536


def _doc(text: str, default_text: str | None = None) -> dict[str, Any]:
    return {"doc": text, "default_text": default_text}


@dataclass(frozen=True, slots=True)
class Settings:
    """The provider's configuration. Build it with :meth:`from_env`."""

    default_model: str = field(
        default="sonnet",
        metadata=_doc("Claude model used when a request names none (`sonnet`, `opus`, `haiku` or a full id)."),
    )
    max_concurrency: int = field(
        default_factory=lambda: host.auto_concurrency(),
        metadata=_doc(
            "Most Claude Code CLI processes alive at once (serving or idle-warm), per proxy worker. "
            "Each costs about 200 MB and one CPU-second to start. `auto`: from the CPUs and memory this "
            "process may use (cgroup limits included).",
            f"auto: {host.RULE}",
        ),
    )
    queue_timeout: float = field(
        default=30.0,
        metadata=_doc("Seconds a request may wait for a free slot before it is refused with 429 and Retry-After."),
    )
    request_timeout: float = field(
        default=600.0,
        metadata=_doc(
            "Seconds a request may run, queue wait excluded; past it the CLI process is killed and the "
            "client gets 504. A smaller per-request `timeout` from LiteLLM wins."
        ),
    )
    cli_max_retries: int = field(
        default=1,
        metadata=_doc(
            "Retries the CLI makes on upstream errors (`CLAUDE_CODE_MAX_RETRIES`). Its own default, 10, "
            "makes a bad token take three minutes to fail."
        ),
    )
    api_timeout_ms: int = field(
        default=600_000,
        metadata=_doc("Timeout of one upstream API call inside the CLI, in milliseconds (`API_TIMEOUT_MS`)."),
    )
    state_dir: Path = field(
        default_factory=_default_state_dir,
        metadata=_doc(
            "Where each request's private HOME, TMPDIR and working directory are made (removed after the request).",
            "`$STATE_DIRECTORY`, else `~/.local/state/litellm-claude-code`",
        ),
    )
    cli_path: str = field(
        default="",
        metadata=_doc("Path of the Claude Code CLI. Empty: the binary bundled with claude-agent-sdk.", "bundled CLI"),
    )
    log_level: str = field(
        default="INFO",
        metadata=_doc("Level of the provider's logger: one line per request at INFO, CLI stderr at DEBUG."),
    )
    warm_enabled: bool = field(
        default=True,
        metadata=_doc(
            "Keep Claude Code processes ready ahead of requests, and keep each conversation in the process "
            "that answered it, so a request does not pay start-up and a follow-up turn is written alone. "
            "`false`: one fresh process per request."
        ),
    )
    warm_max: int = field(
        default=WARM_MAX_AUTO,
        metadata=_doc(
            "Most idle warm processes kept (about 200 MB each), the floor among them; never more than "
            "`MAX_CONCURRENCY` processes run in all. A cap: how many are kept follows the traffic (`WARM_FLOOR`, "
            "`WARM_WINDOW`). `auto`: as many as `MAX_CONCURRENCY`, so a burst up to the cap, once seen, is "
            "served warm.",
            "auto: `MAX_CONCURRENCY`",
        ),
    )
    warm_floor: int = field(
        default=WARM_FLOOR_AUTO,
        metadata=_doc(
            "Clean processes (holding no conversation) always kept ready, from start-up on: the first "
            "request after a start, a deploy or a quiet hour is warm. One that ages out is replaced before "
            "it is stopped. `0`: none are kept, and the first request after start-up or a quiet period starts "
            "a CLI. `auto`: one per four CPUs (rounded up), leaving at least one of `WARM_MAX` to conversations.",
            f"auto: {host.FLOOR_RULE}",
        ),
    )
    warm_window: float = field(
        default=300.0,
        metadata=_doc(
            "Seconds over which the most concurrent requests seen size the warm set: clean spares are kept for "
            "a burst as large as that peak (less the requests busy now, up to `WARM_MAX`), and those beyond the "
            "floor are stopped once the peak has left the window."
        ),
    )
    warm_ready_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds the proxy's start-up waits for the floor to be warm before it opens its port anyway "
            "(`/health/readiness` answers only then). The log line `claude_code_warm_up` says which happened."
        ),
    )
    warm_idle_timeout: float = field(
        default=300.0,
        metadata=_doc("Seconds an idle warm process holding a conversation is kept before it is stopped."),
    )
    warm_max_uses: int = field(
        default=100,
        metadata=_doc(
            "Requests one process serves (one at a time) before it is replaced; "
            "a conversation it held is rebuilt in another."
        ),
    )
    warm_max_age: float = field(
        default=900.0,
        metadata=_doc(
            "Seconds after start a process stops taking new requests (the CLI tells Claude today's date at start)."
        ),
    )
    max_tools: int = field(
        default=DEFAULT_MAX_TOOLS,
        metadata=_doc(
            "Most function tools one request may offer Claude; more is refused with 400. Claude Code itself "
            "sends about 25, OpenAI accepts up to 128."
        ),
    )
    max_tool_schema_bytes: int = field(
        default=DEFAULT_MAX_SCHEMA_BYTES,
        metadata=_doc(
            "Largest JSON Schema (`parameters`) of one tool, in bytes of compact JSON; a larger one is refused "
            "with 400. Claude Code's 25 tools take about 30 KB in all, descriptions included."
        ),
    )
    max_response_schema_bytes: int = field(
        default=DEFAULT_MAX_SCHEMA_BYTES,
        metadata=_doc(
            "Largest `response_format` JSON Schema, in bytes of compact JSON; a larger one is refused with 400. "
            "Whatever its size, checking a schema or an answer against it takes at most 1 s, in a worker "
            "thread off the event loop (see structured output)."
        ),
    )

    def __post_init__(self) -> None:
        # Settings(state_dir="/some/dir") is natural to write; keep the field a Path all the same.
        if not isinstance(self.state_dir, Path):
            object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())
        if self.warm_max == WARM_MAX_AUTO:
            object.__setattr__(self, "warm_max", self.max_concurrency)
        if self.warm_floor == WARM_FLOOR_AUTO:
            # At most WARM_MAX - 1, so one idle place is always left for a conversation.
            object.__setattr__(self, "warm_floor", max(0, min(host.auto_floor(), self.warm_max - 1)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default ``os.environ``), validating each."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = source.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _PARSERS[f.name](name, raw.strip())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check relations between values; raise :class:`SettingsError` naming the variable."""
        checks: list[tuple[bool, str, str]] = [
            (self.max_concurrency >= 1, "MAX_CONCURRENCY", "must be at least 1"),
            (self.queue_timeout >= 0, "QUEUE_TIMEOUT", "must be 0 or more seconds"),
            (self.request_timeout > 0, "REQUEST_TIMEOUT", "must be more than 0 seconds"),
            (self.cli_max_retries >= 0, "CLI_MAX_RETRIES", "must be 0 or more"),
            (self.api_timeout_ms >= 1000, "API_TIMEOUT_MS", "must be at least 1000 ms"),
            (self.warm_max >= 0, "WARM_MAX", "must be 0 or more"),
            (self.warm_floor >= 0, "WARM_FLOOR", "must be 0 or more"),
            (self.warm_floor <= self.warm_max, "WARM_FLOOR", f"must be at most WARM_MAX ({self.warm_max})"),
            (self.warm_window > 0, "WARM_WINDOW", "must be more than 0 seconds"),
            (self.warm_ready_timeout >= 0, "WARM_READY_TIMEOUT", "must be 0 or more seconds"),
            (self.warm_idle_timeout > 0, "WARM_IDLE_TIMEOUT", "must be more than 0 seconds"),
            (self.warm_max_uses >= 1, "WARM_MAX_USES", "must be at least 1"),
            (self.warm_max_age > 0, "WARM_MAX_AGE", "must be more than 0 seconds"),
            (self.log_level in _LOG_LEVELS, "LOG_LEVEL", f"must be one of {', '.join(_LOG_LEVELS)}"),
            (bool(self.default_model.strip()), "DEFAULT_MODEL", "must not be empty"),
        ]
        for ok, suffix, message in checks:
            if not ok:
                raise SettingsError(f"{PREFIX}{suffix} {message}")
        Limits.of(self)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may carry in tools and schemas (the ``MAX_TOOLS`` and ``MAX_*_SCHEMA_BYTES``
    settings), checked when a request is read: each refusal names the variable that changes it.

    Apart from :class:`Settings` so that the request checks can read these three from the
    environment alone (:meth:`from_env`), without what the rest of the settings cost to make.
    """

    max_tools: int = DEFAULT_MAX_TOOLS
    max_tool_schema_bytes: int = DEFAULT_MAX_SCHEMA_BYTES
    max_response_schema_bytes: int = DEFAULT_MAX_SCHEMA_BYTES

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str, str]] = [
            (self.max_tools >= 1, "MAX_TOOLS", "must be at least 1"),
            (self.max_tool_schema_bytes >= 1024, "MAX_TOOL_SCHEMA_BYTES", "must be at least 1024 bytes"),
            (self.max_response_schema_bytes >= 1024, "MAX_RESPONSE_SCHEMA_BYTES", "must be at least 1024 bytes"),
        ]
        for ok, suffix, message in checks:
            if not ok:
                raise SettingsError(f"{PREFIX}{suffix} {message}")

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """The limits as :meth:`Settings.from_env` would read them from ``env`` (default ``os.environ``)."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = source.get(name)
            if raw is not None and raw.strip():
                values[f.name] = _PARSERS[f.name](name, raw.strip())
        return cls(**values)


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def _concurrency(name: str, raw: str) -> int:
    return host.auto_concurrency() if raw.lower() == "auto" else _int(name, raw)


def _count_or_auto(name: str, raw: str) -> int:
    """A count of 0 or more, or ``auto``: the field's sentinel, resolved when the settings are made
    (``WARM_MAX_AUTO`` and ``WARM_FLOOR_AUTO`` are the same value)."""
    if raw.lower() == "auto":
        return WARM_MAX_AUTO
    value = _int(name, raw)
    if value < 0:
        raise SettingsError(f"{name} must be 0 or more (or auto)")
    return value


def _str(_name: str, raw: str) -> str:
    return raw


def _upper(_name: str, raw: str) -> str:
    return raw.upper()


def _path(_name: str, raw: str) -> Path:
    return Path(raw).expanduser()


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "default_model": _str,
    "max_concurrency": _concurrency,
    "queue_timeout": _float,
    "request_timeout": _float,
    "cli_max_retries": _int,
    "api_timeout_ms": _int,
    "state_dir": _path,
    "cli_path": _str,
    "log_level": _upper,
    "warm_enabled": _bool,
    "warm_max": _count_or_auto,
    "warm_floor": _count_or_auto,
    "warm_window": _float,
    "warm_ready_timeout": _float,
    "warm_idle_timeout": _float,
    "warm_max_uses": _int,
    "warm_max_age": _float,
    "max_tools": _int,
    "max_tool_schema_bytes": _int,
    "max_response_schema_bytes": _int,
}


def settings_table() -> str:
    """The Markdown table of every setting, as ``docs/configuration.md`` shows it."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        default_text = f.metadata.get("default_text")
        if default_text is None:
            default = f.default
            if isinstance(default, bool):
                default_text = f"`{str(default).lower()}`"
            elif isinstance(default, str) and not default:
                default_text = "(empty)"
            else:
                default_text = f"`{default}`"
        rows.append(f"| `{PREFIX}{f.name.upper()}` | {default_text} | {f.metadata['doc']} |")
    return "\n".join(rows)
