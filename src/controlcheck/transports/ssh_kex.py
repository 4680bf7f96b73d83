"""Read an SSH server's algorithm offer (its KEXINIT) and host keys without authenticating.

RFC 4253 §4.2 (banner) and §7.1 (SSH_MSG_KEXINIT): after the identification strings the
server sends its KEXINIT in clear text; we read it and hang up.  No key exchange, no
authentication, nothing written on the server but a log line.

``fetch_host_key`` goes one step further for one host-key algorithm: it completes a key
exchange (paramiko), which makes the server send — and prove it holds, by signing the
exchange hash — its host key of that type; then it hangs up before any authentication.
The algorithm *name* (``rsa-sha2-256``) says nothing about the key size; only the key does.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controlcheck.transports.base import ConnectError, TransportError

if TYPE_CHECKING:
    import paramiko

MAX_BANNER_LINES = 32
MAX_PACKET = 256 * 1024
NAME_LISTS = ("kex", "host_keys", "ciphers_c2s", "ciphers_s2c", "macs_c2s", "macs_s2c",
              "compression_c2s", "compression_s2c")


# As in transports/ssh.py: paramiko's own log lines are not ours to print (the reason of a
# failed exchange reaches the caller in the exception).  paramiko itself is imported where
# it is used, so that the judges importing HostKeyInfo stay cheap to import.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


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


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """TCP to the SSH port; a refused connection means there is no SSH server."""
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        raise NoSshServer(f"{address}:{port}: connection refused (no SSH server)") from exc
    except OSError as exc:
        raise ConnectError(f"{address}:{port}: cannot connect: "
                           f"{'timed out' if isinstance(exc, TimeoutError) else exc}") from exc


def read_kexinit(address: str, port: int, *, timeout: float) -> KexInit:
    deadline = time.monotonic() + timeout
    sock = _connect(address, port, timeout)
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


#: RSA host-key algorithms (RFC 4253 ssh-rsa, RFC 8332 rsa-sha2-*, OpenSSH certificates):
#: all carry an "ssh-rsa" key, whose size the algorithm name does not show.
RSA_HOST_KEY_ALGORITHMS = ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512",
                           "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
                           "rsa-sha2-512-cert-v01@openssh.com")
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


@dataclass(frozen=True)
class HostKeyInfo:
    """A server host key as read in a key exchange (public part only)."""

    algorithm: str  # host-key algorithm negotiated, e.g. rsa-sha2-256
    key_type: str  # key format from the blob, e.g. ssh-rsa, ssh-ed25519
    bits: int  # RSA/DSA modulus size, EC curve size, 256 for Ed25519
    sha256: str  # "SHA256:<base64>", as ssh-keygen -l prints it

    def as_fact(self) -> dict[str, object]:
        return {"algorithm": self.algorithm, "key_type": self.key_type, "bits": self.bits,
                "sha256": self.sha256}


def _ssh_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = struct.unpack("!I", blob[pos:pos + 4])
    raw = blob[pos + 4:pos + 4 + n]
    if len(raw) != n:
        raise ValueError("truncated SSH public key blob")
    return raw, pos + 4 + n


#: How many SSH strings/mpints make up the key fields of each key format (RFC 4253 §6.6,
#: RFC 5656 §3.1, RFC 8709 §4, OpenSSH PROTOCOL.u2f).
_KEY_FIELDS = {"ssh-rsa": 2, "ssh-dss": 4, "ecdsa-sha2-nistp256": 2, "ecdsa-sha2-nistp384": 2,
               "ecdsa-sha2-nistp521": 2, "ssh-ed25519": 1, "sk-ssh-ed25519@openssh.com": 2,
               "sk-ecdsa-sha2-nistp256@openssh.com": 3}
_CERT_SUFFIX = "-cert-v01@openssh.com"


def describe_host_key(algorithm: str, blob: bytes) -> HostKeyInfo:
    """Key type, size and fingerprint of an SSH public key blob (RFC 4253 §6.6 format).

    Pure: the same blob ``ssh-keygen`` writes base64-encoded in a ``.pub`` file.  A
    certificate (``*-cert-v01@openssh.com``) is described by the key it certifies, with
    that key's fingerprint, as ``ssh-keygen -l`` does.
    """
    name_raw, pos = _ssh_string(blob, 0)
    key_type = name_raw.decode("ascii")
    if key_type.endswith(_CERT_SUFFIX):
        _nonce, pos = _ssh_string(blob, pos)  # certificate: nonce, then the key fields
        key_type = key_type[:-len(_CERT_SUFFIX)]
        if key_type.startswith("sk-"):
            key_type += "@openssh.com"
    if key_type not in _KEY_FIELDS:
        raise ValueError(f"unknown host key type {key_type[:40]!r}")
    fields: list[bytes] = []
    start = pos
    for _ in range(_KEY_FIELDS[key_type]):
        value, pos = _ssh_string(blob, pos)
        fields.append(value)
    plain = struct.pack("!I", len(key_type)) + key_type.encode() + blob[start:pos]
    if key_type in ("ssh-rsa", "ssh-dss"):
        # RSA: e, n (the modulus gives the size); DSA: p, q, g, y (p gives it).
        bits = int.from_bytes(fields[1] if key_type == "ssh-rsa" else fields[0], "big")\
            .bit_length()
    elif "ecdsa-sha2-" in key_type:
        bits = _CURVE_BITS.get(fields[0].decode("ascii", "replace"), 0)
        if not bits:
            raise ValueError(f"unknown ECDSA curve {fields[0][:20]!r}")
    else:
        bits = 256  # Ed25519
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(plain).digest()).decode().rstrip("=")
    return HostKeyInfo(algorithm, key_type, bits, fp)


def client_can_fetch(algorithm: str) -> bool:
    """Whether ``fetch_host_key`` can negotiate this host-key algorithm at all."""
    import paramiko

    # The table SecurityOptions.key_types is checked against (paramiko has no public one).
    known: dict[str, object] = getattr(paramiko.Transport, "_key_info", {})
    return algorithm in known


def fetch_host_key(address: str, port: int, algorithm: str, *, timeout: float) -> HostKeyInfo:
    """Complete a key exchange offering only ``algorithm`` and return the server's key.

    No authentication is attempted: we close as soon as the key exchange is done (the
    server logs a pre-auth disconnect).  ``timeout`` bounds the whole exchange.
    """
    import paramiko

    if not client_can_fetch(algorithm):
        raise TransportError(f"{address}:{port}: cannot read the {algorithm} host key: "
                             "this client does not implement that algorithm")
    deadline = time.monotonic() + timeout
    sock = _connect(address, port, timeout)
    transport: paramiko.Transport | None = None
    try:
        transport = paramiko.Transport(sock)
        left = max(deadline - time.monotonic(), 0.01)
        transport.banner_timeout = left
        transport.handshake_timeout = left
        transport.get_security_options().key_types = (algorithm,)
        transport.start_client(timeout=left)
        # start_client returns without raising when its timeout passes mid-exchange.
        if not transport.is_active() or not transport.initial_kex_done:
            raise TransportError(f"{address}:{port}: key exchange for the {algorithm} host key "
                                 f"not finished within {timeout:g} s")
        key = transport.get_remote_server_key()
        return describe_host_key(algorithm, key.asbytes())
    except TransportError:
        raise
    except (paramiko.SSHException, OSError, EOFError, ValueError, struct.error) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
        raise TransportError(f"{address}:{port}: cannot read the {algorithm} host key "
                             f"(key exchange failed: {reason})") from exc
    finally:
        if transport is not None:
            transport.close()
        sock.close()
