"""The one interface every host probe talks through.

A transport runs an argument vector on a target and returns what it printed.
It owns quoting (``shlex.join``, once, here), privilege escalation (``sudo -n``),
the deadline for the whole exchange and the cap on what is read.  Probes
never import paramiko, subprocess or socket.

Exception tree (all map to a result with status ``error``)::

    TransportError                 the target could not be asked
    ├── ConnectError               unreachable, refused, DNS
    ├── AuthError                  key/agent refused, sudo needs a password
    ├── HostKeyError               unknown or changed host key
    ├── CommandTimeout             the command did not finish before its deadline
    └── OutputTooLarge             the command printed more than the cap (a judge never sees cut output)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024  # per stream; more is cut and flagged


class TransportError(Exception):
    """The target could not be asked; the message says why and which target."""


class ConnectError(TransportError):
    pass


class AuthError(TransportError):
    pass


class HostKeyError(TransportError):
    pass


class CommandTimeout(TransportError):
    pass


class OutputTooLarge(TransportError):
    pass


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_status: int
    stdout: bytes
    stderr: bytes
    duration_s: float
    truncated: bool = False  # output exceeded the cap and was cut
    sudo: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def err_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    @property
    def command_line(self) -> str:
        line = shlex.join(self.argv)
        return f"sudo -n {line}" if self.sudo else line


class Transport(Protocol):
    """How to reach a host.  Implementations: ``LocalTransport``, ``SSHTransport``."""

    name: str  # target name, for messages

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        sudo: bool = False,
        stdin: bytes | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        """Run ``argv`` (never a shell string) and return its exit status and output.

        ``timeout`` is a deadline for the whole exchange; on expiry the command
        is killed and ``CommandTimeout`` raised.  A non-zero exit status is not
        an exception: the probe decides what it means.
        """
        ...

    def close(self) -> None: ...


def shell_command(argv: Sequence[str], *, sudo: bool) -> str:
    """The single place where an argv becomes a shell line (for SSH exec)."""
    line = shlex.join(argv)
    return f"sudo -n -- {line}" if sudo else line
