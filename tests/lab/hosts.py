"""A fleet of throw-away Linux hosts on one machine, for end-to-end tests and benches.

Each *host* is a network namespace on a private bridge plus a private mount, UTS, PID and
IPC namespace in which ``/etc``, ``/var``, ``/usr``, ``/home`` and ``/root`` are overlay
mounts over the real directories. A host therefore sees the machine's installed software
but keeps its own files (only the differences live in its overlay *upper* directory), its
own hostname, its own nftables ruleset and its own ``sshd``. That is enough to run
controlcheck against several hosts that really differ, over real SSH, in about 0.1 s per
host instead of the 30 s and 240 MB a debootstrap per host costs.

Nothing here routes anywhere: the namespaces have no default route and the bridge is not
connected to any physical interface, so traffic stays on the lab's own ``10.200.N.0/24``.

Everything needs root. The module is plain Python (no pytest) so a bench script can use it.
See ``/work/shared/LAB.md`` for the recipe this implements.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "AUDITOR",
    "OVERLAY_DIRS",
    "RUN_DIR",
    "Host",
    "Lab",
    "LabCommandError",
    "LabError",
    "Zone",
    "cleanup_stale",
    "sshd_lab_lines",
]

#: Directories that are overlay mounts inside every host; files can only be placed here.
OVERLAY_DIRS: tuple[str, ...] = ("etc", "var", "usr", "home", "root")
#: Marker files (one JSON file per live lab) and the allocation lock live here, in the
#: *real* /run: hosts mount their own tmpfs on /run and never see it.
RUN_DIR = Path("/run/controlcheck-lab")
#: The unprivileged login every host gets (group sudo, NOPASSWD sudo).
AUDITOR = "auditor"

SSHD = "/usr/sbin/sshd"
#: Inside a host the sshd log is written here; from outside it is under the upper dir.
SSHD_LOG = "/var/log/lab-sshd.log"
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_DEADLINE = 10.0

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")
_BRIDGE_RE = re.compile(r"^ccbr([0-9a-f]{4})$")
_NETNS_RE = re.compile(r"^cc([0-9a-f]{4})-[a-z0-9-]+$")
_FIRST_HOST_OCTET = 11
_LAST_HOST_OCTET = 199
_FIRST_ZONE_OCTET = 201
_LAST_ZONE_OCTET = 250


class LabError(RuntimeError):
    """Setting up or driving the lab failed; the message carries the relevant log tails."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run inside a host or zone failed.

    Unlike ``CalledProcessError`` the message includes stderr/stdout, because in a test
    failure the command's own complaint is nearly always the useful part.
    """

    def __str__(self) -> str:
        parts = [super().__str__()]
        for label, value in (("stderr", self.stderr), ("stdout", self.output)):
            if value:
                text = value.decode(errors="replace") if isinstance(value, bytes) else value
                parts.append(f"{label}: {_tail(text, 1500)}")
        return "\n".join(parts)


# --------------------------------------------------------------------------- helpers


def _tail(text: str, limit: int = 3000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _file_tail(path: Path, limit: int = 3000) -> str:
    try:
        return _tail(path.read_text(errors="replace"), limit) or "(empty)"
    except OSError as exc:
        return f"(unreadable: {exc})"


def _run(argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
    """Run a setup command in the root namespaces; failures raise LabError with stderr."""
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _ip_batch(lines: Sequence[str]) -> None:
    """Best-effort ``ip -force -batch``: one fork for many deletions, errors ignored."""
    if lines:
        _run(["ip", "-force", "-batch", "-"], check=False, input="\n".join(lines) + "\n")


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid``; the start time tells a pid from its reuse."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = data.rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _proc_starttime(pid: int) -> int | None:
    info = _proc_stat(pid)
    return info[1] if info else None


def _alive(pid: int, starttime: int | None) -> bool:
    """True if ``pid`` is the same, not yet dead process (zombies count as dead)."""
    info = _proc_stat(pid)
    if info is None or info[0] in ("Z", "X"):
        return False
    return starttime is None or info[1] == starttime


def _kill_verified(pid: int, starttime: int | None) -> None:
    if pid > 1 and _alive(pid, starttime):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _netns_list() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line]


def _bridges() -> list[str]:
    out = _run(["ip", "-o", "link", "show", "type", "bridge"])
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def _netns_pids(netns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", netns], check=False)
    return [int(x) for x in out.split() if x.isdigit()]


def _kill_netns_processes(netns: str) -> None:
    for pid in _netns_pids(netns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _rmtree(path: Path) -> None:
    """Remove a lab temp dir; overlay work dirs (mode 000, sometimes busy) get ``rm -rf``."""
    if not path.exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True, check=False)


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network already on an interface or in a route of the root namespace."""
    nets: list[ipaddress.IPv4Network] = []
    for line in _run(["ip", "-o", "-4", "addr", "show"]).splitlines():
        m = re.search(r"\binet (\S+)", line)
        if m:
            nets.append(ipaddress.IPv4Interface(m.group(1)).network)
    for line in _run(["ip", "-4", "route", "show", "table", "all"], check=False).splitlines():
        token = line.split(" ", 1)[0] if line else ""
        if token and token[0].isdigit():
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(token, strict=False))
    return nets


