"""This project's facts, read from the files Copier rendered: nothing here is copied from them.

- `.copier-answers.yml`: the answers (slug, port, provider prefix, auth method, ...);
- `config/provider.env`: the provider's settings, the same file the unit and the container read.

`scripts/smoke.py` and `tests/conftest.py` import it, so a `copier update` with new answers
changes what they check without touching their code. `python scripts/project.py unit DEST`
writes the systemd unit the gateway role would install (for review, or for a host managed
without Ansible).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ".copier-answers.yml"
PROVIDER_ENV_FILE = Path("config") / "provider.env"
# auth_method answer -> the variable the provider reads the Claude credential from (for a
# cloud: the variable naming its credentials file, which the CLI reads).
TOKEN_ENVS = {
    "oauth_token": "CLAUDE_CODE_OAUTH_TOKEN",
    "api_key": "ANTHROPIC_API_KEY",
    "bedrock": "AWS_SHARED_CREDENTIALS_FILE",
    "vertex": "GOOGLE_APPLICATION_CREDENTIALS",
}
# provider.env's cloud selectors: a run against the fake Anthropic API drops them.
CLOUD_SELECTORS = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")


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
    def cloud(self) -> bool:
        """Bedrock or Vertex AI: the CLI reaches the cloud with its own credentials."""
        return self.auth_method in ("bedrock", "vertex")

    @property
    def fake_token_env(self) -> str:
        """The credential a run against the fake Anthropic API sets (a cloud project: API key)."""
        return "ANTHROPIC_API_KEY" if self.cloud else self.token_env

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


def fake_provider_env(root: Path = ROOT) -> dict[str, str]:
    """config/provider.env for a run against the fake Anthropic API: without the cloud selectors."""
    return {k: v for k, v in provider_env(root).items() if k not in CLOUD_SELECTORS}


def render_unit(dest: Path, root: Path = ROOT) -> Path:
    """Write the unit the gateway role installs to ``dest``: Ansible renders the role's template
    with the role's defaults and vars and this project's group_vars, on this machine only.

    Its limits (MemoryMax=, TasksMax=) follow config/provider.env's MAX_CONCURRENCY, or with
    ``auto`` this machine's CPUs and memory. No inventory: no firewall (it needs the load
    balancer's addresses)."""
    role = root / "ansible" / "roles" / "claude_code_gateway"
    play = [
        {
            "name": "Render the gateway unit",
            "hosts": "localhost",
            "connection": "local",
            # CPUs and memory: what MAX_CONCURRENCY=auto sizes the unit's limits for.
            "gather_facts": True,
            "gather_subset": ["min", "hardware"],
            "vars_files": [
                str(role / "defaults" / "main.yml"),
                str(role / "vars" / "main.yml"),
                str(root / "ansible" / "group_vars" / "all.yml"),
            ],
            "tasks": [
                {
                    "name": "Render the unit",
                    "ansible.builtin.template": {
                        "src": str(role / "templates" / "claude_code_gateway.service.j2"),
                        "dest": str(dest.resolve()),
                        "mode": "0644",
                    },
                }
            ],
        }
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    playbook = dest.parent / f".{dest.name}.play.json"
    playbook.write_text(json.dumps(play))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(root / "ansible" / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-i",
                "localhost,",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                "-e",
                json.dumps({"claude_code_gateway_project_dir": str(root.resolve())}),
                str(playbook),
            ],
            cwd=root / "ansible",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        playbook.unlink()
    if done.returncode != 0:
        raise SystemExit(
            f"rendering the unit failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        )
    return dest


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "unit":
        print(render_unit(Path(argv[1])))
        return 0
    print("usage: python scripts/project.py unit DEST", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
