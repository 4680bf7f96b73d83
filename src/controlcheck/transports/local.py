"""Run commands on this machine (or inside a lab host through a fixed prefix)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence

from controlcheck.transports.base import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIMEOUT_S,
    AuthError,
    CommandResult,
    CommandTimeout,
    TransportError,
)

_SUDO_PASSWORD_HINTS = (b"a password is required", b"a terminal is required")


class LocalTransport:
    """Runs an argv with a deadline on the whole exchange and capped reads.

    ``prefix`` (e.g. an ``nsenter`` argv) is prepended to every command; the
    test lab uses it to run the same probes inside a namespaced host.
    """

    def __init__(self, name: str = "localhost", *, prefix: Sequence[str] = (),
                 use_sudo: bool = False, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.prefix = tuple(prefix)
        self.use_sudo = use_sudo
        self._env = env

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        sudo: bool = False,
        stdin: bytes | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> CommandResult:
        escalate = sudo and self.use_sudo and os.geteuid() != 0
        full = list(self.prefix) + (["sudo", "-n", "--"] if escalate else []) + list(argv)
        env = dict(self._env) if self._env is not None else dict(os.environ)
        # Stable, parseable output whatever the user's locale.
        env.update({"LC_ALL": "C", "LANG": "C"})
        started = time.monotonic()
        deadline = started + timeout
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # so a timeout kills the whole process group
            )
        except FileNotFoundError:
            if escalate and full[len(self.prefix)] == "sudo":
                import shutil

                if shutil.which("sudo") is None:
                    raise AuthError(f"{self.name}: 'sudo: true' but sudo is not installed; "
                                    "install it or run controlcheck as root") from None
            return CommandResult(tuple(argv), 127, b"", f"{full[0]}: command not found".encode(),
                                 time.monotonic() - started, sudo=escalate)
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot start {argv[0]}: {exc.strerror}") from exc
        out, err, truncated = _collect(proc, stdin, deadline, max_output)
        duration = time.monotonic() - started
        if out is None:
            _kill_group(proc)
            raise CommandTimeout(
                f"{self.name}: {' '.join(argv)} did not finish within {timeout:g} s")
        status = proc.wait()
        if escalate and status != 0 and any(h in err for h in _SUDO_PASSWORD_HINTS):
            raise AuthError(f"{self.name}: sudo -n needs a password for {argv[0]}; "
                            "allow it NOPASSWD or run as root")
        return CommandResult(tuple(argv), status, out, err or b"", duration, truncated,
                             sudo=escalate)

    def close(self) -> None:
        return None


def _collect(proc: subprocess.Popen[bytes], stdin: bytes | None, deadline: float,
             cap: int) -> tuple[bytes | None, bytes, bool]:
    """Read both pipes until EOF, the deadline, or the cap (then kill)."""
    assert proc.stdout is not None and proc.stderr is not None
    if stdin is not None and proc.stdin is not None:
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = False
    with selectors.DefaultSelector() as sel:
        for f in (proc.stdout, proc.stderr):
            os.set_blocking(f.fileno(), False)
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", truncated
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[key.fd]
                room = cap - len(buf)
                buf += chunk[:room]
                if len(chunk) > room:
                    truncated = True
                    _kill_group(proc)
    # EOF on both pipes: the process is exiting; bound the wait by the deadline.
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None, b"", truncated
    return bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), truncated


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
