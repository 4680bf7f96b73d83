"""Helpers for the fleet tests and bench: lab hosts shaped into the variants the issue
asks for, servers inside a lab namespace, and generated inventories.

``tests/lab`` (owned by another engineer) provides hosts and zones; what it lacks is
a way to run a *Python* server inside a namespace, which ``NetnsServer`` adds: a
thread enters the namespace with ``setns(CLONE_NEWNET)`` (namespaces are per
thread on Linux) and binds its socket there, so the socket lives in the lab host's
network while the server code stays in the test process.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import Host, Lab  # noqa: E402

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

HARDENED_SSHD = ("PermitRootLogin no\nPasswordAuthentication no\nPermitEmptyPasswords no\n"
                 "KbdInteractiveAuthentication no\n")
WEAK_SSHD = "PermitRootLogin yes\nPasswordAuthentication yes\n"
# Default-deny input, SSH allowed (the lab's scanner connects to 22).
DEFAULT_DENY_NFT = """flush ruleset
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    tcp dport 22 accept
  }
}
"""


def _enter_netns(netns: str) -> None:
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsServer:
    """Run ``make_socket_server()`` in a thread that lives in ``netns``."""

    def __init__(self, netns: str, serve: Callable[[threading.Event], None]) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

        def main() -> None:
            try:
                _enter_netns(netns)
                serve_ready = self._ready
                serve_ready.set()
                serve(self._stop)
            except BaseException as exc:  # surfaced by start()
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=main, daemon=True)

    def start(self) -> NetnsServer:
        self._thread.start()
        self._ready.wait(5)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def silent_listener(address: str, port: int, bound: threading.Event) -> Callable[
        [threading.Event], None]:
    """Accept TCP connections and never say anything: a hung 'SSH server'."""
    def serve(stop: threading.Event) -> None:
        srv = socket.create_server((address, port))
        srv.settimeout(0.2)
        bound.set()
        held = []
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except TimeoutError:
                continue
        for c in held:
            c.close()
        srv.close()
    return serve


def http_server(address: str, port: int, handler: type[BaseHTTPRequestHandler],
                bound: threading.Event) -> Callable[[threading.Event], None]:
    def serve(stop: threading.Event) -> None:
        srv = ThreadingHTTPServer((address, port), handler)
        srv.timeout = 0.2
        bound.set()
        while not stop.is_set():
            srv.handle_request()
        srv.server_close()
    return serve


def host_entry(lab: Lab, host: Host, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": host.name, "address": host.address, "transport": "ssh",
        "user": "auditor", "key_file": str(lab.client_key_path), "sudo": True,
        "known_hosts": str(lab.known_hosts_path), "timeout": 8,
    }
    entry.update(extra)
    return entry


def write_inventory(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def harden(host: Host, *, nft: str | None = DEFAULT_DENY_NFT) -> None:
    """A compliant host: hardened sshd, default-deny firewall (before start)."""
    host.write_file("/etc/ssh/sshd_config.d/10-hardened.conf", HARDENED_SSHD)
    if nft is not None:
        host.write_file("/etc/nftables.conf", nft)


def load_nft(host: Host, ruleset: str = DEFAULT_DENY_NFT) -> None:
    """Load a ruleset into the running host's own network namespace."""
    host.exec(["nft", "-f", "-"], input=ruleset)
