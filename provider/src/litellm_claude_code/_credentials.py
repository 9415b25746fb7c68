"""Claude credentials, read at request time so a rotated token works without a restart.

Three kinds of token, in this order of preference, each from the variable itself, from a file
named by ``<NAME>_FILE`` (a secret mount, or a 0640 file an Ansible role rotates), or from a
systemd credential ``$CREDENTIALS_DIRECTORY/<name lower-cased>``:

- ``CLAUDE_CODE_OAUTH_TOKEN``: a subscription token from ``claude setup-token``;
- ``ANTHROPIC_API_KEY``: an API key;
- ``ANTHROPIC_AUTH_TOKEN``: a bearer token for a gateway in front of Anthropic.

Or a cloud provider, which the Claude Code CLI reaches with its own SDKs and which wins over
any token when selected (docs/credentials.md):

- ``CLAUDE_CODE_USE_BEDROCK=1``: Amazon Bedrock, in ``AWS_REGION``, with a shared
  credentials file (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_PROFILE``), a Bedrock API key
  (``AWS_BEARER_TOKEN_BEDROCK``, or its ``_FILE`` or systemd credential) or the host's role;
- ``CLAUDE_CODE_USE_VERTEX=1``: Google Vertex AI, in ``CLOUD_ML_REGION`` for
  ``ANTHROPIC_VERTEX_PROJECT_ID``, with a credentials JSON file
  (``GOOGLE_APPLICATION_CREDENTIALS``) or the host's service account.

The CLI reads the cloud credential files itself; this module checks they are readable and
takes a digest of their content, so a rotated file gives new CLI processes (the old ones,
which cached the old keys, retire as after a rotated token).

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

BEDROCK = "CLAUDE_CODE_USE_BEDROCK"
VERTEX = "CLAUDE_CODE_USE_VERTEX"
BEDROCK_API_KEY = "AWS_BEARER_TOKEN_BEDROCK"

# What the CLI (2.1.332, checked against its binary by tests/provider/test_cloud_credentials.py)
# reads for each cloud, passed to it when set in the service environment. Static AWS keys in
# the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are left out on purpose: they
# belong in a shared credentials file, like every other secret of the gateway.
BEDROCK_VARIABLES = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    # The host's role where it is not the instance metadata service: ECS tasks, EKS pods
    # (IRSA), and the metadata service's own switches.
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
)
VERTEX_VARIABLES = (
    "CLOUD_ML_REGION",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "ANTHROPIC_VERTEX_BASE_URL",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
)
# Per-model Vertex regions (VERTEX_REGION_CLAUDE_4_5_SONNET=europe-west1, ...): the CLI knows
# one name per model family, and new families bring new names, so every name with the prefix.
VERTEX_REGION_PREFIX = "VERTEX_REGION_CLAUDE_"
# Files the CLI reads the keys from: their content is part of the credential's identity.
CREDENTIAL_FILE_VARIABLES = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "GOOGLE_APPLICATION_CREDENTIALS")
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential: the variable the CLI reads it from, and its value."""

    variable: str
    """The token's variable, or the cloud's selector (``CLAUDE_CODE_USE_BEDROCK``, ``..._VERTEX``)."""
    value: str = field(repr=False)
    """The token; for a cloud, a digest of its settings and of its files' content."""
    source: str
    extra: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """A cloud's further variables for the CLI (region, project, file paths, an API key)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Secret values among :attr:`extra`, to keep out of logs."""

    @property
    def cloud(self) -> bool:
        return self.variable in (BEDROCK, VERTEX)

    @property
    def environment(self) -> dict[str, str]:
        """The variables the CLI gets for this credential."""
        if self.cloud:
            return {self.variable: "1", **dict(self.extra)}
        return {self.variable: self.value}

    @property
    def setting(self) -> str:
        """Where the operator changes this credential, for error messages (never the value)."""
        if self.cloud:
            return f"the {self.source}"
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


def _token(source: Mapping[str, str], variable: str) -> Credential | None:
    """``variable`` from the environment, its ``_FILE`` or the systemd credential, if set."""
    value = source.get(variable, "").strip()
    if value:
        return Credential(variable, value, "environment")
    file_path = source.get(f"{variable}_FILE", "").strip()
    if file_path:
        value = _read_file(file_path, variable)
        if value:
            return Credential(variable, value, f"file {file_path}")
        raise ConfigurationError(f"{variable}_FILE names {_shown(file_path)}, which is empty. Put the token in it.")
    credentials_dir = source.get("CREDENTIALS_DIRECTORY", "")
    if credentials_dir:
        candidate = Path(credentials_dir) / variable.lower()
        if candidate.is_file():
            value = _read_file(str(candidate), variable)
            if value:
                return Credential(variable, value, f"systemd credential {variable.lower()}")
    return None


