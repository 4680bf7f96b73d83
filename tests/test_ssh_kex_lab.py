"""ssh.algorithms reads the real host key: lab hosts whose sshd serves a 1024-bit RSA key, a
3072-bit RSA key, only Ed25519, a DSA key, and an RSA key behind a cipher we cannot speak.

Each host is a real OpenSSH 9.2 sshd in its own namespace (tests/lab); the check runs
through the real engine and catalogue (default min_rsa_host_key_bits 2048).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
from lab import Host, Lab  # noqa: E402

from controlcheck.catalogue import Catalogue, load_catalogue  # noqa: E402
from controlcheck.engine import Engine, Run  # noqa: E402
from controlcheck.inventory import Inventory, Target  # noqa: E402
from controlcheck.model import CheckResult, Status, TargetKind  # noqa: E402
from controlcheck.transports.factory import open_transport  # noqa: E402
from controlcheck.transports.ssh_kex import describe_host_key  # noqa: E402

# Hardened MACs on every host, so that the host key is the only thing judged differently.
HARDENED = "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com\n"
CHECK = "ssh.algorithms"


def _keygen(tmp: Path, name: str, *args: str) -> tuple[bytes, str]:
    """(private key file, public key line) made by ssh-keygen itself."""
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", name, "-f", str(path), *args],
                   check=True, timeout=60)
    return path.read_bytes(), (tmp / f"{name}.pub").read_text()


def _add_key(h: Host, tmp: Path, file: str, *args: str) -> str:
    private, public = _keygen(tmp / h.name, file, *args)
    h.write_file(f"/etc/ssh/{file}", private, 0o600)
    h.write_file(f"/etc/ssh/{file}.pub", public)
    return public


def _fingerprint(public_line: str) -> str:
    kind, blob = public_line.split()[:2]
    return describe_host_key(kind, base64.b64decode(blob)).sha256


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("sshkex")
    lab = Lab()
    pubs: dict[str, str] = {}
    try:
        for name in ("kx-rsa1024", "kx-rsa3072", "kx-ed25519", "kx-dsa", "kx-chacha"):
            (tmp / name).mkdir()
            lab.add_host(name)
        h = lab.host("kx-rsa1024")
        pubs[h.name] = _add_key(h, tmp, "ssh_host_rsa_1024", "-t", "rsa", "-b", "1024")
        h.write_file("/etc/ssh/sshd_config.d/40-hostkey.conf",
                     HARDENED + "HostKey /etc/ssh/ssh_host_rsa_1024\n")
        h = lab.host("kx-rsa3072")
        pubs[h.name] = _add_key(h, tmp, "ssh_host_rsa_key", "-t", "rsa", "-b", "3072")
        h.write_file("/etc/ssh/sshd_config.d/40-hostkey.conf",
                     HARDENED + "HostKey /etc/ssh/ssh_host_rsa_key\n")
        lab.host("kx-ed25519").write_file("/etc/ssh/sshd_config.d/40-hostkey.conf", HARDENED)
        h = lab.host("kx-dsa")
        _add_key(h, tmp, "ssh_host_dsa_key", "-t", "dsa")
        h.write_file("/etc/ssh/sshd_config.d/40-hostkey.conf",
                     HARDENED + "HostKey /etc/ssh/ssh_host_dsa_key\n"
                     "HostKeyAlgorithms +ssh-dss\n")
        # A 3072-bit RSA key, but only a cipher paramiko lacks: the KEXINIT is all we
        # can read, the key exchange fails, so the RSA key size stays unknown.
        h = lab.host("kx-chacha")
        _add_key(h, tmp, "ssh_host_rsa_key", "-t", "rsa", "-b", "3072")
        h.write_file("/etc/ssh/sshd_config.d/40-hostkey.conf",
                     HARDENED + "HostKey /etc/ssh/ssh_host_rsa_key\n"
                     "Ciphers chacha20-poly1305@openssh.com\n")
        lab.start_all()
        yield lab, pubs
    finally:
        lab.teardown()


def _run(lab: Lab) -> tuple[Run, float]:
    full = load_catalogue()
    catalogue = Catalogue([c for c in full.controls if any(ch.id == CHECK for ch in c.checks)],
                          full.digest, full.files)
    targets = [Target(h.name, TargetKind.HOST, {"name": h.name, "transport": "local",
                                                "address": h.address, "port": 22})
               for h in lab.hosts.values()]
    inv = Inventory(None, Path.cwd(), targets, {}, {}, [], "test")
    t0 = time.monotonic()
    run = Engine(catalogue, inv, transport_factory=open_transport, timeout=5.0).run()
    return run, time.monotonic() - t0


@pytest.fixture(scope="module")
def results(lab: tuple[Lab, dict[str, str]]) -> tuple[dict[str, CheckResult], Run, float]:
    run, elapsed = _run(lab[0])
    return {r.target: r for r in run.results if r.check == CHECK}, run, elapsed


def test_sshd_loaded_the_1024_bit_key(lab: tuple[Lab, dict[str, str]]) -> None:
    # OpenSSH 9.2's RequiredRSASize defaults to 1024: the key must load, not be skipped,
    # or the "fail" below would be about a server that never offered RSA.
    log = lab[0].host("kx-rsa1024").sshd_log_path.read_text()
    assert "RequiredRSASize" not in log and "ssh_host_rsa_1024" not in log, log


def test_rsa_1024_host_key_fails_naming_its_size(lab, results) -> None:
    got, run, _ = results
    r = got["kx-rsa1024"]
    assert r.status == Status.FAIL, r.message
    assert "has 1024 bits, fewer than the 2048 required" in r.message
    assert "weak algorithms" not in r.message  # the key, not an algorithm name, fails
    fp = _fingerprint(lab[1]["kx-rsa1024"])
    assert fp in r.message
    keys = r.facts["host_keys_read"]
    assert {k["algorithm"] for k in keys} == {"rsa-sha2-512", "rsa-sha2-256"}
    assert all(k["bits"] == 1024 and k["key_type"] == "ssh-rsa" and k["sha256"] == fp
               for k in keys)
    assert r.facts["min_rsa_host_key_bits"] == 2048
    ev = "\n".join(e.content.decode() for e in run.evidence.all() if e.target == "kx-rsa1024")
    assert f"rsa-sha2-256: ssh-rsa 1024 bits {fp}" in ev


def test_rsa_3072_host_key_passes(lab, results) -> None:
    r = results[0]["kx-rsa3072"]
    assert r.status == Status.PASS, r.message
    assert "its RSA host key has 3072 bits" in r.message
    fp = _fingerprint(lab[1]["kx-rsa3072"])
    assert [k["sha256"] for k in r.facts["host_keys_read"]] == [fp, fp]


def test_ed25519_only_passes_without_reading_keys(results) -> None:
    r = results[0]["kx-ed25519"]
    assert r.status == Status.PASS, r.message
    assert r.facts["offered"]["host_keys"] == ["ssh-ed25519"]
    assert r.facts["host_keys_read"] == []


def test_dsa_host_key_fails(results) -> None:
    r = results[0]["kx-dsa"]
    assert r.status == Status.FAIL, r.message
    assert "ssh-dss" in r.facts["weak"]["host_keys"] and "ssh-dss" in r.message


def test_unreadable_rsa_key_is_an_error_not_a_pass(results) -> None:
    r = results[0]["kx-chacha"]
    assert r.status == Status.ERROR, r.message
    assert "cannot tell the RSA host key size" in r.message
    assert "rsa-sha2-512" in r.facts["host_keys_unread"]
    assert "key exchange failed" in r.facts["host_keys_unread"]["rsa-sha2-512"]


def test_whole_run_is_fast(results) -> None:
    assert results[2] < 5.0
