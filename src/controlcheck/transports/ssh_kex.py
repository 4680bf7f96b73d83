"""Read an SSH server's algorithm offer (its KEXINIT) without authenticating.

RFC 4253 §4.2 (banner) and §7.1 (SSH_MSG_KEXINIT): after the identification strings the
server sends its KEXINIT in clear text; we read it and hang up.  No key exchange, no
authentication, nothing written on the server but a log line.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from controlcheck.transports.base import ConnectError, TransportError

MAX_BANNER_LINES = 32
MAX_PACKET = 256 * 1024
NAME_LISTS = ("kex", "host_keys", "ciphers_c2s", "ciphers_s2c", "macs_c2s", "macs_s2c",
              "compression_c2s", "compression_s2c")


class NoSshServer(ConnectError):
    """Nothing listens on the port (connection refused)."""


@dataclass(frozen=True)
class KexInit:
    banner: str
    lists: dict[str, tuple[str, ...]]

    def offer(self) -> dict[str, list[str]]:
        """kex / host_keys / ciphers / macs, both directions merged in order."""
        def merged(*keys: str) -> list[str]:
            out: list[str] = []
            for k in keys:
                out += [a for a in self.lists.get(k, ()) if a not in out]
            return out
        return {"kex": merged("kex"), "host_keys": merged("host_keys"),
                "ciphers": merged("ciphers_c2s", "ciphers_s2c"),
                "macs": merged("macs_c2s", "macs_s2c")}


def parse_kexinit(payload: bytes, banner: str = "") -> KexInit:
    """Parse an SSH_MSG_KEXINIT payload (starting at the message number 20)."""
    if not payload or payload[0] != 20:
        raise ValueError(f"not a KEXINIT message (type {payload[:1].hex() or 'none'})")
    pos = 17  # message number + 16-byte cookie
    lists: dict[str, tuple[str, ...]] = {}
    for key in NAME_LISTS:
        (n,) = struct.unpack("!I", payload[pos:pos + 4])
        raw = payload[pos + 4:pos + 4 + n]
        if len(raw) != n:
            raise ValueError("truncated KEXINIT name-list")
        lists[key] = tuple(a for a in raw.decode("ascii").split(",") if a)
        pos += 4 + n
    return KexInit(banner, lists)


def read_kexinit(address: str, port: int, *, timeout: float) -> KexInit:
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        raise NoSshServer(f"{address}:{port}: connection refused (no SSH server)") from exc
    except OSError as exc:
        raise ConnectError(f"{address}:{port}: cannot connect: "
                           f"{'timed out' if isinstance(exc, TimeoutError) else exc}") from exc
    buf = b""

    def need(n: int) -> bytes:
        nonlocal buf
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(f"{address}:{port}: no KEXINIT within {timeout:g} s")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                raise TransportError(f"{address}:{port}: connection closed before KEXINIT")
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    try:
        sock.sendall(b"SSH-2.0-controlcheck_0.1\r\n")
        banner = ""
        for _ in range(MAX_BANNER_LINES):
            line = b""
            while not line.endswith(b"\n"):
                line += need(1)
                if len(line) > 255:
                    raise TransportError(f"{address}:{port}: not an SSH server "
                                         f"(first bytes {line[:20]!r})")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text.startswith("SSH-"):
                banner = text
                break
        else:
            raise TransportError(f"{address}:{port}: no SSH identification string")
        if not banner.startswith(("SSH-2.0-", "SSH-1.99-")):
            raise TransportError(f"{address}:{port}: not an SSH-2 server ({banner[:40]!r})")
        (length,) = struct.unpack("!I", need(4))
        if not 5 <= length <= MAX_PACKET:
            raise TransportError(f"{address}:{port}: implausible SSH packet length {length}")
        packet = need(length)
        payload = packet[1:length - packet[0]]
        return parse_kexinit(payload, banner)
    except (OSError, ValueError, struct.error) as exc:
        raise TransportError(f"{address}:{port}: cannot read the SSH algorithm offer: "
                             f"{'timed out' if isinstance(exc, TimeoutError) else exc}") from exc
    finally:
        sock.close()
