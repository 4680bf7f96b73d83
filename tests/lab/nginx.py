"""nginx on 127.0.0.1 as a TLS/HTTP endpoint lab: one port per server block.

Each server gets its own port (rather than SNI on one port) because nginx applies
``ssl_protocols`` and the certificate choice per listening socket's default server, and
the TLS checks under test need exactly one configuration per endpoint. Certificates are
the caller's business: TLS tests build their own (expired, self-signed, RSA-1024, …).

Everything (config, pid, logs, temp dirs) lives under the directory passed in, so several
NginxLab instances and the system nginx never meet. Only 127.0.0.1 is listened on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NginxError", "NginxLab", "NginxServer"]

NGINX = "/usr/sbin/nginx"
LOOPBACK = "127.0.0.1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class NginxError(RuntimeError):
    """nginx failed to start; the message carries the error log tail."""


@dataclass
class NginxServer:
    """One server block: its name (``server_name`` too), port, and kind."""

    name: str
    port: int
    tls: bool
    block: str

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}/"


def _port_range_low() -> int:
    """Start of the kernel's ephemeral range; lab ports are picked below it so the kernel
    does not hand one of them to an outgoing connection before nginx binds it."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port(taken: set[int]) -> int:
    """A port on 127.0.0.1 that is free now and not yet used by this lab."""
    high = _port_range_low() - 1
    low = 20000 if high > 21000 else 1025
    for _ in range(500):
        port = random.randint(low, high)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise NginxError("no free port on 127.0.0.1")


