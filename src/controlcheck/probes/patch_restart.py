"""Processes still running code from deleted (upgraded) shared libraries.

An upgrade replaces ``libssl.so.3``; a process started before keeps the old, now
deleted file mapped and stays vulnerable until it restarts.  ``/proc/PID/maps``
marks such mappings `` (deleted)``.  Only system library directories count:
memfd, ``/dev/shm`` and ``/tmp`` mappings are deleted by design, not upgrades.
Pure functions here; the collector in ``patch_collect`` reads ``/proc``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

LIB_DIRS = ("/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/")
_MAPS_LINE = re.compile(r"^/proc/(?P<pid>\d+)/maps:\S+ \S+ \S+ \S+ \S+\s+(?P<path>/.*) \(deleted\)$")


@dataclass(frozen=True)
class DeletedLib:
    pid: int
    comm: str
    path: str


def is_system_library(path: str) -> bool:
    name = posixpath.basename(path)
    return path.startswith(LIB_DIRS) and (name.endswith(".so") or ".so." in name)


def parse_deleted_maps(grep_text: str) -> dict[int, list[str]]:
    """``grep -H ' (deleted)$' /proc/*/maps`` → {pid: [deleted system library paths]}."""
    out: dict[int, list[str]] = {}
    for line in grep_text.splitlines():
        m = _MAPS_LINE.match(line)
        if not m or not is_system_library(m.group("path")):
            continue
        libs = out.setdefault(int(m.group("pid")), [])
        if m.group("path") not in libs:
            libs.append(m.group("path"))
    return out


def parse_comms(grep_text: str) -> dict[int, str]:
    """``grep -H '' /proc/PID/comm…`` → {pid: comm}."""
    out: dict[int, str] = {}
    for line in grep_text.splitlines():
        m = re.match(r"^/proc/(\d+)/comm:(.*)$", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def unreadable_pids(grep_stderr: str) -> list[int]:
    """Processes whose maps grep could not read (not root, ptrace restrictions)."""
    return sorted({int(m.group(1)) for m in re.finditer(
        r"/proc/(\d+)/maps: Permission denied", grep_stderr)})


def describe(libs: tuple[DeletedLib, ...], limit: int = 10) -> str:
    """"sshd (pid 812): /usr/lib/x86_64-linux-gnu/libssl.so.3; …", capped."""
    by_pid: dict[tuple[int, str], list[str]] = {}
    for lib in libs:
        by_pid.setdefault((lib.pid, lib.comm), []).append(lib.path)
    items = [f"{comm or '?'} (pid {pid}): {', '.join(paths[:3])}"
             + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
             for (pid, comm), paths in sorted(by_pid.items())]
    more = f"; and {len(items) - limit} more process(es)" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more
