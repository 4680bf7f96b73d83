"""A hostile SSH server: it authenticates, opens the session channel, then never
answers the exec request.  paramiko's client would wait for that answer forever;
the transport's deadline must still hold.  The server is paramiko's real server
implementation on 127.0.0.1, made to stall in its exec handler."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from controlcheck.inventory import Target
from controlcheck.model import TargetKind
from controlcheck.transports.base import CommandTimeout
from controlcheck.transports.ssh import open_ssh
from controlcheck.transports.ssh_settings import SSHOptions


class _StallOnExec(paramiko.ServerInterface):
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.release.wait(60)  # never answers while the test runs
        return False


@pytest.fixture
def stalling_server(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    host_key = paramiko.Ed25519Key.from_private_key_file(_write_key(tmp_path / "host"))
    client_key_path = _write_key(tmp_path / "client")
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    transports: list[paramiko.Transport] = []
    channels: list[paramiko.Channel | None] = []  # held: a collected channel closes itself

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        t = paramiko.Transport(conn)
        t.add_server_key(host_key)
        transports.append(t)
        t.start_server(server=_StallOnExec(release))
        channels.append(t.accept(10))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, client_key_path, known
    release.set()
    listener.close()
    for t in transports:
        t.close()


def _write_key(path: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return str(path)


def test_unanswered_exec_request_times_out(stalling_server: tuple[int, Path, Path]) -> None:
    port, key, known = stalling_server
    target = Target("stall", TargetKind.HOST, {"name": "stall", "address": "127.0.0.1",
                                                "port": port, "user": "audit",
                                                "key_file": str(key)})
    options = SSHOptions(known_hosts=(known,), ssh_config=None, use_agent=False,
                         connect_timeout=5, banner_timeout=5, auth_timeout=5)
    transport = open_ssh(target, options)
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout, match="did not answer the command"):
            transport.run(["uname", "-a"], timeout=1.5)
        assert time.monotonic() - t0 < 5
    finally:
        transport.close()
