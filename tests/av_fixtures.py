"""Real ClamAV for the AV tests: an offline signature database and a clamd of our own.

The database is a lab one (LAB.md): a ``.hdb`` hash line that makes ClamAV detect
the EICAR test file, packed into an unsigned ``daily.cud`` whose header carries the
build time we want, so ``sigtool --info`` reports a fresh or a stale database
without ``freshclam`` (which would try the internet).
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from controlcheck.catalogue import load_catalogue
from controlcheck.engine import Engine, Run, utc_now
from controlcheck.inventory import load_inventory
from controlcheck.model import CheckResult
from controlcheck.transports.factory import open_transport

# MD5 and length of the EICAR test string: a hash signature, not the string itself.
EICAR_HDB = b"44d88612fea8a8f36de82e1278abb02f:68:Lab.EICAR.Test\n"
# A signature for some other content: a database that loads but cannot see EICAR.
OTHER_HDB = b"0123456789abcdef0123456789abcdef:5:Lab.Other.Test\n"


def write_cud(path: Path, built: datetime, hdb: bytes = EICAR_HDB, version: int = 27000) -> None:
    """An unsigned ClamAV container (``.cud``): 512-byte header + tar.gz of info and hdb."""
    base = path.stem  # daily
    stamp = built.astimezone(UTC).strftime("%d %b %Y %H-%M") + " +0000"
    head = f"ClamAV-VDB:{stamp}:{version}:1:90:X:X:lab:{int(built.timestamp())}"
    info = (f"{head}\n{base}.hdb:{len(hdb)}:{hashlib.sha256(hdb).hexdigest()}\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in ((f"{base}.info", info), (f"{base}.hdb", hdb)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = int(built.timestamp())
            tar.addfile(ti, io.BytesIO(data))
    body = buf.getvalue()
    header = (f"ClamAV-VDB:{stamp}:{version}:1:90:{hashlib.md5(body).hexdigest()}"
              f":X:lab:{int(built.timestamp())}").encode().ljust(512, b" ")
    path.write_bytes(header + body)


@dataclass
class ClamSetup:
    """Config files and database directory for one simulated host."""

    root: Path
    db_dir: Path
    clamd_conf: Path
    freshclam_conf: Path
    socket: Path

    def av_spec(self) -> dict[str, str]:
        return {"clamd_conf": str(self.clamd_conf), "freshclam_conf": str(self.freshclam_conf)}


def make_setup(root: Path, built: datetime | None, hdb: bytes = EICAR_HDB) -> ClamSetup:
    """clamd.conf/freshclam.conf pointing at ``root/db``; ``built`` None → empty database dir."""
    db = root / "db"
    db.mkdir(parents=True)
    if built is not None:
        write_cud(db / "daily.cud", built, hdb)
    sock = root / "clamd.ctl"
    clamd_conf = root / "clamd.conf"
    clamd_conf.write_text(
        "# lab clamd\n"
        f"LocalSocket {sock}\nDatabaseDirectory {db}\nForeground true\nUser root\n"
        f"PidFile {root}/clamd.pid\nLogFile {root}/clamd.log\nLogTime true\n")
    fresh = root / "freshclam.conf"
    fresh.write_text(f"DatabaseDirectory {db}\nDatabaseMirror 127.0.0.1\nMaxAttempts 1\n")
    return ClamSetup(root, db, clamd_conf, fresh, sock)


def start_clamd(setup: ClamSetup, deadline_s: float = 30.0) -> subprocess.Popen[bytes]:
    """Start a real clamd on the setup's socket and wait until it answers PING."""
    proc = subprocess.Popen(["clamd", "-c", str(setup.clamd_conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"clamd exited {proc.returncode}: "
                               f"{(setup.root / 'clamd.log').read_text(errors='replace')}")
        if _pong(setup.socket):
            return proc
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("clamd did not answer PING in time")


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(path))
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_checks(tmp: Path, host: dict[str, object], only: Sequence[str],
               clock: datetime | None = None,
               params: Mapping[str, Mapping[str, object]] | None = None) -> Run:
    """Run the packaged catalogue's ``only`` checks against one local host.

    ``params`` overrides a check's catalogue parameters (by check id).
    """
    inv = tmp / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"hosts": [{"transport": "local", **host}]}))
    catalogue = load_catalogue().select(list(only))
    for control in list(catalogue.controls):
        # select() keeps whole controls; run only the checks asked for (faster, focused).
        checks = tuple(replace(c, params={**c.params, **(params or {}).get(c.id, {})})
                       for c in control.checks if c.id in only)
        catalogue.controls[catalogue.controls.index(control)] = replace(control, checks=checks)
    engine = Engine(catalogue, load_inventory(inv), transport_factory=open_transport,
                    clock=(lambda: clock) if clock else utc_now)
    return engine.run()


def by_check(run: Run) -> dict[str, CheckResult]:
    return {r.check: r for r in run.results}


def evidence_text(run: Run) -> str:
    return "\n".join(e.content.decode("utf-8", "replace") for e in run.evidence.all())


def temp_dirs(prefix: str) -> set[str]:
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    return {p.name for p in tmp.iterdir() if p.name.startswith(prefix)}
