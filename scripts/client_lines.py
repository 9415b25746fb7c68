"""Print how to point Claude Code and Codex at a generated gateway: docs/clients.md's lines for it.

    python3 scripts/client_lines.py PROJECT_DIR KEY

``scripts/quickstart.sh`` runs it last, with the project it rendered and the person's key it
issued. The lines are the snippets of the page's ``claude-code`` and ``codex`` sections (the ones
the client tests run), each after the paragraph that introduces it, with the project's own URL in
place of the page's ``http://127.0.0.1:4000``; the key goes in ``GATEWAY_KEY``, where the snippets
read it. Reading the page rather than a copy of it keeps the two the same. Standard library only:
it runs with the ``python3`` that runs the quick start.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "clients.md"
DOC_URL = "http://127.0.0.1:4000"
SECTIONS = ("claude-code", "codex")
# As tests/support/docs_snippets.py reads a snippet: the fenced block after its marker line.
_SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\s*\n```[^\n]*\n(.*?)\n```", re.DOTALL)
_SECTION = re.compile(r"^<!-- section: ([a-z0-9-]+) -->$", re.M)


def answer(project: Path, name: str, default: str) -> str:
    """One scalar answer of the project's ``.copier-answers.yml`` (``name: value`` lines)."""
    answers = project / ".copier-answers.yml"
    text = answers.read_text() if answers.exists() else ""
    found = re.search(rf"^{name}:\s*['\"]?([^'\"\n]+?)['\"]?\s*$", text, re.M)
    return found.group(1) if found else default


def gateway_url(project: Path) -> str:
    """Where ``make run`` serves, as a client on the same machine reaches it."""
    host = answer(project, "listen_host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a wildcard bind address: clients use loopback)
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{answer(project, 'listen_port', '4000')}"


def sections(page: str) -> dict[str, str]:
    """The page's sections by name: the text from one section marker to the next."""
    marks = list(_SECTION.finditer(page))
    return {
        m.group(1): page[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(page)]
        for i, m in enumerate(marks)
    }


def lead(text: str) -> str:
    """The paragraph right before a snippet (what it is, where it goes), its lines joined."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if not paragraphs or paragraphs[-1].lstrip().startswith(("#", "```", "<!--")):
        return ""
    return " ".join(paragraphs[-1].split())


def client_lines(page: str, url: str, key: str) -> list[str]:
    """The printout: the key line, then each section's title and its snippets (indented by 4)."""
    out = [f"export GATEWAY_KEY={key}"]
    found = sections(page)
    for name in SECTIONS:
        text = found.get(name, "")
        snippets = list(_SNIPPET.finditer(text))
        if not snippets:
            continue
        title = re.search(r"^## (.+)$", text, re.M)
        out += ["", f"{title.group(1) if title else name} (docs/clients.md#{name}):"]
        start = 0
        for match in snippets:
            intro = lead(text[start : match.start()])
            if intro:
                out += textwrap.wrap(intro, width=96, initial_indent="  ", subsequent_indent="  ")
            out += ["    " + line if line else "" for line in match.group(2).replace(DOC_URL, url).splitlines()]
            start = match.end()
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 scripts/client_lines.py PROJECT_DIR KEY", file=sys.stderr)
        return 2
    project, key = Path(argv[0]), argv[1]
    if not PAGE.exists():
        print(f"client_lines: {PAGE} is missing: see docs/clients.md in the template's repository", file=sys.stderr)
        return 1
    for line in client_lines(PAGE.read_text(), gateway_url(project), key):
        print(f"   {line}" if line else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
