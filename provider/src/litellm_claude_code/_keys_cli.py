"""The key store's command line (``python -m litellm_claude_code.keys``): argparse and what it prints.

The store itself (records, hashing, atomic writes, the gateway's lookup) is :mod:`.keys`; this
module only parses a command, calls the store and tells the operator what happened. Exit codes:
0 done, 1 the store could not be read or written, 2 the command names a key that does (add) or
does not (revoke) exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import keys
from .keys import STORE_ENV, KeyRecord, hash_key, load_records, metrics_key, new_key, write_records


def _read_or_empty(path: Path) -> list[KeyRecord]:
    return load_records(path) if path.exists() else []


def _cmd_add(args: argparse.Namespace) -> int:
    records = _read_or_empty(args.store)
    if any(r.name == args.name for r in records):
        print(f"a key named {args.name!r} exists: revoke it first or pick another name", file=sys.stderr)
        return 2
    key = new_key()
    record = KeyRecord(
        name=args.name,
        sha256=hash_key(key),
        team=args.team,
        models=tuple(m.strip() for m in (args.models or "").split(",") if m.strip()),
        expires=args.expires,
        rpm=args.rpm,
        tpm=args.tpm,
        parallel=args.parallel,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    KeyRecord.from_json(record.to_json())  # validate before writing
    write_records(args.store, [*records, record])
    print(key)
    print(f"key for {args.name} added to {args.store}; it is shown only this once", file=sys.stderr)
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    records = _read_or_empty(args.store)
    if not any(r.name == args.name for r in records):
        print(f"no key named {args.name!r} in {args.store}", file=sys.stderr)
        return 2
    updated = [dataclasses.replace(r, revoked=True) if r.name == args.name else r for r in records]
    write_records(args.store, updated)
    print(f"key for {args.name} revoked", file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for r in _read_or_empty(args.store):
        state = "revoked" if r.revoked else ("expired" if r.expired() else "active")
        limits = " ".join(f"{k}={v}" for k, v in (("rpm", r.rpm), ("tpm", r.tpm), ("parallel", r.parallel)) if v)
        models = ",".join(r.models) or "*"
        print(
            f"{r.name}\t{state}\tteam={r.team or '-'}\tmodels={models}\texpires={r.expires or '-'}\t{limits}".rstrip()
        )
    return 0


def _cmd_metrics_key(_args: argparse.Namespace) -> int:
    from ._master_key import check_master_key

    master = os.environ.get("LITELLM_MASTER_KEY", "") or sys.stdin.readline().strip()
    check_master_key(master)
    print(metrics_key(master))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litellm_claude_code.keys", description=(keys.__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("metrics-key", help="print the scrape key for GET /metrics (master key from env or stdin)")
    default_store = os.environ.get(STORE_ENV)
    for name in ("add", "revoke", "list"):
        cmd = sub.add_parser(name)
        cmd.add_argument(
            "--store", type=Path, default=Path(default_store) if default_store else None, required=not default_store
        )
        if name != "list":
            cmd.add_argument("--name", required=True)
    add = sub.choices["add"]
    add.add_argument("--team")
    add.add_argument(
        "--models",
        help="comma-separated aliases (each covering its Claude family's full ids) or patterns such as "
        "claude-haiku-* the key may use (default: all)",
    )
    add.add_argument("--rpm", type=int)
    add.add_argument("--tpm", type=int)
    add.add_argument("--parallel", type=int)
    add.add_argument("--expires", help="ISO date or datetime, UTC unless it has an offset")
    args = parser.parse_args(argv)
    try:
        commands = {"add": _cmd_add, "revoke": _cmd_revoke, "list": _cmd_list, "metrics-key": _cmd_metrics_key}
        return commands[args.command](args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
