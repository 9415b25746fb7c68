"""The README's quick start, end to end: ``scripts/quickstart.sh [DIR]``.

The script runs from a tagged clone of the working tree (what a user's fresh checkout is):
it renders the template with ``copier copy --defaults`` and runs the generated project's
``make venv secrets smoke``, which starts a throwaway LiteLLM proxy with the real provider and
Claude Code CLI and streams one answer. No Claude credential is passed in, so the answer must
come from the bundled fake Anthropic API and the script must say so. Last, it issues a person's
key and prints docs/clients.md's Claude Code and Codex snippets for the project's URL
(``scripts/client_lines.py``): the tests check they are the page's snippets, line for line.

``LCC_QUICKSTART_VENV`` points the script at this repository's virtualenv (Copier and the
gateway's packages) so the test skips a multi-minute install; rendering and the generated
project's commands are the real ones. The second test hides ``make`` from PATH and checks the
script's fallback (the same steps run directly).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from litellm_claude_code.keys import hash_key, load_records

from tests.support.docs_snippets import DOC_URL, PAGE, snippets
from tests.support.stack import REPO

pytestmark = pytest.mark.integration

TIMEOUT = 300
CREDENTIAL_VARS = (
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN_FILE",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_API_KEY_FILE",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_AUTH_TOKEN_FILE",
    "ANTHROPIC_BASE_URL",
)


def run_quickstart(template_repo: Path, dest: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.prefix)
    assert (venv / "bin" / "copier").exists(), f"{venv} has no copier: install requirements-dev.txt"
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS and not k.startswith("PYTEST_")}
    env["LCC_QUICKSTART_VENV"] = str(venv)
    if path is not None:
        env["PATH"] = path
    proc = subprocess.Popen(
        ["bash", str(template_repo / "scripts" / "quickstart.sh"), str(dest)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"quickstart did not finish within {TIMEOUT} s:\n{out[-5000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def assert_fake_answer_streamed(out: str) -> None:
    assert "upstream is the bundled fake Anthropic API (CLAUDE_CODE_OAUTH_TOKEN is not set)" in out, out[-5000:]
    assert "real Claude API" not in out, out[-5000:]
    # smoke.py prints "smoke: <alias> > " then each streamed chunk as it arrives. The fake answers
    # "fake reply from <the model id the CLI requested> tok4 tok5 ..." (20 tokens, per smoke.py).
    answer = re.search(r"^smoke: sonnet > (.*)$", out, re.M)
    assert answer, out[-5000:]
    words = answer.group(1).split()
    assert words[:3] == ["fake", "reply", "from"], answer.group(1)
    assert words[3].startswith("claude-") and "sonnet" in words[3], words[3]
    assert words[-1] == "tok19", answer.group(1)
    ok = re.search(r"^smoke: OK: (\d+) chunks", out, re.M)
    assert ok, out[-5000:]
    assert int(ok.group(1)) >= 10, ok.group(0)


def assert_rendered_with_defaults(dest: Path) -> None:
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == "claude-code-gateway"
    assert answers["auth_method"] == "oauth_token"
    assert (dest / "scripts" / "smoke.py").is_file()
    assert (dest / "config" / "litellm.yaml").is_file()


def client_snippets(sections: tuple[str, ...] = ("claude-code", "codex")) -> dict[str, list[str]]:
    """The names of the snippets of each of docs/clients.md's ``sections``, in page order."""
    page = PAGE.read_text()
    marks = list(re.finditer(r"^<!-- section: ([a-z0-9-]+) -->$", page, re.M))
    found: dict[str, list[str]] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(page)
        if mark.group(1) in sections:
            found[mark.group(1)] = re.findall(r"<!-- snippet: ([a-z0-9-]+) -->", page[mark.end() : end])
    return found


def assert_client_lines(out: str, dest: Path, url: str = DOC_URL) -> None:
    """The key the quick start printed is in the project's key store (named quickstart), and each
    Claude Code and Codex snippet of docs/clients.md follows it, as on the page, with ``url``."""
    printed = out.split("your key (make key NAME=quickstart", 1)
    assert len(printed) == 2, out[-3000:]
    key = re.search(r"^   export GATEWAY_KEY=(sk-\S{40,})$", printed[1], re.M)
    assert key, printed[1]
    (record,) = load_records(dest / "keys" / "keys.json")
    assert (record.name, record.sha256) == ("quickstart", hash_key(key.group(1)))
    sections = client_snippets()
    assert sorted(sections) == ["claude-code", "codex"] and all(sections.values()), sections
    docs = snippets()
    for names in sections.values():
        for name in names:
            lines = "\n".join(
                f"       {line}" if line else "" for line in docs[name].replace(DOC_URL, url).splitlines()
            )
            assert lines in printed[1], f"snippet {name} is not printed as docs/clients.md has it:\n{printed[1]}"


def test_client_lines_use_the_projects_url(tmp_path: Path) -> None:
    """scripts/client_lines.py puts a project's own port and a wildcard bind's loopback address in."""
    (tmp_path / ".copier-answers.yml").write_text("listen_host: 0.0.0.0\nlisten_port: 4100\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "client_lines.py"), str(tmp_path), "sk-" + "k" * 43],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    assert DOC_URL not in out
    assert "http://127.0.0.1:4100" in out
    sections = client_snippets()
    docs = snippets()
    for names in sections.values():
        for name in names:
            lines = docs[name].replace(DOC_URL, "http://127.0.0.1:4100").splitlines()
            assert "\n".join(f"       {line}" if line else "" for line in lines) in out, name


def test_quickstart_streams_from_the_fake_upstream(template_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "gateway"
    done = run_quickstart(template_repo, dest)
    out = done.stdout
    assert done.returncode == 0, out[-6000:]
    assert "make venv secrets smoke" in out, out[-3000:]
    assert_rendered_with_defaults(dest)
    # `make secrets` ran: a master key, 0600, and the token line left for the user.
    secrets_env = dest / "secrets.env"
    assert stat.S_IMODE(secrets_env.stat().st_mode) == 0o600
    assert re.search(r"^LITELLM_MASTER_KEY=sk-\S{40,}$", secrets_env.read_text(), re.M)
    assert_fake_answer_streamed(out)
    # The proxy's own log stays out of the answer (smoke.py logs it to a file).
    assert "Uvicorn running" not in out, out[-3000:]
    assert f"the gateway project is in {dest}" in out
    assert_client_lines(out, dest)


def test_quickstart_without_make(template_repo: Path, tmp_path: Path) -> None:
    """A fresh machine may have python3 and no make: the script runs the same steps itself."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            target = bindir / entry.name
            if entry.name in {"make", "gmake"} or target.exists() or target.is_symlink():
                continue
            target.symlink_to(entry)
    assert shutil.which("make", path=str(bindir)) is None
    dest = tmp_path / "gateway"
    done = run_quickstart(template_repo, dest, path=str(bindir))
    out = done.stdout
    assert done.returncode == 0, out[-6000:]
    assert "make is not installed" in out, out[-3000:]
    assert_rendered_with_defaults(dest)
    assert_fake_answer_streamed(out)
    assert_client_lines(out, dest)
