"""requirements.lock pins every package with the SHA-256 of its files, and every install uses it so.

The lock is what the generated project's ``make lock`` (pip-tools' ``pip-compile
--generate-hashes``) writes. The image build, the role and the Makefile install it with
``--require-hashes`` and then the provider, which a local path gives no hash to, with
``--no-deps``. A lock given as constraints (``-c``) would be wrong twice: its hashes switch
pip's hash checking on for every other requirement of the same command, which have none.
The last test asks the package index: the hashes the lock gives for two small packages are
those of real files, and pip refuses a file whose hash the lock does not list.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.template import REPO_ROOT

TEMPLATE = REPO_ROOT / "template"
ROLE_INSTALL = REPO_ROOT / "roles" / "claude_code_gateway" / "tasks" / "install.yml"


def logical_lines(text: str) -> list[str]:
    """The lock's requirement lines as pip reads them: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.split(" #", 1)[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in logical_lines((TEMPLATE / "requirements.lock").read_text()):
        spec, *options = line.split()
        requirement = Requirement(spec)
        (pin,) = requirement.specifier
        assert pin.operator == "==", line
        hashes = [option.removeprefix("--hash=sha256:") for option in options]
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), line
        found[re.sub(r"[-_.]+", "-", requirement.name).lower()] = (pin.version, hashes)
    return found


def test_every_locked_package_is_pinned_with_hashes() -> None:
    lock = locked()
    assert len(lock) > 100
    assert not [name for name, (_, hashes) in lock.items() if not hashes]
    assert "make lock" in (TEMPLATE / "requirements.lock").read_text().split("aiohappyeyeballs")[0]


def test_the_lock_holds_what_requirements_txt_asks_for() -> None:
    """Including async-timeout, which redis needs only below Python 3.11.3 (Debian 12)."""
    lock = locked()
    for line in (TEMPLATE / "requirements.txt.jinja").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name = re.split(r"[\[=<>]", line)[0].lower()
            assert name in lock, name
    assert "litellm-claude-code" not in lock  # the provider comes from ./provider


def test_every_install_uses_the_lock_with_hashes_and_the_provider_without_deps() -> None:
    dockerfile = (TEMPLATE / "Dockerfile.jinja").read_text()
    makefile = (TEMPLATE / "Makefile.jinja").read_text()
    role = ROLE_INSTALL.read_text()
    for name, text in (("Dockerfile", dockerfile), ("Makefile", makefile), ("install.yml", role)):
        as_constraints = [
            line for line in text.splitlines() if "requirements.lock" in line and re.search(r"(^|[\s'\"\[])-c\b", line)
        ]
        assert not as_constraints, f"{name} gives the hashed lock as constraints: {as_constraints}"
    assert dockerfile.count("--require-hashes -r requirements.lock") == 2  # pypi and wheelhouse
    assert "pip install --no-deps ./provider" in dockerfile
    assert "--no-deps litellm-claude-code" in dockerfile
    assert "verify_bundled_cli" in dockerfile
    venv = makefile.split("$(VENV)/.installed:")[1].split("\n\n")[0]
    assert "$(BIN)/pip install --require-hashes -r requirements.lock" in venv
    assert "$(BIN)/pip install --no-deps ./provider" in venv
    wheelhouse = makefile.split("\nwheelhouse:")[1].split("\n\n")[0]
    assert "--require-hashes -r requirements.lock" in wheelhouse and "--no-deps ./provider" in wheelhouse
    lock = makefile.split("\nlock:")[1].split("\n\n")[0]
    assert "pip-compile" in lock and "--generate-hashes" in lock
    assert "['--require-hashes', '-r', claude_code_gateway_install_dir ~ '/requirements.lock']" in role
    assert "'--force-reinstall', '--no-deps'" in role
    assert "verify_bundled_cli" in role


def test_the_constraints_copy_of_make_venv_drops_the_hashes(tmp_path: Path) -> None:
    """`make venv` holds the dev tools to the lock through a copy without hashes: run its sed."""
    recipe = (TEMPLATE / "Makefile.jinja").read_text().split("$(VENV)/.installed:")[1]
    (command,) = re.findall(r"^\t(sed .*) > \$\(VENV\)/lock-constraints\.txt$", recipe, re.M)
    done = subprocess.run(
        command.replace("$$", "$"), shell=True, cwd=TEMPLATE, capture_output=True, text=True, check=True
    )
    pins = [line for line in done.stdout.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(pins) == len(locked())
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^\s\\]+", line) for line in pins), pins[:5]


@pytest.mark.integration
def test_the_index_serves_files_with_the_locked_hashes(tmp_path: Path) -> None:
    lock = locked()
    for name in ("six", "async-timeout"):
        version, hashes = lock[name]
        good = tmp_path / f"{name}.txt"
        good.write_text(f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n")
        bad = tmp_path / f"{name}-bad.txt"
        bad.write_text(f"{name}=={version} --hash=sha256:{'0' * 64}\n")
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
        fetched = subprocess.run(
            [*pip, "-d", str(tmp_path / name), "-r", str(good)], capture_output=True, text=True, timeout=300
        )
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        refused = subprocess.run(
            [*pip, "-d", str(tmp_path / f"{name}-bad"), "-r", str(bad)], capture_output=True, text=True, timeout=300
        )
        assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr[-2000:]
