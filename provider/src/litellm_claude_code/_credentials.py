"""Claude credentials, read at request time so a rotated token works without a restart.

Three kinds, in this order of preference, each from the variable itself, from a file named
by ``<NAME>_FILE`` (a secret mount, or a 0640 file an Ansible role rotates), or from a
systemd credential ``$CREDENTIALS_DIRECTORY/<name lower-cased>``:

- ``CLAUDE_CODE_OAUTH_TOKEN``: a subscription token from ``claude setup-token``;
- ``ANTHROPIC_API_KEY``: an API key;
- ``ANTHROPIC_AUTH_TOKEN``: a bearer token for a gateway in front of Anthropic.

The value never leaves this module except in the CLI's environment; logs and pool keys use
:attr:`Credential.fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ConfigurationError

CREDENTIAL_VARIABLES = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential: the variable the CLI reads it from, and its value."""

    variable: str
    value: str = field(repr=False)
    source: str

    @property
    def setting(self) -> str:
        """Where the operator changes this credential, for error messages (never the value)."""
        if self.source == "environment":
            return f"{self.variable} (an environment variable: restart the service after changing it)"
        if self.source.startswith("file"):
            return f"the file that {self.variable}_FILE names (read at each request: no restart needed)"
        return f"the systemd credential {self.variable.lower()} (restart the service after changing it)"

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible label: enough to tell two credentials apart in a log."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:12]


def _shown(path: str) -> str:
    """``path`` for an error message, unless it may be the token itself.

    Putting the token into ``<NAME>_FILE`` instead of ``<NAME>`` is an easy slip; the error
    must not then copy the token into a client's error body or the log.
    """
    if Path(path).is_absolute() or path.startswith(("./", "../", "~/")) or Path(path).exists():
        return repr(path)
    return "a value that is not a path (it must name the file that holds the token, not hold the token)"


def _read_file(path: str, variable: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"{variable}_FILE names {_shown(path)}, which cannot be read ({exc.strerror}). Check the path and that "
            "the service user may read it."
        ) from None


def resolve_credential(env: Mapping[str, str] | None = None) -> Credential:
    """Return the credential to use now, or raise a :class:`ConfigurationError` saying what to set."""
    source = os.environ if env is None else env
    credentials_dir = source.get("CREDENTIALS_DIRECTORY", "")
    for variable in CREDENTIAL_VARIABLES:
        value = source.get(variable, "").strip()
        if value:
            return Credential(variable, value, "environment")
        file_path = source.get(f"{variable}_FILE", "").strip()
        if file_path:
            value = _read_file(file_path, variable)
            if value:
                return Credential(variable, value, f"file {file_path}")
            raise ConfigurationError(f"{variable}_FILE names {_shown(file_path)}, which is empty. Put the token in it.")
        if credentials_dir:
            candidate = Path(credentials_dir) / variable.lower()
            if candidate.is_file():
                value = _read_file(str(candidate), variable)
                if value:
                    return Credential(variable, value, f"systemd credential {variable.lower()}")
    raise ConfigurationError(
        "No Claude credentials: set CLAUDE_CODE_OAUTH_TOKEN (from `claude setup-token`), ANTHROPIC_API_KEY or "
        "ANTHROPIC_AUTH_TOKEN, or the same name with _FILE pointing at a file that holds it."
    )
