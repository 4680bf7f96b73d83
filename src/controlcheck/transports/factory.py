"""Choose and open the transport for a host target from its inventory entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlcheck.inventory import Target
from controlcheck.transports.base import Transport, TransportError
from controlcheck.transports.local import LocalTransport

if TYPE_CHECKING:
    from controlcheck.transports.ssh_jumps import JumpHosts
    from controlcheck.transports.ssh_settings import SSHOptions


def open_transport(target: Target, ssh_options: SSHOptions | None = None,
                   jumps: JumpHosts | None = None) -> Transport:
    """Open ``target``'s transport; ``ssh_options`` are the run's SSH settings and
    ``jumps`` its shared jump-host connections (the CLI binds both with
    ``functools.partial`` and closes ``jumps`` when the run ends)."""
    kind = target.spec.get("transport", "ssh")
    if kind == "local":
        return LocalTransport(target.name, prefix=target.spec.get("exec_prefix", ()),
                              use_sudo=bool(target.spec.get("sudo", False)))
    if kind == "ssh":
        try:
            from controlcheck.transports.ssh import open_ssh
        except ImportError as exc:
            raise TransportError(f"{target.name}: the SSH transport is not available ({exc})") \
                from exc
        return open_ssh(target, ssh_options, jumps)
    raise TransportError(f"{target.name}: unknown transport {kind!r}")
