"""SSH host-key reading and judging, on real captured data (``tests/data/ssh_kex``).

- ``*.pub`` and ``keygen-l.txt``: keys made by OpenSSH 9.2's ssh-keygen on Debian 12 and
  its own ``ssh-keygen -l -E sha256`` listing (the RSA certificate signed with ``-h``).
- ``lab_facts.json``: the KEXINIT offers and host keys ssh.algorithms read from the real
  sshd lab hosts of ``test_ssh_kex_lab.py``.

The last tests use real sockets on 127.0.0.1 (refused, silent, not SSH).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlcheck.model import Status
from controlcheck.probes.tls import judge
from controlcheck.probes.tls.profiles import DEFAULT_PROFILE, load_profile
from controlcheck.transports.base import TransportError
from controlcheck.transports.ssh_kex import (
    HostKeyInfo,
    NoSshServer,
    client_can_fetch,
    describe_host_key,
    fetch_host_key,
)

DATA = Path(__file__).parent / "data" / "ssh_kex"
PROFILE = load_profile(DEFAULT_PROFILE)
LAB: dict[str, Any] = json.loads((DATA / "lab_facts.json").read_text())


def _pub(name: str) -> HostKeyInfo:
    kind, blob = (DATA / f"{name}.pub").read_text().split()[:2]
    return describe_host_key(kind, base64.b64decode(blob))


def _keys(host: str) -> list[HostKeyInfo]:
    return [HostKeyInfo(**k) for k in LAB[host]["host_keys_read"]]


def _judge(offer: dict[str, list[str]], keys: list[HostKeyInfo] | None = None,
           unread: dict[str, str] | None = None, min_bits: int = 2048,
           weak: dict[str, Any] | None = None):
    return judge.judge_ssh("h1 (10.0.0.1:22)", offer, PROFILE.ssh if weak is None else weak,
                           PROFILE.label, ["ev1"], min_rsa_bits=min_bits,
                           host_keys=keys or [], unread=unread)


# --- describe_host_key: size and fingerprint exactly as ssh-keygen -l prints them


KEYGEN_L = [line.split() for line in (DATA / "keygen-l.txt").read_text().splitlines()]


@pytest.mark.parametrize("bits,fp,comment,kind", KEYGEN_L, ids=[r[3] for r in KEYGEN_L])
def test_describe_matches_ssh_keygen(bits: str, fp: str, comment: str, kind: str) -> None:
    name = "rsa1024-cert" if kind == "(RSA-CERT)" else comment
    info = _pub(name)
    assert (info.bits, info.sha256) == (int(bits), fp)
    expected_type = {"(RSA)": "ssh-rsa", "(RSA-CERT)": "ssh-rsa", "(DSA)": "ssh-dss",
                     "(ED25519)": "ssh-ed25519", "(ECDSA)": "ecdsa-sha2-nistp384"}[kind]
    assert info.key_type == expected_type


def test_describe_certificate_is_the_certified_key() -> None:
    cert, plain = _pub("rsa1024-cert"), _pub("rsa1024")
    assert cert.algorithm == "ssh-rsa-cert-v01@openssh.com"
    assert (cert.key_type, cert.bits, cert.sha256) == (plain.key_type, plain.bits, plain.sha256)


@pytest.mark.parametrize("blob", [
    b"", b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x03\x01\x00",  # truncated before n
    b"\x00\x00\x00\x0bssh-unknown\x00\x00\x00\x00",
    b"\x00\x00\x00\x13ecdsa-sha2-nistp256\x00\x00\x00\x05brain\x00\x00\x00\x00",
])
def test_describe_refuses_what_it_cannot_read(blob: bytes) -> None:
    import struct

    with pytest.raises((ValueError, struct.error)):
        describe_host_key("x", blob)


# --- judge_ssh on the offers and keys read from the real lab hosts


def test_lab_rsa_1024_fails_with_size_fingerprint_and_fix() -> None:
    keys = _keys("kx-rsa1024")
    out = _judge(LAB["kx-rsa1024"]["offered"], keys)
    assert out.status == Status.FAIL
    assert "has 1024 bits, fewer than the 2048 required" in out.message
    assert keys[0].sha256 in out.message and "rsa-sha2-512, rsa-sha2-256" in out.message
    assert "ssh-keygen -t rsa -b 3072" in out.message and out.message.startswith("h1 (")
    assert out.facts["small_rsa_host_keys"] == ["rsa-sha2-512", "rsa-sha2-256"]
    assert out.facts["weak"] == {} and out.evidence == ("ev1",)


def test_lab_rsa_1024_passes_when_the_parameter_allows_it() -> None:
    out = _judge(LAB["kx-rsa1024"]["offered"], _keys("kx-rsa1024"), min_bits=1024)
    assert out.status == Status.PASS and "has 1024 bits" in out.message


def test_lab_rsa_3072_passes_at_2048_fails_at_4096() -> None:
    offer, keys = LAB["kx-rsa3072"]["offered"], _keys("kx-rsa3072")
    assert _judge(offer, keys).status == Status.PASS
    strict = _judge(offer, keys, min_bits=4096)
    assert strict.status == Status.FAIL and "3072 bits, fewer than the 4096" in strict.message


def test_lab_ed25519_only_needs_no_key_read() -> None:
    out = _judge(LAB["kx-ed25519"]["offered"])
    assert out.status == Status.PASS and out.facts["host_keys_read"] == []


def test_lab_dsa_fails_even_if_the_profile_forgets_it() -> None:
    offer = LAB["kx-dsa"]["offered"]
    assert "ssh-dss" in offer["host_keys"]
    assert _judge(offer).status == Status.FAIL
    lax = _judge(offer, weak={})
    assert lax.status == Status.FAIL and lax.facts["weak"] == {"host_keys": ["ssh-dss"]}


def test_lab_unreadable_rsa_key_is_an_error() -> None:
    lab = LAB["kx-chacha"]
    assert lab["host_keys_read"] == [] and set(lab["host_keys_unread"]) == {"rsa-sha2-512",
                                                                           "rsa-sha2-256"}
    out = _judge(lab["offered"], [], lab["host_keys_unread"])
    assert out.status == Status.ERROR
    assert "no acceptable ciphers" in out.message and "ssh-keyscan -t rsa" in out.message


def test_rsa_offered_but_never_read_is_an_error_not_a_pass() -> None:
    # A caller that forgot to read the key must not get a pass from the judge.
    out = _judge(LAB["kx-rsa3072"]["offered"])
    assert out.status == Status.ERROR and "its key was not read" in out.message


def test_weak_algorithm_verdict_stands_when_the_key_is_unreadable() -> None:
    offer = {**LAB["kx-chacha"]["offered"], "macs": ["hmac-sha1"]}
    out = _judge(offer, [], LAB["kx-chacha"]["host_keys_unread"])
    assert out.status == Status.FAIL
    assert "hmac-sha1" in out.message and "RSA host key not checked" in out.message


def test_small_key_fails_even_if_another_rsa_algorithm_was_unreadable() -> None:
    keys = _keys("kx-rsa1024")[:1]  # only rsa-sha2-512 read
    out = _judge(LAB["kx-rsa1024"]["offered"], keys, {"rsa-sha2-256": "timed out"})
    assert out.status == Status.FAIL and "rsa-sha2-256: timed out" in out.message


def test_ssh_rsa_is_judged_by_the_rsa_sha2_key() -> None:
    # RFC 8332: ssh-rsa signs with the same key as rsa-sha2-*; paramiko cannot speak
    # ssh-rsa (SHA-1), so its key is the one read through rsa-sha2-512/256.
    offer = {**LAB["kx-rsa3072"]["offered"]}
    offer["host_keys"] = [*offer["host_keys"], "ssh-rsa"]
    keys = _keys("kx-rsa3072")
    unread = {"ssh-rsa": "this client cannot negotiate it"}
    assert _judge(offer, keys, unread, weak={}).status == Status.PASS
    small = _judge(offer, _keys("kx-rsa1024"), unread, weak={})
    assert small.status == Status.FAIL
    assert small.facts["small_rsa_host_keys"] == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    # ssh-rsa alone: nothing to borrow the key from.
    alone = {**offer, "host_keys": ["ssh-ed25519", "ssh-rsa"]}
    assert _judge(alone, [], unread, weak={}).status == Status.ERROR
    assert _judge(alone, [], unread).status == Status.FAIL  # profile: ssh-rsa is weak


def test_rsa_certificate_algorithm_judged_by_its_certified_key() -> None:
    cert = _pub("rsa1024-cert")
    alg = "rsa-sha2-256-cert-v01@openssh.com"
    offer = {**LAB["kx-ed25519"]["offered"], "host_keys": [alg, "ssh-ed25519"]}
    got = HostKeyInfo(alg, cert.key_type, cert.bits, cert.sha256)
    out = _judge(offer, [got])
    assert out.status == Status.FAIL and cert.sha256 in out.message


def test_ecdsa_only_passes() -> None:
    offer = {**LAB["kx-ed25519"]["offered"], "host_keys": ["ecdsa-sha2-nistp256"]}
    assert _judge(offer).status == Status.PASS


def test_client_can_fetch() -> None:
    assert client_can_fetch("rsa-sha2-256") and client_can_fetch("rsa-sha2-512")
    assert not client_can_fetch("ssh-rsa") and not client_can_fetch("ssh-dss")


# --- fetch_host_key on real sockets that are not a working SSH server


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    yield srv, srv.getsockname()[1]
    srv.close()


def test_fetch_refused_is_no_ssh_server() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(NoSshServer):
        fetch_host_key("127.0.0.1", port, "rsa-sha2-256", timeout=1)


def test_fetch_silent_server_ends_at_the_deadline(listener: tuple[socket.socket, int]) -> None:
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="rsa-sha2-256"):
        fetch_host_key("127.0.0.1", listener[1], "rsa-sha2-256", timeout=0.6)
    assert time.monotonic() - t0 < 2.0


def test_fetch_from_a_non_ssh_server(listener: tuple[socket.socket, int]) -> None:
    def serve() -> None:
        conn, _ = listener[0].accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(TransportError, match="cannot read the rsa-sha2-256 host key"):
        fetch_host_key("127.0.0.1", listener[1], "rsa-sha2-256", timeout=2)


def test_fetch_unsupported_algorithm_says_so() -> None:
    with pytest.raises(TransportError, match="does not implement"):
        fetch_host_key("127.0.0.1", 1, "ssh-rsa", timeout=1)