def _selected(source: Mapping[str, str], variable: str) -> bool:
    return source.get(variable, "").strip().lower() in _TRUE


def _cloud_file(path: str, variable: str) -> bytes:
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{variable} names {path!r}, which cannot be read ({exc.strerror}). Check the path and that the service "
            "user may read it."
        ) from None
    if not content.strip():
        raise ConfigurationError(f"{variable} names {path!r}, which is empty. Put the credentials in it.")
    return content


def _cloud(source: Mapping[str, str], selector: str) -> Credential:
    """A Bedrock or Vertex credential: the variables the CLI needs, checked, and their digest."""
    names = BEDROCK_VARIABLES if selector == BEDROCK else VERTEX_VARIABLES
    extra = {name: source[name].strip() for name in names if source.get(name, "").strip()}
    if selector == VERTEX:
        extra.update(
            (name, value.strip())
            for name, value in source.items()
            if name.startswith(VERTEX_REGION_PREFIX) and value.strip()
        )
    digest = hashlib.sha256(selector.encode())
    for name in sorted(extra):
        digest.update(f"\x1f{name}={extra[name]}".encode())
        if name in CREDENTIAL_FILE_VARIABLES:
            digest.update(hashlib.sha256(_cloud_file(extra[name], name)).digest())
    secrets: tuple[str, ...] = ()
    if selector == BEDROCK:
        if not (extra.get("AWS_REGION") or extra.get("AWS_DEFAULT_REGION")):
            raise ConfigurationError(
                "CLAUDE_CODE_USE_BEDROCK is set but AWS_REGION is not: set it to the AWS region of your Bedrock "
                "models (e.g. us-east-1)."
            )
        api_key = _token(source, BEDROCK_API_KEY)
        if api_key is not None:
            extra[BEDROCK_API_KEY] = api_key.value
            secrets = (api_key.value,)
            digest.update(f"\x1f{BEDROCK_API_KEY}={api_key.value}".encode())
            where = f"Bedrock API key, {api_key.setting}"
        elif "AWS_SHARED_CREDENTIALS_FILE" in extra:
            path = extra["AWS_SHARED_CREDENTIALS_FILE"]
            where = f"AWS shared credentials file that AWS_SHARED_CREDENTIALS_FILE names ({path}, read at each request)"
        else:
            where = "AWS credentials of the host's role (instance profile, ECS task or EKS pod role)"
        return Credential(BEDROCK, digest.hexdigest(), where, tuple(sorted(extra.items())), secrets)
    missing = [name for name in ("CLOUD_ML_REGION", "ANTHROPIC_VERTEX_PROJECT_ID") if name not in extra]
    if missing:
        raise ConfigurationError(
            f"CLAUDE_CODE_USE_VERTEX is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "set CLOUD_ML_REGION to the Vertex AI region of your Claude models (e.g. us-east5 or global) and "
            "ANTHROPIC_VERTEX_PROJECT_ID to the Google Cloud project."
        )
    if "GOOGLE_APPLICATION_CREDENTIALS" in extra:
        path = extra["GOOGLE_APPLICATION_CREDENTIALS"]
        where = f"Google credentials file that GOOGLE_APPLICATION_CREDENTIALS names ({path}, read at each request)"
    else:
        where = "Google credentials of the host's service account (the metadata server)"
    return Credential(VERTEX, digest.hexdigest(), where, tuple(sorted(extra.items())))


def resolve_credential(env: Mapping[str, str] | None = None) -> Credential:
    """Return the credential to use now, or raise a :class:`ConfigurationError` saying what to set."""
    source = os.environ if env is None else env
    bedrock, vertex = _selected(source, BEDROCK), _selected(source, VERTEX)
    if bedrock and vertex:
        raise ConfigurationError(
            "Both CLAUDE_CODE_USE_BEDROCK and CLAUDE_CODE_USE_VERTEX are set: the gateway uses one cloud; unset one."
        )
    if bedrock or vertex:
        return _cloud(source, BEDROCK if bedrock else VERTEX)
    for variable in CREDENTIAL_VARIABLES:
        credential = _token(source, variable)
        if credential is not None:
            return credential
    raise ConfigurationError(
        "No Claude credentials: set CLAUDE_CODE_OAUTH_TOKEN (from `claude setup-token`), ANTHROPIC_API_KEY or "
        "ANTHROPIC_AUTH_TOKEN, or the same name with _FILE pointing at a file that holds it; or select a cloud with "
        "CLAUDE_CODE_USE_BEDROCK=1 or CLAUDE_CODE_USE_VERTEX=1 (docs/credentials.md)."
    )
