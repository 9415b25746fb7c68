"""Claude Code's managed policy (``/etc/claude-code``) and the gateway's CLI processes.

Claude Code reads an administrator's policy from a fixed directory whatever its flags, HOME and
environment say. The provider therefore refuses to start a CLI process while that directory holds
a file (``_cli.check_managed_policy``), and switches CLAUDE.md files off outright. The tests here:

- the check itself, on directories of our own;
- the real CLI, started the way the provider starts it (``CliProcess``: its flags, HOME, TMPDIR,
  allow-listed environment) against the fake upstream, with a policy in ``/etc/claude-code``.
  Never the machine's own ``/etc/claude-code``: each run is in a private mount namespace
  (``unshare --mount``) where that directory is a fresh tmpfs, and the runner refuses to write a
  policy anywhere else. With the provider's check, no process starts and no hook runs. With the
  check bypassed, the CLI runs every managed hook (so the check is still needed: a CLI that
  stops loading policy fails here, the cue to revisit), keeps the managed CLAUDE.md out of the
  request only because of ``CLAUDE_CODE_DISABLE_CLAUDE_MDS``, and refuses to start at all with a
  ``managed-mcp.json``.

Needs root and ``unshare``; without them the test skips, which fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litellm_claude_code._cli import MANAGED_POLICY_DIRS, check_managed_policy, managed_policy_files
from litellm_claude_code._errors import ConfigurationError
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.stack import UPSTREAM_KEY

POLICY_DIR = MANAGED_POLICY_DIRS["linux"]
MEMORY = "MANAGED-CLAUDE-MD-6402"
RULE = "MANAGED-RULE-3517"

# -- the check on its own ------------------------------------------------------------------------


def test_no_directory_an_empty_one_and_empty_subdirectories_pass(tmp_path: Path) -> None:
    check_managed_policy(tmp_path / "absent")
    (tmp_path / "policy" / "managed-settings.d").mkdir(parents=True)
    check_managed_policy(tmp_path / "policy")


def test_any_file_is_refused_and_named(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    (root / "managed-settings.d").mkdir(parents=True)
    (root / "managed-settings.d" / "10-audit.json").write_text("{}")
    (root / "CLAUDE.md").write_text("x")
    with pytest.raises(ConfigurationError) as info:
        check_managed_policy(root)
    message = str(info.value)
    assert f"{root / 'CLAUDE.md'}, {root / 'managed-settings.d' / '10-audit.json'}" in message
    assert f"TemporaryFileSystem={root}:ro" in message
    assert info.value.status_code == 500


def test_a_symlinked_drop_in_directory_is_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hooks.json").write_text("{}")
    root = tmp_path / "policy"
    root.mkdir()
    (root / "managed-settings.d").symlink_to(elsewhere)
    assert managed_policy_files(root) == [root / "managed-settings.d" / "hooks.json"]


# -- the real CLI in a private mount namespace ------------------------------------------------------

# Gives the runner a private /etc/claude-code: a tmpfs over it (over an overlay of /etc when the
# directory does not exist, so nothing is created on the real /etc). $1: a scratch directory.
NAMESPACE = r"""
set -eu
scratch=$1; shift
if [ ! -d /etc/claude-code ]; then
  mount -t tmpfs -o mode=0700 tmpfs "$scratch"
  mkdir "$scratch/upper" "$scratch/work"
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
  mkdir /etc/claude-code
fi
mount -t tmpfs -o mode=0755 tmpfs /etc/claude-code
exec "$@"
"""

# Runs each case with a real CLI process, started by the provider's own CliProcess.
RUNNER = r'''
import asyncio, json, os, shutil, sys
from pathlib import Path

from litellm_claude_code import _cli, _process
from litellm_claude_code._cli import Binding, Launch, install_launcher, resolve_cli, working_directory
from litellm_claude_code._credentials import Credential
from litellm_claude_code._messages import convert_messages
from litellm_claude_code._settings import Settings

POLICY = Path("/etc/claude-code")
spec = json.loads(Path(sys.argv[1]).read_text())


def private() -> bool:
    """/etc/claude-code is a tmpfs of a mount namespace other than the test's."""
    if os.stat("/proc/self/ns/mnt").st_ino == spec["parent_namespace"]:
        return False
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if fields[0].split()[4] == str(POLICY) and fields[1].split()[0] == "tmpfs":
            return True
    return False


async def run(case):
    for entry in POLICY.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for name, text in case["files"].items():
        (POLICY / name).parent.mkdir(parents=True, exist_ok=True)
        (POLICY / name).write_text(text)
    check = _process.check_managed_policy
    if case["bypass"]:
        _process.check_managed_policy = lambda: None
    quiet = dict(_cli.QUIET_VARIABLES)
    for name in case.get("drop_env", []):
        _cli.QUIET_VARIABLES.pop(name)
    state = Path(spec["state"]) / case["name"]
    settings = Settings(state_dir=state, cli_max_retries=0)
    launch = Launch(Credential("ANTHROPIC_API_KEY", spec["key"], "environment"), base_url=spec["base_url"])
    stderr = []
    result = {"error": None, "stderr": stderr, "messages": []}
    process = _process.CliProcess(
        settings, launch, Binding("sonnet"), cwd=working_directory(state), launcher=install_launcher(state),
        cli=resolve_cli(settings), stderr=stderr.append,
    )
    try:
        await process.start()
        conversation = convert_messages([{"role": "user", "content": case["prompt"]}])
        async for message in process.run(conversation):
            result["messages"].append(type(message).__name__)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await process.close()
        _process.check_managed_policy = check
        _cli.QUIET_VARIABLES.clear()
        _cli.QUIET_VARIABLES.update(quiet)
    return result


