"""Host key checking against known_hosts files, OpenSSH style.

Unknown key → ``HostKeyError`` unless the run trusts new keys (then the key is
appended to the first known_hosts file).  A key that differs from a recorded one
is refused always: that is what a man in the middle looks like.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import paramiko

from controlcheck.transports.base import HostKeyError
from controlcheck.transports.ssh_settings import Endpoint

_write_lock = threading.Lock()  # appends from parallel connections must not interleave


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def _load(files: Sequence[Path]) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    for f in files:
        p = f.expanduser()
        if p.is_file():
            try:
                keys.load(str(p))
            except (OSError, paramiko.SSHException):
                continue  # an unreadable file is like an absent one: the key stays unknown
    return keys


def _known_for(hop: Endpoint, files: Sequence[Path]) -> dict[str, paramiko.PKey]:
    entry = _load(files).lookup(hop.known_hosts_name)
    return dict(entry) if entry else {}


def prefer_known_key_types(transport: paramiko.Transport, hop: Endpoint,
                           files: Sequence[Path]) -> None:
    """Ask the server for the key type we already know, so a host with several host
    keys is not mistaken for one whose key changed."""
    known = list(_known_for(hop, files))
    if not known:
        return
    opts = transport.get_security_options()
    wanted: list[str] = []
    for kt in known:
        if kt == "ssh-rsa":
            wanted += [t for t in ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa") if t in opts.key_types]
        elif kt in opts.key_types:
            wanted.append(kt)
    if wanted:
        opts.key_types = tuple(wanted) + tuple(t for t in opts.key_types if t not in wanted)


def check_host_key(name: str, hop: Endpoint, offered: paramiko.PKey, files: Sequence[Path],
                   *, trust_new: bool) -> None:
    known = _known_for(hop, files)
    shown = ", ".join(str(f) for f in files)
    if not known:
        if trust_new:
            record_key(hop, offered, files)
            return
        raise HostKeyError(
            f"{name}: host key of {hop.known_hosts_name} is not in known_hosts ({shown}); "
            f"it offers {fingerprint(offered)}. Verify it out of band, then add it "
            "(ssh-keyscan, or rerun with --trust-new-host-keys)")
    same_type = known.get(offered.get_name())
    if same_type is not None and same_type == offered:
        return
    recorded = "; ".join(fingerprint(k) for k in known.values())
    raise HostKeyError(
        f"{name}: HOST KEY CHANGED for {hop.known_hosts_name}: known_hosts has {recorded}, "
        f"the server offers {fingerprint(offered)}. This may be an attack; if the change "
        f"is expected, remove the old entry (ssh-keygen -R '{hop.known_hosts_name}') and "
        "verify the new key")


def record_key(hop: Endpoint, key: paramiko.PKey, files: Sequence[Path]) -> None:
    """Append the key to the first known_hosts file (created 0600 if missing)."""
    if not files:
        raise HostKeyError(f"{hop.alias}: no known_hosts file to record the new key in")
    path = files[0].expanduser()
    line = f"{hop.known_hosts_name} {key.get_name()} {key.get_base64()}\n"
    with _write_lock:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
