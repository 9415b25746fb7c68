"""Run the LiteLLM proxy in this process and write every route its app registers to a file.

    python -m tests.support.route_dump OUT.json --config ... --port ...   (the `litellm` CLI's arguments)

LiteLLM registers part of its routes while it starts (the Messages API, the pass-through
families), and its own ``GET /routes`` lists only the app's top level, so the route sweep
(tests/provider/test_route_sweep.py) reads them here: once the proxy answers its liveliness
probe, every route of ``litellm.proxy.proxy_server.app`` (HTTP routes with their methods,
WebSocket routes, mounts) is written to OUT.json as a list of ``{"kind", "path", "methods"}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def app_routes() -> list[dict[str, Any]]:
    from fastapi.routing import iter_route_contexts
    from litellm.proxy.proxy_server import app

    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        found.append(
            {
                "kind": type(route).__name__,
                "path": context.path,
                "methods": sorted(context.methods or []),
            }
        )
    return found


def _dump_when_serving(out: Path, port: str) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.2)
    partial = out.with_suffix(".tmp")
    partial.write_text(json.dumps(app_routes()))
    os.replace(partial, out)


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[2:]
    port = args[args.index("--port") + 1]
    threading.Thread(target=_dump_when_serving, args=(out, port), daemon=True).start()
    from litellm.proxy.proxy_cli import run_server

    run_server.main(args=args, prog_name="litellm")


if __name__ == "__main__":
    main()
