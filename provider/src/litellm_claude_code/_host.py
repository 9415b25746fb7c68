"""What the host gives this process (CPUs, memory), and the concurrency that follows from it.

The defaults of ``MAX_CONCURRENCY`` and ``WARM_MAX`` come from here, so a gateway serves its
traffic out of the box on a small VM and on a large host alike. What counts is what *this
process* may use, not what the machine has: the CPUs of its affinity mask and of its cgroup's
``cpu.max`` quota, the memory of its cgroup's ``memory.max`` (a systemd ``MemoryMax=``, a
container's ``--memory``), else the machine's ``MemTotal``. Only cgroup v2 is read; under v1 the
affinity mask and ``MemTotal`` are used.

The rule (``docs/configuration.md`` and ``docs/operations.md`` state it, with the memory it implies)::

    max_concurrency = clamp(min(4 x CPUs, (memory - 1 GiB) / 300 MiB), 1, 32)
    warm_max        = max_concurrency
    warm_floor      = min(ceil(CPUs / 4), warm_max - 1)

- 4 per CPU: a CLI process costs about one CPU-second to start and about 0.15 CPU-seconds per
  warm request; while it streams it waits on the upstream. Four per core kept two cores busy
  but responsive (bench: 7.3 completions/s at concurrency 8 on 2 cores).
- 300 MiB per process: a CLI process is about 200 MB resident (part of it the binary's pages,
  shared between processes); the rest is headroom for long conversations. 1 GiB is kept for the
  proxy itself (about 400 MB) and the system.
- 32 at most: one proxy worker, one credential's rate limit; beyond that add workers or hosts.
- ``warm_max`` equal to the cap: a burst as large as the cap is served by ready processes, when
  recent traffic had such bursts (the warm set follows the recent peak, :mod:`._pool`).
- ``warm_floor``, one clean process per four CPUs: what an idle gateway keeps ready (about 200 MB
  each) so the first request after start-up or a quiet hour is warm. Human-paced traffic (a
  request now and then) needs one; a host with more CPUs serves more people, whose new chats
  come closer together.

Every reader takes its root directory (and the affinity count) as arguments, so tests give it a
fake ``/proc`` and ``/sys/fs/cgroup``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
MIB = 1024**2

CPU_FACTOR = 4
MEMORY_RESERVE = 1 * GIB
MEMORY_PER_PROCESS = 300 * MIB
MAX_AUTO_CONCURRENCY = 32

RULE = "min(4 × CPUs, (memory − 1 GiB) / 300 MiB), 1 to 32"

CPUS_PER_FLOOR_PROCESS = 4
FLOOR_RULE = "one per 4 CPUs (rounded up), at most `WARM_MAX` − 1"


@dataclass(frozen=True, slots=True)
class Host:
    """What this process may use, and where each figure came from (for the log line)."""

    cpus: float
    memory: int
    cpu_source: str
    memory_source: str

    def describe(self) -> str:
        return f"{self.cpus:g} CPUs ({self.cpu_source}), {self.memory / GIB:.1f} GiB memory ({self.memory_source})"


def concurrency_for(cpus: float, memory: int) -> int:
    """The rule: what ``MAX_CONCURRENCY`` (and ``WARM_MAX``) default to on such a host."""
    by_cpu = math.floor(CPU_FACTOR * cpus)
    by_memory = (memory - MEMORY_RESERVE) // MEMORY_PER_PROCESS
    return max(1, min(by_cpu, by_memory, MAX_AUTO_CONCURRENCY))


def floor_for(cpus: float) -> int:
    """The rule: what ``WARM_FLOOR`` defaults to on such a host (before the ``WARM_MAX`` cap)."""
    return max(1, math.ceil(cpus / CPUS_PER_FLOOR_PROCESS))


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cgroup_dirs(proc: Path, cgroup_root: Path) -> list[Path]:
    """This process's cgroup v2 directory and its ancestors up to the mount (innermost first).

    A limit set on a parent (a slice, a container) applies as much as one on the unit itself.
    """
    try:
        lines = (proc / "self" / "cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return []  # cgroup v1 only
    relative = path.strip().removesuffix(" (deleted)").lstrip("/")
    current = cgroup_root / relative if relative else cgroup_root
    dirs = []
    while True:
        dirs.append(current)
        if current == cgroup_root or cgroup_root not in current.parents:
            return dirs
        current = current.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def cgroup_cpu_limit(dirs: list[Path]) -> float | None:
    """The smallest ``cpu.max`` quota along the path, in CPUs (None: no quota)."""
    limits = []
    for directory in dirs:
        value = _read(directory / "cpu.max")
        if not value:
            continue
        parts = value.split()
        if parts[0] == "max":
            continue
        try:
            quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100_000
        except ValueError:
            continue
        if quota > 0 and period > 0:
            limits.append(quota / period)
    return min(limits) if limits else None


def cgroup_memory_limit(dirs: list[Path]) -> int | None:
    """The smallest ``memory.max`` along the path, in bytes (None: "max" everywhere)."""
    limits = []
    for directory in dirs:
        value = _read(directory / "memory.max")
        if value and value != "max":
            try:
                limits.append(int(value))
            except ValueError:
                continue
    return min(limits) if limits else None


def mem_total(proc: Path) -> int | None:
    """``MemTotal`` of ``/proc/meminfo``, in bytes."""
    text = _read(proc / "meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024  # kB
            except (IndexError, ValueError):
                return None
    return None


def read_host(
    proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup"), affinity: int | None = None
) -> Host:
    """CPUs and memory this process may use. Never raises: unreadable figures fall back."""
    dirs = _cgroup_dirs(proc, cgroup_root)
    cpus: float = float(affinity if affinity is not None else _affinity())
    cpu_source = "affinity"
    quota = cgroup_cpu_limit(dirs)
    if quota is not None and quota < cpus:
        cpus, cpu_source = quota, "cgroup cpu.max"
    total = mem_total(proc)
    memory, memory_source = (total, "MemTotal") if total is not None else (2 * GIB, "unknown, assumed")
    limit = cgroup_memory_limit(dirs)
    if limit is not None and limit < memory:
        memory, memory_source = limit, "cgroup memory.max"
    return Host(cpus, memory, cpu_source, memory_source)


def auto_floor() -> int:
    """``WARM_FLOOR``'s default on this host."""
    return floor_for(read_host().cpus)


def auto_concurrency() -> int:
    """The default of ``MAX_CONCURRENCY`` on this host."""
    host = read_host()
    return concurrency_for(host.cpus, host.memory)
