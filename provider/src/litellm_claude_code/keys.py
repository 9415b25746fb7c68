"""Keys per person: a store of key hashes with owners and limits, and the CLI that edits it.

The gateway keeps no key, only the SHA-256 of each (a key is 32 random bytes, so a plain
hash cannot be reversed by guessing). The store is a JSON file an operator edits only through
this module's CLI, which replaces it atomically (write, fsync, rename): a gateway reading it
while it changes sees the old or the new file, never half of one, so adding or revoking a key
needs no restart and fails no request.

This module is the store (records, hashing, reading and writing the file, the gateway's lookup);
the command line is :mod:`._keys_cli`, run as::

    python -m litellm_claude_code.keys add --name alice --models sonnet,haiku --rpm 60 --store keys.json
    python -m litellm_claude_code.keys revoke --name alice --store keys.json
    python -m litellm_claude_code.keys list --store keys.json
    python -m litellm_claude_code.keys metrics-key   # the scrape key, from LITELLM_MASTER_KEY or stdin
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["KeyRecord", "KeyStore", "hash_key", "metrics_key", "new_key"]

KEY_PREFIX = "sk-cc-"
STORE_ENV = "LITELLM_CLAUDE_CODE_KEYS_FILE"
_log = logging.getLogger("litellm_claude_code.keys")


def new_key() -> str:
    """A fresh key: 32 random bytes, URL-safe, with a prefix secret scanners can recognise."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


METRICS_KEY_PREFIX = "sk-metrics-"


def metrics_key(master_key: str) -> str:
    """The scrape credential for ``GET /metrics``: an HMAC of the master key, not the key.

    The proxy's auth hook (``proxy_auth``) opens ``GET /metrics`` to it and nothing else, so
    Prometheus never holds the master key. Whoever has the master key derives it; it reveals
    nothing of the master key; rotating the master key rotates it.
    """
    digest = hmac.new(master_key.encode(), b"litellm-claude-code/metrics-scrape/v1", hashlib.sha256).hexdigest()
    return METRICS_KEY_PREFIX + digest


@dataclass(frozen=True)
class KeyRecord:
    """One person's key, as the store holds it (the hash, never the key)."""

    name: str
    sha256: str
    team: str | None = None
    models: tuple[str, ...] = ()  # allowed aliases or patterns (``*``); empty means every model
    expires: str | None = None  # ISO date or datetime (UTC when no offset)
    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None
    revoked: bool = False
    created: str = ""

    def expired(self, now: dt.datetime | None = None) -> bool:
        if not self.expires:
            return False
        at = dt.datetime.fromisoformat(self.expires)
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        return (now or dt.datetime.now(dt.UTC)) >= at

    def allows(self, model: str, covers: Callable[[str, str], bool] | None = None) -> bool:
        """Whether this key may use ``model``: no limit, a listed name, a listed pattern, or ``covers``.

        An entry with ``*`` is a pattern (``claude-haiku-*``). ``covers(entry, model)`` is the
        gateway's rule for the names a listed alias stands for beyond itself (the proxy's auth:
        Claude's full ids of the alias's family, as Claude Code sends them).
        """
        if not self.models or model in self.models:
            return True
        if any("*" in entry and fnmatch.fnmatchcase(model, entry) for entry in self.models):
            return True
        return covers is not None and any(covers(entry, model) for entry in self.models if "*" not in entry)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyRecord:
        name, digest = raw.get("name"), raw.get("sha256")
        if not isinstance(name, str) or not name or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"a key entry needs a 'name' and a 64-hex 'sha256': {sorted(raw)}")
        record = cls(
            name=name,
            sha256=digest.lower(),
            team=raw.get("team") or None,
            models=tuple(raw.get("models") or ()),
            expires=raw.get("expires") or None,
            rpm=_opt_int(raw.get("rpm")),
            tpm=_opt_int(raw.get("tpm")),
            parallel=_opt_int(raw.get("parallel")),
            revoked=bool(raw.get("revoked", False)),
            created=str(raw.get("created") or ""),
        )
        record.expired()  # a bad expiry fails the load, not a request
        return record

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        return data


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"a limit must be a positive integer, got {value!r}")
    return value


def load_records(path: Path) -> list[KeyRecord]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError(f"{path}: expected an object with a 'keys' list")
    records = [KeyRecord.from_json(item) for item in data["keys"]]
    names = [r.name for r in records]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a name appears twice")
    return records


def write_records(path: Path, records: Sequence[KeyRecord]) -> None:
    """Replace the store atomically, readable by owner and group only (0640)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": 1, "keys": [r.to_json() for r in records]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).chmod(0o640)
        if path.exists():
            st = path.stat()
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class KeyStore:
    """The store as a gateway sees it: re-read when the file changes, checked per request.

    A stat per request is the cost of "revoke takes effect now"; the file is parsed only when
    its inode, size or mtime changed. A file that fails to parse keeps the last good store (an
    operator's typo must not lock everyone out) and is logged once per change.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                if self._stamp != (0, 0, 0):
                    _log.warning("key store %s does not exist: no person's key is valid", self.path)
                self._stamp, self._records = (0, 0, 0), []
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                self._records = load_records(self.path)
            except (OSError, ValueError) as exc:
                _log.error("key store %s is invalid, keeping the previous one: %s", self.path, exc)
            self._stamp = stamp

    def find(self, key: str) -> KeyRecord | None:
        """The record whose hash matches ``key``, comparing every hash in constant time."""
        self._refresh()
        digest = hash_key(key).encode()
        found = None
        for record in self._records:
            if hmac.compare_digest(digest, record.sha256.encode()):
                found = record
        return found


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (:mod:`._keys_cli`); here so ``python -m litellm_claude_code.keys`` and
    ``from litellm_claude_code.keys import main`` keep working."""
    from ._keys_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
