"""CPU figures from /proc for the benchmarks (Linux): they do not depend on what else the machine is
doing, unlike wall-clock rates. Imported by the bench scripts, which run with bench/ on sys.path."""

from __future__ import annotations

import os
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def stat(pid: int | str) -> tuple[int, float] | None:
    """(ppid, CPU seconds the process has used: user + system) from /proc/<pid>/stat; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK


def cpu_seconds(pid: int | str) -> float:
    """CPU seconds the process has used (0 once it is gone)."""
    found = stat(pid)
    return found[1] if found else 0.0


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every user's processes): all but idle and iowait."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK


def pid_file(path: Path) -> int | None:
    """The pid on the first line of a pid file (e.g. PostgreSQL's postmaster.pid), or None."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
