"""``import litellm_claude_code`` does no I/O and starts nothing: the version checks, the settings
and the default handler wait until something uses them (``handler``, a provider, the proxy hooks).

A library user, a test, ``python -m litellm_claude_code.keys`` and the proxy's worker all import the
package; only the proxy needs the handler, and it asks for it by name at start
(``custom_handler: litellm_claude_code.handler``), so its start-up errors are unchanged.

How it is checked, in a fresh interpreter (``sys.addaudithook``, PEP 578):

1. Everything the import loads that is not ours (LiteLLM, the SDK, their dependencies) is
   imported first, before the hook: their own import-time work (LiteLLM reads its price table)
   is theirs, not ours.
2. The hook records ``open``, ``subprocess.Popen``, ``os.exec``, ``os.posix_spawn``, ``os.spawn``,
   ``os.system``, ``os.fork``, ``os.forkpty`` and ``socket.connect`` while
   ``import litellm_claude_code`` runs, each with the stack that raised it.
3. Ignored: ``open`` of a path ending ``.py``, ``.pyc`` (or the ``.pyc.<n>`` temporary file the
   import system writes a cache through), ``.so`` or ``.pth`` - the import system reading or
   caching code. A package-metadata read (``importlib.metadata.version`` opening a
   ``dist-info/METADATA``) is not the import system's: it is a version check, and counts.
4. An event counts as ours when a frame of its stack runs a file of this package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import litellm_claude_code

PACKAGE_DIR = str(Path(litellm_claude_code.__file__).parent)

LIST_MODULES = """
import sys
import litellm_claude_code
ours = "litellm_claude_code"
print("\\n".join(sorted(n for n in sys.modules if n != ours and not n.startswith(ours + "."))))
"""

WATCH = """
import json, re, sys, importlib

for name in sys.stdin.read().split():
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a module that only imports as part of another's import: loaded again below if needed

PACKAGE_DIR = sys.argv[1]
WATCHED = {"open", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork",
           "os.forkpty", "socket.connect"}
CODE = re.compile(r"\\.(py|pyc|so|pth)$|\\.pyc\\.\\d+$")
events = []

def hook(event, args):
    if event not in WATCHED:
        return
    if event == "open" and isinstance(args[0], (str, bytes)) and CODE.search(str(args[0])):
        return
    frame, stack = sys._getframe(1), []
    while frame is not None:
        stack.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        frame = frame.f_back
    events.append({"event": event, "args": repr(args)[:300], "stack": stack})

sys.addaudithook(hook)
import litellm_claude_code
sys.stdout.write(json.dumps(events))
"""


def _run(script: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_import_does_no_io_and_spawns_nothing() -> None:
    theirs = _run(LIST_MODULES)
    events = json.loads(_run(WATCH, PACKAGE_DIR, stdin=theirs))
    ours = [e for e in events if any(place.startswith(PACKAGE_DIR + os.sep) for place in e["stack"])]
    detail = "\n".join(
        f"{e['event']} {e['args']}\n    " + "\n    ".join(p for p in e["stack"] if p.startswith(PACKAGE_DIR))
        for e in ours
    )
    assert not ours, f"importing litellm_claude_code did I/O or started a process:\n{detail}"


def test_the_handler_is_made_on_first_use() -> None:
    """The proxy's ``custom_handler: litellm_claude_code.handler`` still finds the instance, and
    the same one every time (``register`` and ``proxy_hooks.warm_up`` use it too)."""
    script = (
        "import litellm_claude_code as p\n"
        "assert 'handler' not in vars(p)\n"
        "h = p.handler\n"
        "from litellm_claude_code import handler\n"
        "assert handler is h and isinstance(h, p.ClaudeCodeProvider)\n"
        "assert h._settings is not None  # read when it was made, so a bad value stops the proxy at start\n"
        "print('ok')\n"
    )
    assert _run(script).strip() == "ok"
