"""Fixtures of the template tests: a tagged repository of the working tree, renders of it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `tests.support` without relying on pytest's rootdir
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.template import (  # noqa: E402
    OLD_TAG,
    make_template_repo,
    render,
    replace_in,
)

# Answer sets the render tests run on (ids are the test ids). Defaults first.
ANSWER_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "fleet-api-key": {
        "project_name": "Acme LLM Gateway",
        "model_aliases": {
            "claude-sonnet": "claude-sonnet-4-5",
            "fast": "haiku",
            "deep.thinker": "opus",
        },
        "default_model": "fast",
        "provider_name": "claude-cli",
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "auth_method": "api_key",
        "max_concurrency": 8,
        "request_timeout": 120,
        "package_source": "wheelhouse",
        "gateway_hosts": ["gw-a.example.internal", "gw-b.example.internal"],
    },
    "ipv6-one-alias": {
        "project_name": "A gateway with a rather long name, for the slug's sake",
        "model_aliases": {"claude": "opus"},
        "listen_host": "::1",
        "listen_port": 65535,
        "max_concurrency": 1,
        "request_timeout": 3600,
    },
}


def derive_old_release(tree: Path) -> None:
    """Turn the working tree into a plausible older release of the template.

    - no request_timeout question yet (its value was hard-coded);
    - the README's "Run it locally" heading and the proxy config header differed;
    - scripts/smoke.py did not exist.
    """
    copier_yml = tree / "copier.yml"
    text = copier_yml.read_text()
    start = text.index("\nrequest_timeout:\n")
    end = text.index("\npackage_source:\n")
    copier_yml.write_text(
        text[:start]
        + "\n"
        + text[end:]
        + "\nrequest_timeout:\n  type: int\n  when: false\n  default: 300\n"
    )
    replace_in(tree / "template" / "README.md.jinja", "## Run it locally\n", "## Running locally\n")
    replace_in(
        tree / "template" / "config" / "litellm.yaml.jinja",
        "# LiteLLM proxy configuration for {{ project_name }}.\n",
        "# LiteLLM proxy configuration ({{ project_name }}).\n",
    )
    (tree / "template" / "scripts" / "smoke.py.jinja").unlink()


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the working tree: tag OLD_TAG (derived) then NEW_TAG (as is)."""
    return make_template_repo(
        tmp_path_factory.mktemp("template") / "repo", old_release=derive_old_release
    )


RenderFn = Callable[..., Path]


@pytest.fixture(scope="session")
def render_project(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    def _render(data: dict[str, Any] | None = None, *, name: str = "project", **kwargs: Any) -> Path:
        dest = tmp_path_factory.mktemp(name) / "gateway"
        return render(template_repo, dest, data, **kwargs)

    return _render


@pytest.fixture(scope="session", params=list(ANSWER_SETS), ids=list(ANSWER_SETS))
def answers(request: pytest.FixtureRequest) -> dict[str, Any]:
    return ANSWER_SETS[request.param]


_rendered: dict[str, Path] = {}


@pytest.fixture(scope="session")
def project(answers: dict[str, Any], render_project: RenderFn) -> Path:
    """The project rendered from HEAD with each answer set (once per session)."""
    key = repr(sorted(answers.items()))
    if key not in _rendered:
        _rendered[key] = render_project(answers, name="render")
    return _rendered[key]


@pytest.fixture(scope="session")
def default_project(render_project: RenderFn) -> Path:
    return render_project({}, name="defaults")


__all__ = ["OLD_TAG", "ANSWER_SETS"]