async def main():
    if not private():
        sys.exit("refusing to write a policy: /etc/claude-code is not a private tmpfs")
    results = {case["name"]: await run(case) for case in spec["cases"]}
    Path(spec["out"]).write_text(json.dumps(results))


asyncio.run(main())
'''


def _unshare_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for a private mount namespace (unshare --mount)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount does not work here: {probe.stderr.strip()}")


def _hook(command: str) -> list[dict[str, Any]]:
    return [{"hooks": [{"type": "command", "command": command}]}]


@pytest.mark.integration
def test_the_cli_loads_managed_policy_and_the_provider_refuses_to_start_it(
    fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    _unshare_or_skip()
    markers = tmp_path / "markers"
    markers.mkdir()
    settings = {
        "hooks": {
            "SessionStart": _hook(f"touch {markers}/$LCC_CASE-session-start"),
            # The hook gets the event on stdin: the client's prompt, in clear.
            "UserPromptSubmit": _hook(f"cat > {markers}/$LCC_CASE-prompt"),
            "Stop": _hook(f"touch {markers}/$LCC_CASE-stop"),
        },
    }
    drop_in = {"hooks": {"SessionStart": _hook(f"touch {markers}/$LCC_CASE-drop-in")}}

    def policy(case: str) -> dict[str, str]:
        # $LCC_CASE: the managed settings' own env, which the CLI gives its hooks.
        return {
            "managed-settings.json": json.dumps({**settings, "env": {"LCC_CASE": case}}),
            "managed-settings.d/10-audit.json": json.dumps(drop_in),
            "CLAUDE.md": f"{MEMORY}\n",
            ".claude/rules/house.md": f"{RULE}\n",
        }

    cases: list[dict[str, Any]] = [
        {"name": "provider", "files": policy("provider"), "bypass": False, "prompt": "prompt of the provider case"},
        {"name": "bypass", "files": policy("bypass"), "bypass": True, "prompt": "prompt of the bypass case"},
        {
            "name": "claude-md",
            "files": policy("claude-md"),
            "bypass": True,
            "drop_env": ["CLAUDE_CODE_DISABLE_CLAUDE_MDS"],
            "prompt": "prompt of the claude-md case",
        },
        {
            "name": "mcp",
            "files": {"managed-mcp.json": json.dumps({"mcpServers": {"audit": {"command": "true"}}})},
            "bypass": True,
            "prompt": "prompt of the mcp case",
        },
    ]
    (tmp_path / "scratch").mkdir()
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "cases": cases,
                "state": str(tmp_path / "state"),
                "out": str(tmp_path / "out.json"),
                "base_url": fake.base_url,
                "key": UPSTREAM_KEY,
                "parent_namespace": os.stat("/proc/self/ns/mnt").st_ino,
            }
        )
    )
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE, "namespace"]
    command += [str(tmp_path / "scratch"), sys.executable, str(runner), str(spec)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text())
    logged = [(json.dumps(record["body"]), record) for record in fake.messages_requests()]
    requests = {case["name"]: [record for text, record in logged if case["prompt"] in text] for case in cases}
    made = sorted(path.name for path in markers.iterdir())

    # With the provider's check: refused, naming the files; no process, no hook, no request.
    refused = results["provider"]["error"]
    assert refused is not None and refused.startswith("ConfigurationError: Claude Code's managed policy"), refused
    for name in ("CLAUDE.md", "managed-settings.json", "managed-settings.d/10-audit.json"):
        assert f"{POLICY_DIR}/{name}" in refused, refused
    assert not [name for name in made if name.startswith("provider-")]
    assert requests["provider"] == []

    # What the check prevents: the CLI, with the provider's flags, HOME and environment, runs every
    # managed hook (settings file and drop-in) with the managed env, and hands the hook the prompt.
    assert results["bypass"]["error"] is None, results["bypass"]
    assert "ResultMessage" in results["bypass"]["messages"]
    assert {"bypass-session-start", "bypass-drop-in", "bypass-prompt", "bypass-stop"} <= set(made), made
    assert "prompt of the bypass case" in (markers / "bypass-prompt").read_text()
    assert len(requests["bypass"]) == 1
    # ... and CLAUDE_CODE_DISABLE_CLAUDE_MDS keeps the managed CLAUDE.md and rules out of the request,
    body = json.dumps(requests["bypass"][0]["body"])
    assert MEMORY not in body and RULE not in body
    # which the CLI sends to Claude without it.
    assert results["claude-md"]["error"] is None, results["claude-md"]
    body = json.dumps(requests["claude-md"][0]["body"])
    assert MEMORY in body and RULE in body

    # A managed MCP configuration stops every start: the provider's --strict-mcp-config is refused.
    failed = results["mcp"]["error"]
    assert failed is not None and requests["mcp"] == [], results["mcp"]
    assert any("--strict-mcp-config" in line for line in results["mcp"]["stderr"]), results["mcp"]
