"""This project's facts, read from the files Copier rendered: nothing here is copied from them.

- `.copier-answers.yml`: the answers (slug, port, provider prefix, auth method, ...);
- `config/provider.env`: the provider's settings, the same file the unit and the container read.

`scripts/smoke.py` and `tests/conftest.py` import it, so a `copier update` with new answers
changes what they check without touching their code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ".copier-answers.yml"
PROVIDER_ENV_FILE = Path("config") / "provider.env"
# auth_method answer -> the variable the provider reads the Claude credential from.
TOKEN_ENVS = {"oauth_token": "CLAUDE_CODE_OAUTH_TOKEN", "api_key": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class Project:
    """The answers the tests and the smoke script need, with the values derived from them."""

    slug: str
    listen_port: int
    provider_name: str
    auth_method: str
    package_source: str
    default_model: str
    model_aliases: dict[str, str]

    @property
    def token_env(self) -> str:
        return TOKEN_ENVS[self.auth_method]

    @property
    def default_claude_model(self) -> str:
        return self.model_aliases[self.default_model]


def answers(root: Path = ROOT) -> dict[str, Any]:
    import yaml  # installed with litellm

    data = yaml.safe_load((root / ANSWERS_FILE).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{root / ANSWERS_FILE} is not a mapping: run `copier update`")
    return data


def load(root: Path = ROOT) -> Project:
    data = answers(root)
    return Project(
        slug=str(data["project_slug"]),
        listen_port=int(data["listen_port"]),
        provider_name=str(data["provider_name"]),
        auth_method=str(data["auth_method"]),
        package_source=str(data["package_source"]),
        default_model=str(data["default_model"]),
        model_aliases={str(k): str(v) for k, v in data["model_aliases"].items()},
    )


def provider_env(root: Path = ROOT) -> dict[str, str]:
    """config/provider.env as a mapping (KEY=VALUE lines; '#' starts a comment line)."""
    values: dict[str, str] = {}
    for line in (root / PROVIDER_ENV_FILE).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise SystemExit(f"{PROVIDER_ENV_FILE}: {line!r} is not a KEY=VALUE line")
        values[name.strip()] = value.strip()
    return values
