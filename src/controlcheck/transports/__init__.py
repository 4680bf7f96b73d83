"""Transports: how to reach a host.  See ``base`` for the interface and errors."""

from controlcheck.transports.base import (
    AuthError,
    CommandResult,
    CommandTimeout,
    ConnectError,
    HostKeyError,
    Transport,
    TransportError,
)

__all__ = ["AuthError", "CommandResult", "CommandTimeout", "ConnectError", "HostKeyError",
           "Transport", "TransportError"]
