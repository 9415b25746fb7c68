#!/usr/bin/env python3
"""Pack a directory into a byte-for-byte reproducible tar (runs on the controller).

Usage: pack.py SRC_DIR DEST_TAR [EXCLUDE_NAME ...]

Sorted entries, mtime 0, owner root, normalised modes: the same tree always gives the same
archive, so `ansible.builtin.copy` only transfers it when something really changed.
Prints "changed" when DEST_TAR was (re)written, "unchanged" otherwise.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile

DEFAULT_EXCLUDES = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".git", ".venv"}


def build(src: str, excludes: set[str], out: str) -> None:
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d not in excludes and not d.endswith(".egg-info"))
            for name in sorted(files):
                if name in excludes or name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)
                info = tarfile.TarInfo(rel)
                info.size = os.path.getsize(path)
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)


def digest(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dest = sys.argv[1], sys.argv[2]
    if not os.path.isdir(src):
        print(f"pack.py: {src} is not a directory", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = f"{dest}.tmp{os.getpid()}"
    try:
        build(src, DEFAULT_EXCLUDES | set(sys.argv[3:]), tmp)
        if digest(dest) == digest(tmp):
            print("unchanged")
            return 0
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
