"""The snippets of docs/clients.md, as the client tests run them.

A snippet is the fenced block after a ``<!-- snippet: NAME -->`` line. Snippets name the
gateway as ``http://127.0.0.1:4000`` (what ``make run`` serves) and the key as
``$GATEWAY_KEY`` (or ``GATEWAY_KEY`` in code): :func:`snippet` puts the test gateway's URL in,
and the tests give ``GATEWAY_KEY`` in the environment. ``tests/provider/test_clients_doc.py``
fails when a snippet of the page is used by no test, so every snippet a reader copies is one a
test ran.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.stack import REPO

PAGE = REPO / "docs" / "clients.md"
DOC_URL = "http://127.0.0.1:4000"
_SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\s*\n```[^\n]*\n(.*?)\n```", re.DOTALL)


def snippets(page: Path = PAGE) -> dict[str, str]:
    """Every snippet of the page, by name."""
    found: dict[str, str] = {}
    for name, body in _SNIPPET.findall(page.read_text()):
        if name in found:
            raise AssertionError(f"{page.name}: two snippets are named {name!r}")
        found[name] = body
    return found


def snippet(name: str, url: str | None = None) -> str:
    """The snippet ``name``, with ``url`` (the test gateway's base URL) in place of the docs' gateway."""
    text = snippets()[name]
    return text.replace(DOC_URL, url) if url else text
