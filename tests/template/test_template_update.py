"""`copier update` from an older release keeps answers and local edits, and leaves conflicts
as markers that the generated project's pre-commit hook refuses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.template import NEW_TAG, OLD_TAG, commit_all, git, render

ANSWERS = {
    "project_name": "Acme Gateway",
    "listen_port": 4100,
    "model_aliases": {"sonnet": "sonnet", "quick": "haiku"},
    "auth_method": "api_key",
}


def conflict_hook_pattern(project: Path) -> re.Pattern[str]:
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    (hook,) = [h for h in hooks if h["id"] == "conflict-markers"]
    assert hook["language"] == "pygrep"
    return re.compile(hook["entry"])


def files_with_conflicts(project: Path) -> list[str]:
    """What the conflict-markers hook reports: pre-commit itself when installed, else its
    pygrep pattern applied line by line (as pygrep does) to every tracked text file."""
    pre_commit = shutil.which("pre-commit")
    if pre_commit:
        done = subprocess.run(
            [pre_commit, "run", "conflict-markers", "--all-files"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return []
        return sorted(set(re.findall(r"^([^\s:]+):\d+:", done.stdout, re.M)))
    pattern = conflict_hook_pattern(project)
    hits = []
    for rel in git("ls-files", cwd=project).splitlines():
        path = project / rel
        try:
            lines = path.read_text().splitlines()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        if any(pattern.search(line) for line in lines):
            hits.append(rel)
    return sorted(set(hits))


@pytest.fixture
def old_project(template_repo: Path, tmp_path: Path) -> Path:
    project = render(template_repo, tmp_path / "gateway", ANSWERS, vcs_ref=OLD_TAG)
    git("init", "-q", cwd=project)
    commit_all(project, "generated from the template")
    return project


def test_old_release_is_older(old_project: Path) -> None:
    answers = yaml.safe_load((old_project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == OLD_TAG
    assert "request_timeout" not in answers
    assert not (old_project / "scripts" / "smoke.py").exists()
    assert files_with_conflicts(old_project) == []


def test_update_keeps_answers_and_edits_and_marks_conflicts(old_project: Path) -> None:
    import copier

    project = old_project
    # Local edits: one where the template also changed (README heading), one where it did not.
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("## Running locally\n", "## Running it on a laptop\n"))
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + "\nhello: ## a target of our own\n\t@echo hello\n")
    (project / "NOTES.md").write_text("Our runbook.\n")
    commit_all(project, "local edits")

    copier.run_update(project, defaults=True, overwrite=True, quiet=True, unsafe=False, vcs_ref=NEW_TAG)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == NEW_TAG
    for key, value in ANSWERS.items():
        assert answers[key] == value, key
    assert answers["request_timeout"] == 600  # the new question, answered by its default
    # The template's new file arrived, the user's own edits and files stayed.
    assert (project / "scripts" / "smoke.py").is_file()
    assert "hello: ## a target of our own" in makefile.read_text()
    assert (project / "NOTES.md").read_text() == "Our runbook.\n"
    config = (project / "config" / "litellm.yaml").read_text()
    assert "# LiteLLM proxy configuration for Acme Gateway." in config
    assert (
        "LITELLM_CLAUDE_CODE_REQUEST_TIMEOUT=600"
        in (project / "deploy" / "systemd" / "acme-gateway.service").read_text()
    )
    # Both sides changed the README heading: a conflict, shown with markers ...
    text = readme.read_text()
    assert "<<<<<<< " in text and "\n=======\n" in text and ">>>>>>> " in text
    assert "## Running it on a laptop" in text and "## Run it locally" in text
    # ... that the generated project's pre-commit hook refuses, in that file only.
    assert files_with_conflicts(project) == ["README.md"]


def test_update_without_changes_is_a_no_op(template_repo: Path, tmp_path: Path) -> None:
    import copier

    project = render(template_repo, tmp_path / "gateway", ANSWERS, vcs_ref=NEW_TAG)
    git("init", "-q", cwd=project)
    commit_all(project, "generated")
    copier.run_update(project, defaults=True, overwrite=True, quiet=True, unsafe=False, vcs_ref=NEW_TAG)
    assert git("status", "--porcelain", cwd=project).strip() == ""
