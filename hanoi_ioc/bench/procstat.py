"""Process figures from ``/proc``: CPU seconds, peak and current memory, machine facts."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = [
    "Machine",
    "busy_cores_s",
    "child_pids",
    "cpu_s",
    "machine",
    "memory_mb",
    "peak_rss_mb",
    "stolen_cores_s",
]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (a PostgreSQL postmaster's backends)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent:
                out.append(int(entry.name))
    return out


def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The process's peak resident memory (VmHWM), MB."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def memory_mb(pid: int | str = "self") -> float | None:
    """The process's resident memory now (VmRSS), MB."""
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


Machine = dict[str, object]


def machine() -> Machine:
    """CPU count and model, RAM, kernel and Python: the facts a figure needs beside it."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    load1 = float(Path("/proc/loadavg").read_text().split()[0])
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_1m_at_start": load1,
    }


def _cpu_fields() -> list[int]:
    # user nice system idle iowait irq softirq steal guest guest_nice (guest time is also
    # counted in user and nice)
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busy_cores_s() -> float:
    """The machine's busy CPU seconds so far (all cores; idle, iowait and steal excluded)."""
    fields = _cpu_fields()
    return (sum(fields) - fields[3] - fields[4] - fields[7]) / _TICK


def stolen_cores_s() -> float:
    """CPU seconds stolen by the hypervisor so far (all cores).

    Time other guests ran while ours waited to: on a virtual machine, the share of "our"
    cores we did not get.
    """
    return _cpu_fields()[7] / _TICK
