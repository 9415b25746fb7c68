"""The host-derived defaults of MAX_CONCURRENCY and WARM_MAX, from fake /proc and cgroup trees."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from litellm_claude_code import _host as host
from litellm_claude_code._host import GIB, MIB, concurrency_for, floor_for, read_host
from litellm_claude_code._settings import Settings

UNIT = "system.slice/gw.service"


def fake_host(
    tmp_path: Path,
    *,
    mem_total_kb: int | None = 8 * 1024 * 1024,
    cgroup_line: str | None = f"0::/{UNIT}",
    files: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """A ``/proc`` with meminfo and self/cgroup, and a cgroup v2 tree with ``files`` (path: content)."""
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (cgroup / UNIT).mkdir(parents=True)
    if mem_total_kb is not None:
        (proc / "meminfo").write_text(f"MemTotal:       {mem_total_kb} kB\nMemFree:         1000 kB\n")
    if cgroup_line is not None:
        (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    for path, content in (files or {}).items():
        (cgroup / path).write_text(content + "\n")
    return proc, cgroup


@pytest.mark.parametrize(
    ("cpus", "memory", "expected"),
    [
        (1, 2 * GIB, 3),  # memory-bound: (2 GiB - 1 GiB) / 300 MiB
        (2, 4 * GIB, 8),  # CPU-bound: 4 x 2
        (2, 24 * GIB, 8),  # the development machine
        (4, 8 * GIB, 16),
        (1.5, 16 * GIB, 6),  # a fractional quota
        (16, 64 * GIB, 32),  # the ceiling
        (8, 1 * GIB, 1),  # nothing left over: still one
        (0.1, 16 * GIB, 1),
        (64, 1 * GIB + 600 * MIB, 2),
    ],
)
def test_the_rule(cpus: float, memory: int, expected: int) -> None:
    assert concurrency_for(cpus, memory) == expected


def test_without_cgroup_limits_the_affinity_and_memtotal_count(tmp_path: Path) -> None:
    proc, cgroup = fake_host(tmp_path, files={f"{UNIT}/memory.max": "max", f"{UNIT}/cpu.max": "max 100000"})
    found = read_host(proc, cgroup, affinity=3)
    assert (found.cpus, found.memory) == (3, 8 * GIB)
    assert (found.cpu_source, found.memory_source) == ("affinity", "MemTotal")
    assert concurrency_for(found.cpus, found.memory) == 12


def test_the_unit_cgroup_limits_win(tmp_path: Path) -> None:
    proc, cgroup = fake_host(tmp_path, files={f"{UNIT}/memory.max": str(2 * GIB), f"{UNIT}/cpu.max": "150000 100000"})
    found = read_host(proc, cgroup, affinity=8)
    assert (found.cpus, found.memory) == (1.5, 2 * GIB)
    assert (found.cpu_source, found.memory_source) == ("cgroup cpu.max", "cgroup memory.max")
    assert concurrency_for(found.cpus, found.memory) == 3


def test_a_parent_cgroup_limit_applies_too(tmp_path: Path) -> None:
    proc, cgroup = fake_host(
        tmp_path,
        files={
            f"{UNIT}/memory.max": "max",
            "system.slice/memory.max": str(3 * GIB),
            "system.slice/cpu.max": "100000 100000",
        },
    )
    found = read_host(proc, cgroup, affinity=4)
    assert (found.cpus, found.memory) == (1.0, 3 * GIB)


def test_a_limit_above_the_machine_is_the_machine(tmp_path: Path) -> None:
    proc, cgroup = fake_host(tmp_path, mem_total_kb=4 * 1024 * 1024, files={f"{UNIT}/memory.max": str(64 * GIB)})
    found = read_host(proc, cgroup, affinity=16)
    assert (found.memory, found.memory_source) == (4 * GIB, "MemTotal")
    assert found.cpus == 16


def test_a_container_sees_its_own_root(tmp_path: Path) -> None:
    """With a private cgroup namespace the process is at "/" and the limits are at the mount's top."""
    proc, cgroup = fake_host(tmp_path, cgroup_line="0::/", files={"memory.max": str(GIB + 900 * MIB)})
    assert read_host(proc, cgroup, affinity=2).memory == GIB + 900 * MIB


def test_cgroup_v1_or_nothing_readable_falls_back(tmp_path: Path) -> None:
    proc, cgroup = fake_host(tmp_path, cgroup_line="4:memory:/some/group", files={f"{UNIT}/memory.max": "1"})
    found = read_host(proc, cgroup, affinity=2)
    assert (found.memory_source, found.memory) == ("MemTotal", 8 * GIB)
    proc, cgroup = fake_host(tmp_path / "bare", mem_total_kb=None, cgroup_line=None)
    found = read_host(proc, cgroup, affinity=1)
    assert found.memory_source.startswith("unknown") and concurrency_for(found.cpus, found.memory) == 3


def test_garbage_in_cgroup_files_is_ignored(tmp_path: Path) -> None:
    proc, cgroup = fake_host(tmp_path, files={f"{UNIT}/memory.max": "lots", f"{UNIT}/cpu.max": "x y"})
    found = read_host(proc, cgroup, affinity=2)
    assert (found.cpus, found.memory) == (2, 8 * GIB)


def test_the_settings_default_is_the_rule_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "auto_concurrency", lambda: 6)
    assert Settings().max_concurrency == 6 and Settings().warm_max == 6
    assert Settings.from_env({}).max_concurrency == 6
    assert Settings.from_env({"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "auto"}).max_concurrency == 6
    assert Settings.from_env({"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "auto"}).warm_max == 6
    explicit = Settings.from_env({"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "3"})
    assert (explicit.max_concurrency, explicit.warm_max) == (3, 3)  # WARM_MAX follows the cap
    both = Settings.from_env({"LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "3", "LITELLM_CLAUDE_CODE_WARM_MAX": "1"})
    assert (both.max_concurrency, both.warm_max) == (3, 1)
    auto_warm = Settings.from_env({"LITELLM_CLAUDE_CODE_WARM_MAX": "AUTO", "LITELLM_CLAUDE_CODE_MAX_CONCURRENCY": "5"})
    assert auto_warm.warm_max == 5
    assert Settings.from_env({"LITELLM_CLAUDE_CODE_WARM_MAX": "0"}).warm_max == 0  # still turns spares off


def test_the_default_on_this_machine_follows_the_rule() -> None:
    found = read_host()
    settings = Settings()
    assert settings.max_concurrency == concurrency_for(found.cpus, found.memory)
    assert settings.warm_max == settings.max_concurrency


def test_each_worker_logs_the_limits_in_force(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from litellm_claude_code._engine import Engine

    found = read_host()
    with caplog.at_level(logging.INFO, logger="litellm_claude_code"):
        Engine(Settings(state_dir=tmp_path, max_concurrency=5))
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("claude_code_limits ")]
    floor = min(floor_for(found.cpus), 5 - 1)
    auto = concurrency_for(found.cpus, found.memory)
    assert f"max_concurrency=5 warm_max=5 warm_floor={floor} warm_enabled=true auto={auto} " in line
    assert f"host='{found.describe()}'" in line
