"""The run's connections to jump hosts, shared by every target behind them.

Without this, each target behind a bastion logged in to the bastion again: 200
hosts behind one bastion were 200 bastion logins.  Here a jump chain is
connected once per run and each target gets a ``direct-tcpip`` channel on it
(paramiko multiplexes channels on one connection, from any thread).

A connection is keyed by the chain up to that hop *and* the known_hosts files
that verified it, so a target never rides on a bastion connection whose host
key was checked against files other than its own.  A failed hop is remembered
for the run: a bastion that refuses our key is asked once, not once per target.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from controlcheck.transports.base import TransportError
from controlcheck.transports.ssh_settings import Endpoint, Route, SSHOptions

_Key = tuple[tuple[Endpoint, ...], tuple[Path, ...]]
# (label for messages, hop, route, options, via) -> authenticated connection
HopOpener = Callable[[str, Endpoint, Route, SSHOptions, "paramiko.Transport | None"],
                     paramiko.Transport]


class JumpHosts:
    """Thread-safe pool of jump-host connections for one run; ``close()`` at its end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[_Key, threading.Lock] = {}
        self._conns: dict[_Key, paramiko.Transport] = {}
        self._failed: dict[_Key, TransportError] = {}
        self.opened = 0  # logins made, for tests and the bench

    def connect(self, name: str, route: Route, options: SSHOptions,
                open_hop: HopOpener) -> paramiko.Transport | None:
        """The connection to the last jump host of ``route`` (None: no jumps)."""
        via: paramiko.Transport | None = None
        for i, hop in enumerate(route.jumps):
            key: _Key = (route.jumps[:i + 1], route.known_hosts)
            with self._lock:
                gate = self._gates.setdefault(key, threading.Lock())
            with gate:  # one login per hop; other chains connect in parallel
                via = self._hop(key, name, hop, route, options, open_hop, via)
        return via

    def _hop(self, key: _Key, name: str, hop: Endpoint, route: Route, options: SSHOptions,
             open_hop: HopOpener, via: paramiko.Transport | None) -> paramiko.Transport:
        with self._lock:
            failed = self._failed.get(key)
            conn = self._conns.get(key)
        if failed is not None:
            # Same exception type, this target's name: the reason is the jump host's.
            raise type(failed)(f"{name}: {failed}")
        if conn is not None and conn.is_active():
            return conn
        try:
            conn = open_hop(f"jump host {hop.alias}", hop, route, options, via)
        except TransportError as exc:
            with self._lock:
                self._failed[key] = exc
            raise type(exc)(f"{name}: {exc}") from None
        with self._lock:
            self._conns[key] = conn
            self.opened += 1
        return conn

    def close(self) -> None:
        with self._lock:
            # Last hop first: an inner connection runs over an outer one's channel.
            conns = sorted(self._conns.items(), key=lambda kv: -len(kv[0][0]))
            self._conns = {}
        for _, conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
