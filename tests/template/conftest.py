"""Fixtures of the template tests: a tagged repository of the working tree, renders of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.template import (
    ANSWER_SETS,
    RenderFn,
    make_template_repo,
    render,
)


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the working tree, tagged NEW_TAG (releases: test_template_update.py)."""
    return make_template_repo(tmp_path_factory.mktemp("template") / "repo")


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