@contextlib.contextmanager
def _global_lock() -> Iterator[None]:
    """Serialise id/subnet allocation and stale cleanup between concurrent test runs."""
    RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(RUN_DIR / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_markers() -> dict[str, dict]:
    markers: dict[str, dict] = {}
    if not RUN_DIR.is_dir():
        return markers
    for path in RUN_DIR.glob("*.json"):
        try:
            markers[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            markers[path.stem] = {}
    return markers


def _marker_alive(data: dict) -> bool:
    pid = data.get("pid")
    return isinstance(pid, int) and _alive(pid, data.get("starttime"))


def _destroy_recorded(labid: str, data: dict) -> None:
    """Remove everything a (dead) lab's marker lists, plus anything named after its id."""
    for pid, st in data.get("processes", []):
        _kill_verified(int(pid), st)
    netns = set(data.get("netns", []))
    netns.update(n for n in _netns_list() if n.startswith(f"cc{labid}-"))
    for ns in netns:
        _kill_netns_processes(ns)
    lines = [f"link del {v}" for v in data.get("veths", [])]
    lines += [f"netns del {ns}" for ns in sorted(netns)]
    lines.append(f"link del {data.get('bridge') or f'ccbr{labid}'}")
    _ip_batch(lines)
    tmpdir = data.get("tmpdir")
    if tmpdir and Path(tmpdir).name.startswith("cclab-"):
        _rmtree(Path(tmpdir))


def cleanup_stale() -> list[str]:
    """Remove labs left behind by runs that died without teardown (SIGKILL, OOM, reboot).

    A lab is stale when the pid recorded in its marker ``/run/controlcheck-lab/<id>.json``
    is dead (pid *and* start time are compared, so pid reuse does not keep it alive).
    ``ccbr<id>`` bridges and ``cc<id>-*`` namespaces without any marker are stale too:
    markers are written before those objects exist and removed after they are gone.
    Labs whose owner is alive, including other concurrent test runs, are never touched.
    Returns the lab ids removed.
    """
    removed: list[str] = []
    with _global_lock():
        markers = _read_markers()
        for labid, data in markers.items():
            if _marker_alive(data):
                continue
            _destroy_recorded(labid, data)
            with contextlib.suppress(FileNotFoundError):
                (RUN_DIR / f"{labid}.json").unlink()
            removed.append(labid)
        orphans: set[str] = set()
        for br in _bridges():
            m = _BRIDGE_RE.match(br)
            if m and m.group(1) not in markers:
                orphans.add(m.group(1))
        for ns in _netns_list():
            m = _NETNS_RE.match(ns)
            if m and m.group(1) not in markers:
                orphans.add(m.group(1))
        for labid in sorted(orphans):
            _destroy_recorded(labid, {})
            removed.append(labid)
    return removed


def sshd_lab_lines(address: str) -> str:
    """The sshd lines the lab needs in every host, to put first in any replacement config.

    For most sshd keywords the first value wins, so these come before the ``Include``;
    a test that rewrites ``/etc/ssh/sshd_config`` wholesale should keep them on top.
    ``AuthorizedKeysFile`` points at ``/etc/ssh/authorized_keys/%u`` because StrictModes
    rejects keys in world-writable trees such as /tmp.
    """
    return (
        f"ListenAddress {address}\n"
        "AuthorizedKeysFile /etc/ssh/authorized_keys/%u .ssh/authorized_keys\n"
        "PidFile /run/sshd.pid\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
    )


def _default_sshd_config(address: str) -> str:
    # Defaults after the Include so files in sshd_config.d/ (which tests write to make a
    # host weak or hardened) take precedence. Ciphers stay at OpenSSH's default, which
    # keeps aes*-ctr and aes*-gcm available for paramiko (no chacha20-poly1305 there).
    return (
        "# controlcheck test lab. Lab lines first: sshd keeps the first value it reads.\n"
        + sshd_lab_lines(address)
        + "\nInclude /etc/ssh/sshd_config.d/*.conf\n\n"
        "# Lab defaults; override them from /etc/ssh/sshd_config.d/*.conf.\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM yes\n"
        "X11Forwarding yes\n"
        "PrintMotd no\n"
        "AcceptEnv LANG LC_*\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def _ed25519_openssh(comment: str) -> tuple[bytes, str]:
    """A new ed25519 key as (OpenSSH private key PEM, ``ssh-ed25519 AAAA… comment``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def _ssh_banner(address: str, port: int = 22, timeout: float = 0.5) -> str | None:
    """The SSH identification line if something answers like sshd, else None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line if line.startswith("SSH-") else None


def _rel(path: str | os.PathLike[str]) -> PurePosixPath:
    """Map an absolute in-host path to its path relative to the overlay roots."""
    p = PurePosixPath(os.fspath(path))
    if not p.is_absolute() or ".." in p.parts:
        raise ValueError(f"{path}: need an absolute path without '..'")
    rel = p.relative_to("/")
    if len(rel.parts) < 2 or rel.parts[0] not in OVERLAY_DIRS:
        raise ValueError(f"{path}: only files below /{{{','.join(OVERLAY_DIRS)}}} are per host")
    return rel


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# --------------------------------------------------------------------------- zones


@dataclass
class Zone:
    """A bare network namespace on the lab bridge (no sshd, no overlays).

    Used to run a TCP connect *from* somewhere else than the scanner, e.g. "internet"
    in firewall tests. Processes in it share the real machine's files.
    """

    name: str
    netns: str
    address: str
    veth: str

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]


# --------------------------------------------------------------------------- hosts


class Host:
    """One lab host. Create it with :meth:`Lab.add_host`, shape its files, then start it.

    File helpers write straight into the overlay upper directory while the host is
    stopped. While it runs they go through :meth:`exec` instead, because changing an
    overlay's upper dir under a live mount is undefined behaviour (stale dentries).
    """

    def __init__(self, lab: Lab, name: str, index: int, address: str) -> None:
        self.lab = lab
        self.name = name
        self.index = index
        self.address = address
        self.netns = f"cc{lab.id}-{name}"
        self.veth = f"cv{lab.id}h{index}"
        self.dir = lab.tmpdir / "hosts" / name
        #: Upper dir of the overlays: ``root_upper / "etc/ssh/sshd_config"`` is the
        #: host's own copy of ``/etc/ssh/sshd_config`` (only if it differs from the real).
        self.root_upper = self.dir / "upper"
        self.work = self.dir / "work"
        self.start_log = self.dir / "start.log"
        #: Mount a private tmpfs on /tmp (real hosts do not share /tmp with the scanner).
        self.private_tmp = True
        #: Port sshd listens on; set it when a test moves sshd (``Port 2222``) so that
        #: start(), known_hosts and ssh_argv() follow.
        self.ssh_port = 22
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid1: int | None = None
        self._pid1_start: int | None = None

    def __repr__(self) -> str:
        state = f"pid1={self._pid1}" if self.running else "stopped"
        return f"<Host {self.name} {self.address} {state}>"

    # -- files ----------------------------------------------------------------------

    @property
    def sshd_log_path(self) -> Path:
        return self.root_upper / SSHD_LOG.lstrip("/")

    @property
    def sshd_lab_lines(self) -> str:
        return sshd_lab_lines(self.address)

    def _ensure_upper_dir(self, rel: PurePosixPath) -> Path:
        """Create ``rel`` (a directory) in the upper dir, copying mode/owner from the real
        directory like overlay copy-up does; otherwise the merged view would show e.g.
        /etc/sudoers.d with our mkdir mode instead of the real one."""
        upper = self.root_upper
        real = Path("/")
        for part in rel.parts:
            upper = upper / part
            real = real / part
            try:
                ust = os.lstat(upper)
            except FileNotFoundError:
                ust = None
            if ust is not None and stat.S_ISDIR(ust.st_mode):
                continue
            opaque = False
            if ust is not None:
                if not _is_whiteout(ust):
                    raise ValueError(f"/{rel}: /{upper.relative_to(self.root_upper)} is a file")
                upper.unlink()  # a removed directory comes back empty
                opaque = True
            try:
                rst = os.lstat(real)
            except FileNotFoundError:
                rst = None
            if rst is not None and stat.S_ISLNK(rst.st_mode):
                raise ValueError(
                    f"/{rel}: /{real.relative_to('/')} is a symlink on the real machine; "
                    "use the path it points to"
                )
            if rst is not None and not stat.S_ISDIR(rst.st_mode):
                raise ValueError(f"/{rel}: {real} is not a directory on the real machine")
            os.mkdir(upper)
            if rst is not None:
                os.chown(upper, rst.st_uid, rst.st_gid)
                os.chmod(upper, stat.S_IMODE(rst.st_mode))
            else:
                os.chmod(upper, 0o755)
            if opaque:
                os.setxattr(upper, "trusted.overlay.opaque", b"y")
        return upper

    def write_file(
        self,
        path: str | os.PathLike[str],
        text: str | bytes,
        mode: int = 0o644,
        *,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        """Give this host its own version of ``path`` (must be below an overlay dir)."""
        rel = _rel(path)
        data = text.encode() if isinstance(text, str) else text
        if self.running:
            script = (
                'set -e; mkdir -p -- "$(dirname -- "$1")"; t="$1.lab-tmp.$$"; cat >"$t"; '
                'chown "$2" "$t"; chmod "$3" "$t"; mv -f -- "$t" "$1"'
            )
            self.exec(
                ["sh", "-c", script, "lab-write", f"/{rel}", f"{uid}:{gid}", f"{mode:o}"],
                input=data,
                text=False,
            )
            return
        self._ensure_upper_dir(rel.parent)
        target = self.root_upper / rel
        if target.is_dir() and not target.is_symlink():
            raise IsADirectoryError(f"/{rel} is a directory in this host")
        tmp = target.with_name(f".{target.name}.lab-tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, target)

    def remove_file(self, path: str | os.PathLike[str]) -> None:
        """Make ``path`` (file or directory) absent in this host via an overlay whiteout."""
        rel = _rel(path)
        if self.running:
            self.exec(["rm", "-rf", "--", f"/{rel}"])
            return
        self._ensure_upper_dir(rel.parent)
        target = self.root_upper / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        if os.path.lexists(Path("/") / rel):
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def make_opaque_dir(self, path: str | os.PathLike[str]) -> None:
        """Hide every real entry of directory ``path`` in this host (files written here
        by the lab or the test stay). Typical use: a host with its own apt sources."""
        rel = _rel(path)
        if self.running:
            self.exec(
                ["sh", "-c", 'mkdir -p -- "$1"; find "$1" -mindepth 1 -delete', "lab-opaque", f"/{rel}"]
            )
            return
        upper = self._ensure_upper_dir(rel)
        os.setxattr(upper, "trusted.overlay.opaque", b"y")

    def read_file(self, path: str | os.PathLike[str]) -> bytes:
        """The content of ``path`` as this host sees it (running or not)."""
        rel = _rel(path)
        if self.running:
            return self.exec(["cat", "--", f"/{rel}"], text=False).stdout
        return self._read_layers(rel)

    def _read_layers(self, rel: PurePosixPath) -> bytes:
        """Resolve a file from upper dir, then the real machine, without entering the host.
        Reading layers of a live overlay is safe (only writing them is not); every change
        made through the overlay lands in the upper dir, so this stays accurate."""
        upper = self.root_upper / rel
        try:
            st = os.lstat(upper)
        except FileNotFoundError:
            return (Path("/") / rel).read_bytes()
        if _is_whiteout(st):
            raise FileNotFoundError(errno.ENOENT, "removed in this host", f"/{rel}")
        return upper.read_bytes()

    def lookup_user(self, name: str) -> tuple[int, int]:
        """(uid, gid) of ``name`` in this host's /etc/passwd, e.g. to chown its files."""
        for line in self.read_file("/etc/passwd").decode().splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == name:
                return int(fields[2]), int(fields[3])
        raise KeyError(f"{name} not in /etc/passwd of {self.name}")

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this host: ``addr`` or ``[addr]:port``."""
        return self.address if self.ssh_port == 22 else f"[{self.address}]:{self.ssh_port}"

    def host_key_public(self) -> str:
        """``ssh-ed25519 AAAA… root@<name>``: the host key line, for known_hosts."""
        return self._read_layers(_rel("/etc/ssh/ssh_host_ed25519_key.pub")).decode().strip()

    def _prepare(self) -> None:
        """Create the overlay dirs and the files every host needs (called by add_host)."""
        for d in OVERLAY_DIRS:
            for base in (self.root_upper, self.work):
                (base / d).mkdir(parents=True, exist_ok=True)
            # The overlay root shows the upper dir's owner/mode; mirror the real one.
            rst = os.stat(f"/{d}")
            os.chown(self.root_upper / d, rst.st_uid, rst.st_gid)
            os.chmod(self.root_upper / d, stat.S_IMODE(rst.st_mode))
        self.write_file("/etc/hostname", f"{self.name}\n")
        self.write_file(
            "/etc/hosts",
            "127.0.0.1\tlocalhost\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
            f"{self.address}\t{self.name}\n",
        )
        self.write_file("/etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
        self._add_auditor()
        # Host key: own ed25519 key; the real machine's other host keys are removed so
        # that no two hosts (nor the real machine) share one.
        private, public = _ed25519_openssh(f"root@{self.name}")
        self.write_file("/etc/ssh/ssh_host_ed25519_key", private, 0o600)
        self.write_file("/etc/ssh/ssh_host_ed25519_key.pub", public + "\n")
        for kind in ("rsa", "ecdsa", "dsa"):
            for suffix in ("", ".pub"):
                if os.path.lexists(f"/etc/ssh/ssh_host_{kind}_key{suffix}"):
                    self.remove_file(f"/etc/ssh/ssh_host_{kind}_key{suffix}")
        self.write_file("/etc/ssh/sshd_config", _default_sshd_config(self.address))
        authorized = self.lab.client_public_key + "\n"
        self.write_file("/etc/ssh/authorized_keys/root", authorized)
        self.write_file(f"/etc/ssh/authorized_keys/{AUDITOR}", authorized)

    def _add_auditor(self) -> None:
        """Add user ``auditor`` (group sudo, NOPASSWD sudo) to this host's account files."""
        passwd = Path("/etc/passwd").read_text().splitlines()
        group = Path("/etc/group").read_text().splitlines()
        used_uids = {int(f.split(":")[2]) for f in passwd if f.count(":") >= 6}
        used_gids = {int(f.split(":")[2]) for f in group if f.count(":") >= 3}
        if any(line.startswith(f"{AUDITOR}:") for line in passwd):
            pw = next(line for line in passwd if line.startswith(f"{AUDITOR}:")).split(":")
            uid, gid = int(pw[2]), int(pw[3])
        else:
            uid = next(i for i in range(1000, 60000) if i not in used_uids and i not in used_gids)
            gid = uid
            passwd.append(f"{AUDITOR}:x:{uid}:{gid}:controlcheck lab auditor:/home/{AUDITOR}:/bin/bash")
            group.append(f"{AUDITOR}:x:{gid}:")
        group = [_add_member(line, "sudo", AUDITOR) for line in group]
        self._write_like_real("/etc/passwd", passwd)
        self._write_like_real("/etc/group", group)
        days = int(time.time() // 86400)
        if Path("/etc/shadow").exists():
            shadow = [
                s for s in Path("/etc/shadow").read_text().splitlines() if not s.startswith(f"{AUDITOR}:")
            ]
            # "*": no password, but not "locked" ("!"), which sshd would refuse.
            shadow.append(f"{AUDITOR}:*:{days}:0:99999:7:::")
            self._write_like_real("/etc/shadow", shadow)
        if Path("/etc/gshadow").exists():
            gshadow = [
                g for g in Path("/etc/gshadow").read_text().splitlines() if not g.startswith(f"{AUDITOR}:")
            ]
            gshadow.append(f"{AUDITOR}:!::")
            gshadow = [_add_member(line, "sudo", AUDITOR) for line in gshadow]
            self._write_like_real("/etc/gshadow", gshadow)
        self.write_file(f"/etc/sudoers.d/90-lab-{AUDITOR}", f"{AUDITOR} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
        home = self._ensure_upper_dir(PurePosixPath("home", AUDITOR))
        os.chown(home, uid, gid)
        os.chmod(home, 0o750)
        skel = Path("/etc/skel")
        if skel.is_dir():
            for entry in skel.iterdir():
                if entry.is_file():
                    self.write_file(
                        f"/home/{AUDITOR}/{entry.name}", entry.read_bytes(), 0o644, uid=uid, gid=gid
                    )

    def _write_like_real(self, path: str, lines: list[str]) -> None:
        st = os.stat(path)
        self.write_file(path, "\n".join(lines) + "\n", stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)

    # -- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._pid1 is not None and _alive(self._pid1, self._pid1_start)

    @property
    def pid1(self) -> int:
        """PID (in the root PID namespace) of the host's init, i.e. its sshd."""
        if self._pid1 is None:
            raise LabError(f"host {self.name} is not started")
        return self._pid1

    def _start_script(self) -> str:
        d = shlex.quote(str(self.dir))
        mounts = "\n".join(
            f"mount -t overlay lab-{self.name}-{x} "
            f"-o lowerdir=/{x},upperdir={d}/upper/{x},workdir={d}/work/{x} /{x}"
            for x in OVERLAY_DIRS
        )
        private_tmp = (
            f"mount -t tmpfs -o mode=1777,nosuid,nodev,size=512m lab-{self.name}-tmp /tmp\n"
            if self.private_tmp
            else ""
        )
        # Mounts under the real /run (notably /run/netns/*, which pin other namespaces)
        # are detached before our own tmpfs hides them, so they do not live on here.
        return (
            "set -e\n"
            f"hostname {shlex.quote(self.name)}\n"
            'awk \'$5 == "/run" || $5 ~ "^/run/" {print $5}\' /proc/self/mountinfo'
            ' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done\n'
            f"{mounts}\n"
            f"mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m lab-{self.name}-run /run\n"
            "mkdir -p -m 0755 /run/sshd\n"
            "mkdir -p -m 1777 /run/lock\n"
            f"{private_tmp}"
            "cd /\n"
            f"exec {SSHD} -D -E {SSHD_LOG}\n"
        )

    def _launch(self) -> None:
        """Spawn the host's namespaces and sshd without waiting for it (see start)."""
        if self.running:
            raise LabError(f"host {self.name} is already running")
        self._reap()
        argv = ["ip", "netns", "exec", self.netns]
        # If the owning process dies without teardown (SIGKILL), the kernel kills unshare,
        # and unshare's --kill-child kills the host's PID 1 and with it the PID namespace.
        # PDEATHSIG fires when the *thread* that forked exits, so it is only armed when
        # starting from the main thread; otherwise cleanup_stale() is the safety net.
        if threading.current_thread() is threading.main_thread():
            argv += ["setpriv", "--pdeathsig", "KILL"]
        argv += [
            "unshare",
            "--mount",
            "--uts",
            "--ipc",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            self._start_script(),
        ]
        with open(self.start_log, "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )

    def _wait_ready(self, deadline: float) -> None:
        """Wait for PID 1 to exist and port 22 to answer with an SSH banner."""
        proc = self._proc
        assert proc is not None
        while True:
            if self._pid1 is None:
                kids = _children(proc.pid)
                if kids:
                    self._pid1 = kids[0]
                    self._pid1_start = _proc_starttime(kids[0])
                    self.lab._save_marker()
            if proc.poll() is not None:
                self._pid1 = None
                raise LabError(self._failure(f"host process exited with {proc.returncode}"))
            if self._pid1 is not None and _ssh_banner(self.address, self.ssh_port, 0.5):
                return
            if time.monotonic() > deadline:
                self._kill()
                raise LabError(
                    self._failure(f"sshd did not answer on port {self.ssh_port} within the deadline")
                )
            time.sleep(0.005)

    def _failure(self, what: str) -> str:
        return (
            f"lab host {self.name} ({self.address}): {what}\n"
            f"--- start log {self.start_log}:\n{_file_tail(self.start_log)}\n"
            f"--- sshd log {self.sshd_log_path}:\n{_file_tail(self.sshd_log_path)}"
        )

    def start(self, timeout: float = START_DEADLINE) -> None:
        """Boot the host: namespaces, overlays, tmpfs /run, hostname, ``sshd -D``.

        Returns once :attr:`ssh_port` (22) on :attr:`address` answers with an SSH banner.
        """
        self._launch()
        self._wait_ready(time.monotonic() + timeout)
        self.lab._write_known_hosts()

    def stop(self) -> None:
        """Kill the host (all its processes die with PID 1). Files in the upper dir stay,
        so the host can be started again, e.g. after changing its sshd config."""
        self._kill()
        self.lab._write_known_hosts()
        self.lab._save_marker()

    def _kill(self) -> None:
        if self._pid1 is not None:
            _kill_verified(self._pid1, self._pid1_start)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            # unshare reaps PID 1 and then exits. Killing unshare first would leave PID 1
            # a zombie for the machine's init to reap, which can take seconds.
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=3)
        self._proc = None
        if self._pid1 is not None:
            deadline = time.monotonic() + 5
            while _alive(self._pid1, self._pid1_start) and time.monotonic() < deadline:
                time.sleep(0.002)
        self._pid1 = None
        self._pid1_start = None

    def reload_sshd(self, timeout: float = START_DEADLINE) -> None:
        """SIGHUP sshd (it re-executes itself and rereads its config; PID 1 stays), then
        wait until port 22 answers again. A broken config kills the host: see start()."""
        os.kill(self.pid1, signal.SIGHUP)
        time.sleep(0.05)
        deadline = time.monotonic() + timeout
        while not _ssh_banner(self.address, self.ssh_port, 0.5):
            if not self.running:
                raise LabError(self._failure("sshd died on reload"))
            if time.monotonic() > deadline:
                raise LabError(self._failure("sshd did not come back after reload"))
            time.sleep(0.01)

    # -- running commands ---------------------------------------------------------------

    def exec_prefix(self, *, user: str | None = None, clean_env: bool = True) -> list[str]:
        """argv prefix that runs a command inside this host (all its namespaces).

        ``clean_env`` replaces the caller's environment (pyenv shims, pytest variables)
        with what a root login would have. ``user`` runs the command as that user via
        ``runuser`` (HOME, USER etc. of that user).
        """
        prefix = ["nsenter", "-t", str(self.pid1), "-m", "-u", "-n", "-p", "-i", "-w", "--"]
        if clean_env:
            prefix += [
                "env",
                "-i",
                f"PATH={CLEAN_PATH}",
                "HOME=/root",
                "LANG=C.UTF-8",
                "USER=root",
                "LOGNAME=root",
                "SHELL=/bin/sh",
            ]
        if user is not None and user != "root":
            prefix += ["runuser", "-u", user, "--"]
        return prefix

    def exec(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float = 30,
        user: str | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the host, capturing output (``str`` unless text=False)."""
        cmd = self.exec_prefix(user=user) + list(argv)
        if text and isinstance(input, bytes):
            input = input.decode()
        elif not text and isinstance(input, str):
            input = input.encode()
        proc = subprocess.run(cmd, input=input, capture_output=True, text=text, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise LabCommandError(proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc

    def ssh_argv(self, user: str = AUDITOR) -> list[str]:
        """An OpenSSH client argv prefix for this host that trusts only lab keys."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.lab.client_key_path),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.lab.known_hosts_path}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-p",
            str(self.ssh_port),
            f"{user}@{self.address}",
        ]


def _add_member(line: str, group: str, member: str) -> str:
    fields = line.split(":")
    if len(fields) != 4 or fields[0] != group:
        return line
    members = [m for m in fields[3].split(",") if m]
    if member not in members:
        members.append(member)
    fields[3] = ",".join(members)
    return ":".join(fields)


# --------------------------------------------------------------------------- lab


@dataclass
class _Allocation:
    labid: str
    network: ipaddress.IPv4Network
    bridge: str = field(init=False)

    def __post_init__(self) -> None:
        self.bridge = f"ccbr{self.labid}"


class Lab:
    """A bridge plus any number of hosts and zones; :meth:`teardown` removes it all.

    Names are unique per lab (``ccbr<id>``, ``cc<id>-<host>``, ``cv<id>h<n>``) and the
    ``10.200.N.0/24`` subnet is one no interface or route uses, so concurrent test runs
    on one machine do not collide. The bridge holds ``.1`` (the scanner side, in the
    root namespace), hosts get ``.11`` onwards and zones ``.201`` onwards.

    Not thread-safe: drive one Lab from one thread (``start_all`` starts hosts in
    parallel without threads).
    """

    def __init__(self, *, base_dir: str | os.PathLike[str] = "/tmp", clean_stale: bool = True) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network, mount and PID namespaces)")
        base = Path(base_dir).resolve()
        if base.parts[1:2] and base.parts[1] in OVERLAY_DIRS:
            raise LabError(f"base_dir {base} must not be below an overlaid dir {OVERLAY_DIRS}")
        if clean_stale:
            cleanup_stale()
        self._torn_down = False
        self.hosts: dict[str, Host] = {}
        self.zones: dict[str, Zone] = {}
        self.tmpdir = Path(tempfile.mkdtemp(prefix="cclab-", dir=base))
        os.chmod(self.tmpdir, 0o700)
        self._creator = (os.getpid(), _proc_starttime(os.getpid()))
        try:
            alloc = self._allocate()
        except BaseException:
            _rmtree(self.tmpdir)
            raise
        self.id = alloc.labid
        self.network = alloc.network
        self.bridge = alloc.bridge
        hosts_iter = self.network.hosts()
        self.scanner_address = str(next(hosts_iter))
        private, public = _ed25519_openssh(f"controlcheck-lab-{self.id}")
        self.client_key_path = self.tmpdir / "client_ed25519"
        self.client_key_path.write_bytes(private)
        os.chmod(self.client_key_path, 0o600)
        self.client_public_key = public
        (self.tmpdir / "client_ed25519.pub").write_text(public + "\n")
        self.known_hosts_path = self.tmpdir / "known_hosts"
        self.known_hosts_path.write_text("")
        atexit.register(self.teardown)

    def __repr__(self) -> str:
        return f"<Lab {self.id} {self.network} hosts={list(self.hosts)}>"

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    # -- allocation -----------------------------------------------------------------

    def _allocate(self) -> _Allocation:
        with _global_lock():
            markers = _read_markers()
            taken_ids = set(markers)
            taken_ids.update(m.group(1) for b in _bridges() if (m := _BRIDGE_RE.match(b)))
            taken_ids.update(m.group(1) for n in _netns_list() if (m := _NETNS_RE.match(n)))
            used = _used_networks()
            for data in markers.values():
                with contextlib.suppress(KeyError, ValueError, TypeError):
                    used.append(ipaddress.IPv4Network(data["subnet"]))
            labid = next(i for i in (secrets.token_hex(2) for _ in range(1000)) if i not in taken_ids)
            candidates = list(range(256))
            random.shuffle(candidates)
            for n in candidates:
                net = ipaddress.IPv4Network(f"10.200.{n}.0/24")
                if not any(net.overlaps(u) for u in used):
                    break
            else:
                raise LabError("no free 10.200.N.0/24 subnet")
            alloc = _Allocation(labid, net)
            self.id, self.network, self.bridge = labid, net, alloc.bridge
            self._save_marker()
            try:
                _run(["ip", "link", "add", alloc.bridge, "type", "bridge"])
                _run(["ip", "addr", "add", f"{net[1]}/{net.prefixlen}", "dev", alloc.bridge])
                _run(["ip", "link", "set", alloc.bridge, "up"])
            except LabError:
                _ip_batch([f"link del {alloc.bridge}"])
                (RUN_DIR / f"{labid}.json").unlink(missing_ok=True)
                raise
            return alloc

    def _marker_data(self) -> dict:
        processes: list[tuple[int, int | None]] = []
        for h in getattr(self, "hosts", {}).values():
            if h._proc is not None:
                processes.append((h._proc.pid, _proc_starttime(h._proc.pid)))
            if h._pid1 is not None:
                processes.append((h._pid1, h._pid1_start))
        names = [h.netns for h in self.hosts.values()] + [z.netns for z in self.zones.values()]
        veths = [h.veth for h in self.hosts.values()] + [z.veth for z in self.zones.values()]
        return {
            "pid": self._creator[0],
            "starttime": self._creator[1],
            "bridge": self.bridge,
            "subnet": str(self.network),
            "tmpdir": str(self.tmpdir),
            "netns": names,
            "veths": veths,
            "processes": processes,
        }

    def _save_marker(self) -> None:
        """Record what this lab owns, so cleanup_stale() can remove it if we get killed."""
        if self._torn_down:
            return
        RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = RUN_DIR / f"{self.id}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self._marker_data()))
        os.replace(tmp, path)

    def _next_address(self, first: int, last: int) -> str:
        used = {h.address for h in self.hosts.values()} | {z.address for z in self.zones.values()}
        for octet in range(first, last + 1):
            addr = str(self.network.network_address + octet)
            if addr not in used:
                return addr
        raise LabError(f"lab {self.id}: no free address in .{first}-.{last}")

    def _check_name(self, name: str) -> None:
        if self._torn_down:
            raise LabError("lab already torn down")
        if not _NAME_RE.match(name):
            raise ValueError(f"{name!r}: use 1-20 chars [a-z0-9-], not starting/ending with '-'")
        if name in self.hosts or name in self.zones:
            raise ValueError(f"{name!r} already exists in this lab")

    def _plug(self, netns: str, veth: str, address: str) -> None:
        """Create ``netns`` with an ``eth0`` on the bridge; no default route, on purpose."""
        _run(["ip", "netns", "add", netns])
        try:
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            _run(["ip", "-n", netns, "addr", "add", f"{address}/{self.prefixlen}", "dev", "eth0"])
            _run(["ip", "-n", netns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        except LabError:
            _ip_batch([f"link del {veth}", f"netns del {netns}"])
            raise

    # -- public API -----------------------------------------------------------------

    def add_host(self, name: str) -> Host:
        """Create a host's namespace, veth and overlay dirs; start it with ``h.start()``."""
        self._check_name(name)
        index = 1 + max((h.index for h in self.hosts.values()), default=0)
        host = Host(self, name, index, self._next_address(_FIRST_HOST_OCTET, _LAST_HOST_OCTET))
        host.dir.mkdir(parents=True)
        self.hosts[name] = host
        self._save_marker()
        try:
            self._plug(host.netns, host.veth, host.address)
            host._prepare()
        except BaseException:
            _ip_batch([f"link del {host.veth}", f"netns del {host.netns}"])
            del self.hosts[name]
            self._save_marker()
            raise
        return host

    def host(self, name: str) -> Host:
        return self.hosts[name]

    def start_all(self, timeout: float = START_DEADLINE) -> None:
        """Start every stopped host, launching all before waiting for any."""
        todo = [h for h in self.hosts.values() if not h.running]
        for h in todo:
            h._launch()
        deadline = time.monotonic() + timeout
        try:
            for h in todo:
                h._wait_ready(deadline)
        finally:
            self._write_known_hosts()

    def add_zone_netns(self, name: str) -> Zone:
        """A bare namespace on the bridge (own address, no sshd), e.g. "internet"."""
        self._check_name(name)
        index = 1 + len(self.zones)
        zone = Zone(
            name,
            f"cc{self.id}-{name}",
            self._next_address(_FIRST_ZONE_OCTET, _LAST_ZONE_OCTET),
            f"cv{self.id}z{index}",
        )
        self.zones[name] = zone
        self._save_marker()
        try:
            self._plug(zone.netns, zone.veth, zone.address)
        except BaseException:
            del self.zones[name]
            self._save_marker()
            raise
        return zone

    def zone_prefix(self, name: str) -> list[str]:
        """argv prefix running a command in zone ``name`` (its network, real files)."""
        return self.zones[name].prefix()

    def zone_exec(
        self,
        name: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` in zone ``name`` (e.g. a TCP connect from "the internet")."""
        proc = subprocess.run(
            self.zone_prefix(name) + list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise LabCommandError(proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc

    def _write_known_hosts(self) -> None:
        """known_hosts for every running host, replaced atomically (readers may be live)."""
        if self._torn_down:
            return
        lines = []
        for h in self.hosts.values():
            if h.running:
                with contextlib.suppress(OSError):
                    lines.append(f"{h.known_hosts_name} {h.host_key_public()}\n")
        tmp = self.known_hosts_path.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        os.replace(tmp, self.known_hosts_path)

    def teardown(self) -> None:
        """Kill every host and zone process, delete namespaces, veths, bridge, temp dir
        and marker. Idempotent; also runs at interpreter exit."""
        if self._torn_down:
            return
        self._torn_down = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.teardown)
        for h in self.hosts.values():
            if h._pid1 is not None:
                _kill_verified(h._pid1, h._pid1_start)
        for h in self.hosts.values():
            with contextlib.suppress(Exception):
                h._kill()
        names = [h.netns for h in self.hosts.values()] + [z.netns for z in self.zones.values()]
        for ns in names:
            _kill_netns_processes(ns)
        lines = [f"link del {h.veth}" for h in self.hosts.values()]
        lines += [f"link del {z.veth}" for z in self.zones.values()]
        lines += [f"netns del {ns}" for ns in names]
        lines.append(f"link del {self.bridge}")
        _ip_batch(lines)
        _rmtree(self.tmpdir)
        (RUN_DIR / f"{self.id}.json").unlink(missing_ok=True)
