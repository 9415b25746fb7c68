"""Fixtures of the template tests: a tagged repository of the working tree, renders of it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import (
    ANSWER_SETS,
    OLD_TAG,
    REPO_ROOT,
    RenderFn,
    make_template_repo,
    render,
    replace_in,
)



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


