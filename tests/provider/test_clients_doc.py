"""docs/clients.md: every snippet on the page is one a client test runs."""

from __future__ import annotations

import re

from tests.support.docs_snippets import PAGE, snippets
from tests.support.stack import REPO


def test_every_snippet_of_the_page_is_run_by_a_test() -> None:
    names = set(snippets())
    used: set[str] = set()
    for path in (REPO / "tests").rglob("test_clients_*.py"):
        used |= set(re.findall(r"""snippet\(\s*["']([a-z0-9-]+)["']""", path.read_text()))
    unused = sorted(names - used)
    assert not unused, f"{PAGE.name}: snippets no test runs: {', '.join(unused)}"
    unknown = sorted(used - names)
    assert not unknown, f"tests run snippets {PAGE.name} does not have: {', '.join(unknown)}"
