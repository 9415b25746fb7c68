"""Render the Copier template the way users do: from a tagged git repository.

The working tree holds uncommitted files of several engineers, so tests never render from
it directly. :func:`make_template_repo` copies what git would see (``git ls-files -co
--exclude-standard``, symlinks kept as symlinks) into a fresh repository, commits it and
tags it. :func:`make_release_repo` is the same on top of the real earlier releases (the
commits CHANGELOG.md names), for ``copier update`` from each of them.

    repo = make_template_repo(tmp / "template")               # tag 1.0.0 = the working tree
    project = render(repo, tmp / "gw", {"listen_port": 4100})  # copier copy --defaults
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RenderFn = Callable[..., Path]

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
        "drop_unsupported_params": True,
        "package_source": "wheelhouse",
        "gateway_hosts": ["gw-a.example.internal", "gw-b.example.internal"],
    },
    "bedrock-team": {
        "project_name": "Team gateway on Bedrock",
        "auth_method": "bedrock",
        "cloud_region": "eu-west-1",
        "model_aliases": {"sonnet": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "haiku": "haiku"},
        "gateway_hosts": ["gw-1", "gw-2"],
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

NEW_TAG = "1.0.0"
SKIP_PARTS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".git"})
GIT_ENV = {
    "GIT_AUTHOR_NAME": "template tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "template tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def working_tree_files(root: Path = REPO_ROOT) -> list[str]:
    """Paths git would commit: tracked plus untracked-but-not-ignored, caches skipped."""
    listed = git("ls-files", "-co", "--exclude-standard", "-z", cwd=root).split("\0")
    return sorted({p for p in listed if p and not SKIP_PARTS.intersection(Path(p).parts)})


def copy_tree(dest: Path, root: Path = REPO_ROOT) -> None:
    """Copy the working tree's files into ``dest`` (symlinks stay symlinks)."""
    for rel in working_tree_files(root):
        src = root / rel
        target = dest / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree, not yet from the index
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, target)


def commit_all(repo: Path, message: str, tag: str | None = None) -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    if tag:
        git("tag", tag, cwd=repo)


def make_template_repo(dest: Path) -> Path:
    """A git repository of the working tree, tagged ``NEW_TAG``."""
    dest.mkdir(parents=True)
    git("init", "-q", cwd=dest)
    copy_tree(dest)
    commit_all(dest, "release", NEW_TAG)
    return dest


def render(
    template: Path,
    dest: Path,
    data: Mapping[str, Any] | None = None,
    *,
    vcs_ref: str | None = None,
) -> Path:
    """``copier copy --defaults`` of ``template`` (a repository) into ``dest``."""
    import copier

    copier.run_copy(
        str(template),
        dest,
        data=dict(data or {}),
        defaults=True,
        overwrite=True,
        quiet=True,
        vcs_ref=vcs_ref,
        unsafe=False,
    )
    return dest


def render_role_unit(project: Path, dest: Path) -> Path:
    """The systemd unit the gateway role would install for ``project``, written to ``dest``, by
    the project's own ``scripts/project.py unit`` (Ansible renders the role's template, no host)."""
    import sys

    done = subprocess.run(
        [sys.executable, str(project / "scripts" / "project.py"), "unit", str(dest)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"rendering the role's unit failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return dest


# --------------------------------------------------------------------------- releases


def changelog_releases(changelog: Path = REPO_ROOT / "CHANGELOG.md") -> tuple[dict[str, str], str]:
    """``({version: commit}, next version)`` as CHANGELOG.md records them.

    A release is a ``## [X.Y.Z] - date`` heading followed by a ``Commit: `sha` `` line; the next
    release is the ``Next release: X.Y.Z`` line under ``## [Unreleased]``.
    """
    import re

    text = changelog.read_text()
    releases = {}
    for match in re.finditer(r"^## \[(\d+\.\d+\.\d+)\][^\n]*\n+Commit: `([0-9a-f]{7,40})`", text, re.M):
        releases[match.group(1)] = match.group(2)
    upcoming = re.search(r"^## \[Unreleased\]\n+Next release: (\d+\.\d+\.\d+)$", text, re.M)
    if not upcoming:
        raise AssertionError("CHANGELOG.md: no 'Next release: X.Y.Z' line under ## [Unreleased]")
    return releases, upcoming.group(1)


def make_release_repo(dest: Path) -> tuple[Path, dict[str, str], str]:
    """A scratch clone of this repository with every changelog release tagged at its commit, and
    the working tree committed on top as the next release. Returns (repo, releases, next)."""
    releases, upcoming = changelog_releases()
    git("clone", "-q", "--no-checkout", str(REPO_ROOT), str(dest), cwd=REPO_ROOT.parent)
    for version, commit in releases.items():
        git("tag", version, git("rev-parse", "--verify", f"{commit}^{{commit}}", cwd=dest).strip(), cwd=dest)
    latest = max(releases, key=lambda v: tuple(int(x) for x in v.split(".")))
    git("checkout", "-q", "-f", "-B", "next", latest, cwd=dest)
    git("rm", "-r", "-q", "--cached", ".", cwd=dest)
    for child in dest.iterdir():
        if child.name != ".git":
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    copy_tree(dest)
    commit_all(dest, f"release {upcoming} (the working tree)", upcoming)
    return dest, releases, upcoming