def _quote(value: str) -> str:
    """An nginx string literal (only for paths/names we control; no '$' expansion)."""
    if "$" in value or "\n" in value:
        raise ValueError(f"{value!r}: '$' and newlines are not allowed here")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NginxLab:
    """Several nginx server blocks on loopback, run by one ``nginx`` master.

    ``add_server``/``add_plain_http`` before ``start()``; the returned port stays valid.
    Usable as a context manager; ``stop()`` also runs at interpreter exit.
    """

    def __init__(self, tmpdir: str | os.PathLike[str]) -> None:
        self.dir = Path(tmpdir).resolve() / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("tmp", "logs", "www", "certs"):
            (self.dir / sub).mkdir(exist_ok=True)
        self.conf_path = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.pid_path = self.dir / "nginx.pid"
        self.servers: dict[str, NginxServer] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    def __enter__(self) -> NginxLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def port(self, name: str) -> int:
        return self.servers[name].port

    def url(self, name: str) -> str:
        return self.servers[name].url

    def _new(self, name: str) -> int:
        if not _NAME_RE.match(name):
            raise ValueError(f"{name!r}: use [A-Za-z0-9._-]")
        if name in self.servers:
            raise ValueError(f"server {name!r} already added")
        if self._proc is not None:
            raise NginxError("add servers before start() (or stop() first)")
        return _free_port({s.port for s in self.servers.values()})

    def add_server(
        self,
        name: str,
        cert_pem_path: str | os.PathLike[str],
        key_pem_path: str | os.PathLike[str],
        *,
        protocols: str = "TLSv1.2 TLSv1.3",
        ciphers: str | None = None,
        extra: str = "",
        chain_path: str | os.PathLike[str] | None = None,
    ) -> int:
        """A TLS server block answering ``200 ok <name>``; returns its port.

        ``chain_path`` (intermediates, PEM) is appended to the certificate, since nginx
        sends whatever ``ssl_certificate`` contains as the chain. ``ciphers`` goes to
        ``ssl_ciphers`` verbatim (e.g. ``"DEFAULT:@SECLEVEL=0"`` for TLS 1.0, RSA-1024 or
        SHA-1 cases). ``extra`` is raw nginx directives for the server block, e.g.
        ``add_header Strict-Transport-Security "max-age=31536000" always;``.
        """
        port = self._new(name)
        cert = Path(cert_pem_path).resolve()
        if chain_path is not None:
            full = self.dir / "certs" / f"{name}-fullchain.pem"
            data = cert.read_bytes()
            if not data.endswith(b"\n"):
                data += b"\n"
            full.write_bytes(data + Path(chain_path).read_bytes())
            cert = full
        lines = [
            f"listen {LOOPBACK}:{port} ssl;",
            f"server_name {name};",
            f"ssl_certificate {_quote(str(cert))};",
            f"ssl_certificate_key {_quote(str(Path(key_pem_path).resolve()))};",
            f"ssl_protocols {protocols};",
        ]
        if ciphers is not None:
            lines.append(f"ssl_ciphers {_quote(ciphers)};")
        lines.append(extra)
        lines.append(f'location / {{ default_type text/plain; return 200 "ok {name}\\n"; }}')
        self.servers[name] = NginxServer(name, port, True, self._block(lines))
        return port

    def add_plain_http(self, name: str, body_or_redirect: str, *, extra: str = "") -> int:
        """A plain HTTP server block; returns its port.

        A value starting with ``http://`` or ``https://`` gives ``301`` to that URL
        (the "HTTP redirects to HTTPS" case); anything else is served as a ``200`` body.
        The body is served from a file, so ``$`` and quotes need no escaping.
        """
        port = self._new(name)
        lines = [f"listen {LOOPBACK}:{port};", f"server_name {name};", extra]
        if re.match(r"^https?://", body_or_redirect):
            lines.append(f"location / {{ return 301 {_quote(body_or_redirect)}; }}")
        else:
            root = self.dir / "www" / name
            root.mkdir(parents=True, exist_ok=True)
            (root / "body").write_text(body_or_redirect)
            lines.append(
                f"location / {{ root {_quote(str(root))}; default_type text/html; try_files /body =404; }}"
            )
        self.servers[name] = NginxServer(name, port, False, self._block(lines))
        return port

    @staticmethod
    def _block(lines: list[str]) -> str:
        body = "\n".join(f"        {line}" for line in lines if line.strip())
        return f"    server {{\n{body}\n    }}\n"

    def config(self) -> str:
        d = self.dir
        temp = "\n".join(
            f"    {kind}_temp_path {_quote(str(d / 'tmp' / kind))};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Workers run as root: the caller's tmpdir (pytest's tmp_path) is mode 0700.
        return (
            "daemon off;\n"
            "master_process on;\n"
            "worker_processes 1;\n"
            "user root root;\n"
            f"pid {_quote(str(self.pid_path))};\n"
            f"error_log {_quote(str(self.error_log))} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {_quote(str(d / 'logs' / 'access.log'))};\n"
            f"{temp}\n"
            "    default_type application/octet-stream;\n"
            + "".join(s.block for s in self.servers.values())
            + "}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, run ``nginx`` in the foreground, wait until all ports answer."""
        if self._proc is not None:
            raise NginxError("already started")
        if not self.servers:
            raise NginxError("no servers added")
        nginx = shutil.which("nginx") or NGINX
        self.conf_path.write_text(self.config())
        with open(self.dir / "nginx.stdout", "ab") as out:
            self._proc = subprocess.Popen(
                [nginx, "-e", str(self.error_log), "-p", f"{self.dir}/", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pending = {s.port for s in self.servers.values()}
        while pending:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise NginxError(f"nginx exited with {code}\n{self._logs()}")
            for port in list(pending):
                with contextlib.suppress(OSError):
                    socket.create_connection((LOOPBACK, port), timeout=0.2).close()
                    pending.discard(port)
            if pending and time.monotonic() > deadline:
                self.stop()
                raise NginxError(f"ports {sorted(pending)} did not answer\n{self._logs()}")
            if pending:
                time.sleep(0.01)

    def _logs(self) -> str:
        parts = []
        for path in (self.dir / "nginx.stdout", self.error_log):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                parts.append(f"--- {path}:\n{text[-3000:] or '(empty)'}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop nginx (fast shutdown, then SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
