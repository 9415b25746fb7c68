"""`copier update` from each release (as CHANGELOG.md records them) to the next one.

Each release is tagged at the commit the changelog names, in a scratch clone, and the working
tree is committed on top as the next release; a project is generated from each release,
committed, edited locally, then updated to the release after it (the last one to the working
tree), the way a user takes each release in turn. The template's changes and the user's edits
both survive, a line both changed becomes a conflict, and the generated project's own
pre-commit hook refuses the markers (run for real).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.template import changelog_releases, commit_all, git, make_release_repo, render

ANSWERS = {
    "project_name": "Acme Gateway",
    "listen_port": 4100,
    "model_aliases": {"sonnet": "sonnet", "quick": "haiku"},
    "auth_method": "api_key",
    "max_concurrency": 6,
}
RELEASES, NEXT = changelog_releases()
ORDER = sorted(RELEASES, key=lambda v: tuple(int(x) for x in v.split(".")))
STEPS = list(zip(ORDER, [*ORDER[1:], NEXT], strict=True))
# The release whose update moves the provider's settings out of the Makefile (and its aliases'
# order): its update conflicts on a line both sides changed (docs/operations.md, "From 0.1.0 to 0.2.0").
MOVED_SETTINGS = "0.1.0"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo, _, _ = make_release_repo(tmp_path_factory.mktemp("releases") / "repo")
    return repo


def conflict_hook(project: Path) -> subprocess.CompletedProcess[str]:
    """The generated project's conflict-markers hook, run by pre-commit itself."""
    if not PRE_COMMIT.exists():
        pytest.skip("pre-commit is not installed (requirements-dev.txt); required under CI=true")
    return subprocess.run(
        [str(PRE_COMMIT), "run", "conflict-markers", "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{PRE_COMMIT.parent}:/usr/bin:/bin",
            "HOME": str(project.parent),
            "PRE_COMMIT_HOME": str(project.parent / "pc"),
        },
    )


def test_changelog_names_the_first_release() -> None:
    assert "0.1.0" in RELEASES, RELEASES
    assert tuple(map(int, NEXT.split("."))) > max(tuple(map(int, v.split("."))) for v in RELEASES)


@pytest.mark.parametrize(("release", "target"), STEPS, ids=[f"{a}-to-{b}" for a, b in STEPS])
def test_update_keeps_edits_and_marks_conflicts(release_repo: Path, tmp_path: Path, release: str, target: str) -> None:
    import copier

    project = render(release_repo, tmp_path / "gateway", ANSWERS, vcs_ref=release)
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == release
    git("init", "-q", cwd=project)
    commit_all(project, f"generated from the template {release}")
    assert conflict_hook(project).returncode == 0

    # Local edits: a target of our own in the Makefile, a file of our own and, across the release
    # that moved it, the concurrency line the template also changes (it moves to config/provider.env).
    makefile = project / "Makefile"
    text = makefile.read_text()
    if release == MOVED_SETTINGS:
        assert "export LITELLM_CLAUDE_CODE_MAX_CONCURRENCY := 6\n" in text
        text = text.replace(
            "export LITELLM_CLAUDE_CODE_MAX_CONCURRENCY := 6\n", "export LITELLM_CLAUDE_CODE_MAX_CONCURRENCY := 12\n"
        )
    makefile.write_text(text + "\nhello: ## a target of our own\n\t@echo hello\n")
    (project / "NOTES.md").write_text("Our runbook.\n")
    commit_all(project, "local edits")

    copier.run_update(project, defaults=True, overwrite=True, quiet=True, unsafe=True, vcs_ref=target)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == target
    for key, value in ANSWERS.items():
        assert answers[key] == value, key
    # The template's files and the user's edits, in the same file, both arrived.
    text = makefile.read_text()
    assert "include config/provider.env" in text
    assert "hello: ## a target of our own" in text
    assert (project / "NOTES.md").read_text() == "Our runbook.\n"
    assert "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY=6" in (project / "config" / "provider.env").read_text()
    assert not (project / "deploy").exists(), "the 0.2.0 migration removes the unused unit"
    assert (project / "scripts" / "project.py").is_file()
    hook = conflict_hook(project)
    if release != MOVED_SETTINGS:
        assert hook.returncode == 0, hook.stdout  # nothing both sides changed: a clean merge
        assert "<<<<<<< " not in text
        return
    # Both sides changed the concurrency line: a conflict, shown with markers ...
    assert "<<<<<<< " in text and "\n=======\n" in text and ">>>>>>> " in text
    assert "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY := 12" in text
    # ... that the generated project's pre-commit hook refuses, in that file only.
    assert hook.returncode != 0, hook.stdout
    flagged = sorted(set(re.findall(r"^([^\s:]+):\d+:", hook.stdout, re.M)))
    expected = ["Makefile"]
    if list(ANSWERS["model_aliases"]) != sorted(ANSWERS["model_aliases"]):
        # 0.1.0 listed the aliases in answer order, Copier stores them sorted: the model list
        # conflicts once (docs/operations.md, "From 0.1.0 to 0.2.0"); later releases list them sorted.
        expected.append("config/litellm.yaml")
    assert flagged == expected, hook.stdout


def test_update_without_changes_is_a_no_op(release_repo: Path, tmp_path: Path) -> None:
    import copier

    project = render(release_repo, tmp_path / "gateway", ANSWERS, vcs_ref=NEXT)
    git("init", "-q", cwd=project)
    commit_all(project, "generated")
    copier.run_update(project, defaults=True, overwrite=True, quiet=True, unsafe=True, vcs_ref=NEXT)
    assert git("status", "--porcelain", cwd=project).strip() == ""
