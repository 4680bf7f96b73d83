"""One-shot host operations shared by the AV and backup probes.

``ctx.run`` memoises by argv, which is right for questions ("what is the sshd
config?") but wrong for actions that must happen each time: ``mktemp -d``
has to give a new directory, a scan has to see the file just written.  These
helpers go straight to the transport, record what they ran, and keep the few
writes a probe is allowed on a host (its own temp dir) in one place.

No shell line is ever built from a value: the only ``sh -c`` scripts here are
constants that take their operands as positional arguments (``"$1"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from controlcheck.probes.base import CheckContext
from controlcheck.transports.base import CommandResult

# Constant scripts; operands arrive as "$1", "$2"... never inside the script text.
_WRITE_STDIN_TO = 'umask 077 && cat > "$1"'
_STDIN_FROM_FILE = 'exec < "$1" && shift && exec "$@"'
_IN_DIR = 'cd "$1" && shift && exec "$@"'

TEMP_PREFIX = "controlcheck-"
# What ``mktemp -d -t controlcheck-<purpose>.XXXXXXXX`` prints: an absolute path whose
# last element we chose.  Anything else is refused before it reaches ``rm``.
_TEMP_RE = re.compile(r"^/(?:[^/\0]+/)*controlcheck-[a-z]+\.[A-Za-z0-9]{8}$")


class HostOpError(Exception):
    """A host operation the probe needs (temp dir, write) did not work."""


def run_fresh(ctx: CheckContext, argv: Sequence[str], *, stdin: bytes | None = None,
              record: bool = True, timeout: float | None = None) -> CommandResult:
    """Run ``argv`` now (never memoised) with the host's sudo setting; record it unless told.

    ``stdin`` is never recorded: it is how secrets and test content reach the host.
    """
    result = ctx.session.transport.run(
        list(argv), timeout=timeout or ctx.timeout, stdin=stdin,
        sudo=bool(ctx.target.spec.get("sudo", False)))
    if record:
        ctx.record_command(result)
    return result


def stdin_from_host_file(path: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` with its stdin read from ``path`` on the host."""
    return ["sh", "-c", _STDIN_FROM_FILE, "sh", path, *argv]


def in_directory(directory: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` with ``directory`` as working directory (borg extract)."""
    return ["sh", "-c", _IN_DIR, "sh", directory, *argv]


def make_temp_dir(ctx: CheckContext, purpose: str) -> str:
    """A new private directory on the host; its path is checked before any later ``rm``."""
    result = run_fresh(ctx, ["mktemp", "-d", "-t", f"{TEMP_PREFIX}{purpose}.XXXXXXXX"])
    path = result.text.strip()
    if not result.ok or not _TEMP_RE.match(path):
        raise HostOpError(f"mktemp -d failed (exit {result.exit_status}): "
                          f"{(result.err_text or result.text).strip()[:200]}")
    return path


def write_file(ctx: CheckContext, path: str, data: bytes, *, record: bool = True) -> None:
    """Write ``data`` to ``path`` on the host through stdin (content never in argv/evidence)."""
    result = run_fresh(ctx, ["sh", "-c", _WRITE_STDIN_TO, "sh", path], stdin=data, record=record)
    if not result.ok:
        raise HostOpError(f"cannot write {path} (exit {result.exit_status}): "
                          f"{result.err_text.strip()[:200]}")


def remove_temp_dir(ctx: CheckContext, path: str) -> CommandResult | None:
    """Remove a directory made by ``make_temp_dir`` (and only such a directory)."""
    if not _TEMP_RE.match(path):  # defensive: never rm anything we did not create
        return None
    return run_fresh(ctx, ["rm", "-rf", "--one-file-system", "--", path])
