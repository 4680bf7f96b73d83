"""Pure parts of the TLS family on real captured bytes (``tests/data/tls``).

Captures: server answers to our raw ClientHellos from nginx 1.22/OpenSSL 3.0 (lab cases
good, tls10, staticrsa, ecdsa, tls13only), tlslite-ng 0.8.2 (3DES, RC4, SSLv3 servers),
``openssl s_server`` (TLS 1.3 ServerHello; HelloRetryRequest with ``-groups P-384``) and
the Debian 12 OpenSSH 9.2 default banner + KEXINIT.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controlcheck.model import Status
from controlcheck.probes.tls import judge
from controlcheck.probes.tls.certs import CertInfo, name_matches
from controlcheck.probes.tls.profiles import known_profiles, load_profile
from controlcheck.transports import raw_hello as rh
from controlcheck.transports.ssh_kex import parse_kexinit
from controlcheck.transports.tls_handshake import parse_http_head
from controlcheck.transports.tls_suites import LEGACY_SUITES, NAME_TO_CODE, SUITES
from controlcheck.yamlio import ConfigError

DATA = Path(__file__).parent / "data" / "tls"


def cap(name: str) -> bytes:
    return (DATA / f"{name}.bin").read_bytes()


@pytest.mark.parametrize("name,kind,version,cipher,alert", [
    ("good-legacy", "alert", None, None, 70),
    ("good-weak12", "alert", None, None, 40),
    ("tls13only-weak12", "alert", None, None, 70),
    ("tl-3des-tls13", "alert", None, None, 47),
    ("tls10-legacy", "hello", rh.TLS11, "TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("staticrsa-weak12", "hello", rh.TLS12, "TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("tl-3des-weak12", "hello", rh.TLS12, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", None),
    ("tl-rc4-weak12", "hello", rh.TLS12, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", None),
    ("tl-ssl3-ssl3", "hello", rh.SSL3, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("openssl-tls13-hello", "hello", rh.TLS13, "TLS_AES_128_GCM_SHA256", None),
    ("openssl-tls13-hrr", "retry", rh.TLS13, "TLS_AES_128_GCM_SHA256", None),
])
def test_parse_captured_answers(name, kind, version, cipher, alert) -> None:
    a = rh.parse_answer(cap(name))
    assert a is not None
    assert a.kind == kind
    assert a.version == version
    assert (SUITES.get(a.cipher) if a.cipher else None) == cipher
    assert a.alert == alert


def test_tls13_groups_from_key_share() -> None:
    assert rh.parse_answer(cap("openssl-tls13-hello")).group == 0x001D
    assert rh.parse_answer(cap("openssl-tls13-hrr")).group == 0x0018


@pytest.mark.parametrize("name,group,suite", [
    ("good-info12", 0x001D, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ecdsa-info12", 0x001D, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
])
def test_full_flight(name, group, suite) -> None:
    data = cap(name)
    a = rh.parse_answer(data, want_flight=True)
    assert a is not None and a.messages == (2, 11, 12, 14)
    assert a.group == group and SUITES[a.cipher] == suite
    assert a.ocsp_stapled is False
    # every proper prefix is incomplete, never garbage and never a premature answer
    for cut in (3, 5, 60, len(data) // 2, len(data) - 1):
        assert rh.parse_answer(data[:cut], want_flight=True) is None


def test_incomplete_and_garbage() -> None:
    assert rh.parse_answer(b"") is None
    assert rh.parse_answer(cap("tls10-legacy")[:20]) is None
    with pytest.raises(rh.HelloGarbage):
        rh.parse_answer(b"HELLO I AM NOT TLS\r\n")
    with pytest.raises(rh.HelloGarbage):
        rh.parse_answer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    with pytest.raises(rh.HelloGarbage):  # a handshake record whose first message is not SH
        rh.parse_answer(b"\x16\x03\x03\x00\x08\x0b\x00\x00\x04\x00\x00\x00\x00")


def test_build_client_hello_layout() -> None:
    spec = rh.ClientHelloSpec(rh.TLS12, (0x002F, 0x000A), "a.example", status_request=True)
    rec = rh.build_client_hello(spec, random=b"\x11" * 32)
    assert rec[0] == 0x16 and struct.unpack("!H", rec[1:3])[0] == rh.TLS10
    assert struct.unpack("!H", rec[3:5])[0] == len(rec) - 5
    hs = rec[5:]
    assert hs[0] == 1 and int.from_bytes(hs[1:4], "big") == len(hs) - 4
    body = hs[4:]
    assert struct.unpack("!H", body[:2])[0] == rh.TLS12 and body[2:34] == b"\x11" * 32
    p = 34 + 1 + body[34]
    n = struct.unpack("!H", body[p:p + 2])[0]
    suites = [struct.unpack("!H", body[p + 2 + i:p + 4 + i])[0] for i in range(0, n, 2)]
    assert suites == [0x002F, 0x000A, 0x00FF]
    assert b"a.example" in body
    tls13 = rh.build_client_hello(rh.ClientHelloSpec(rh.TLS13, (0x1301,), None))
    assert b"\x00\x2b\x00\x03\x02\x03\x04" in tls13  # supported_versions = [TLS 1.3]
    ssl3 = rh.build_client_hello(rh.ClientHelloSpec(rh.SSL3, LEGACY_SUITES, "x"))
    assert ssl3[1:3] == b"\x03\x00" and b"x" not in ssl3[-20:]  # no extensions for SSLv3


@pytest.mark.parametrize("name", ["127.0.0.1", "::1", "[::1]", "10.200.1.5"])
def test_no_ip_literal_as_sni(name: str) -> None:
    """RFC 6066 §3: SNI carries host names only; OpenSSL omits an IP there too."""
    rec = rh.build_client_hello(rh.ClientHelloSpec(rh.TLS12, (0x002F,), name))
    with_name = rh.build_client_hello(rh.ClientHelloSpec(rh.TLS12, (0x002F,), "a.example"))
    assert name.strip("[]").encode() not in rec
    assert len(with_name) - len(rec) == 4 + 5 + len(b"a.example")  # only the SNI extension


def test_suite_table() -> None:
    assert len(SUITES) > 200
    for name in ("TLS_RSA_WITH_RC4_128_MD5", "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
                 "TLS_RSA_WITH_NULL_SHA256", "TLS_DH_anon_WITH_AES_128_CBC_SHA",
                 "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"):
        assert name in NAME_TO_CODE


def test_all_profiles_load() -> None:
    for name in known_profiles():
        p = load_profile(name)
        assert p.source and p.date and p.suites
    assert load_profile("mozilla-intermediate").id == "mozilla-intermediate-6.0"
    assert "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" not in load_profile("mozilla-intermediate").suites
    assert "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" in load_profile("mozilla-intermediate-5.7").suites
    assert load_profile("ncsc-nl").suite_level("TLS_RSA_WITH_AES_128_CBC_SHA") == "phase-out"


def test_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown TLS profile"):
        load_profile("nope")
    bad = tmp_path / "p.yaml"
    bad.write_text("id: mine\ntitle: t\nsource: s\ndate: '2025'\nprotocols: {allowed: [TLSv1.2]}\n"
                   "cipher_suites:\n  allowed: [TLS_NOT_A_SUITE]\ncertificate: {}\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(str(bad))
    assert ":7" in exc.value.one_line() and "TLS_NOT_A_SUITE" in exc.value.one_line()


def _cert(**kw) -> CertInfo:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = dict(subject="CN=a", issuer="CN=ca", not_before=now - timedelta(days=10),
                not_after=now + timedelta(days=80), key_type="RSA", key_bits=2048,
                signature_hash="sha256", dns_names=("a.example",), ip_names=(),
                self_signed=False, sha256="00", pem="", scts=0)
    base.update(kw)
    return CertInfo(**base)


NOW = datetime(2026, 1, 1, tzinfo=UTC)
MOZ = load_profile("mozilla-intermediate")


def test_hostname_rules() -> None:
    c = _cert(dns_names=("*.example.com", "example.org"), ip_names=("10.0.0.1",))
    assert name_matches("www.example.com", c)
    assert not name_matches("a.b.example.com", c)
    assert not name_matches("example.com", c)
    assert name_matches("EXAMPLE.org.", c)
    assert name_matches("10.0.0.1", c) and not name_matches("10.0.0.2", c)
    assert judge.judge_hostname("t", "x.example.net", c).status == Status.FAIL


def test_expiry_key_signature_judges() -> None:
    assert judge.judge_expiry("t", [_cert()], NOW, 14).status == Status.PASS
    assert judge.judge_expiry("t", [_cert(not_after=NOW + timedelta(days=5))], NOW,
                              14).status == Status.FAIL
    assert judge.judge_expiry("t", [_cert(not_after=NOW + timedelta(days=5))], NOW,
                              2).status == Status.PASS
    assert "expired" in judge.judge_expiry("t", [_cert(not_after=NOW - timedelta(days=1))],
                                           NOW, 0).message
    assert "not valid before" in judge.judge_expiry(
        "t", [_cert(not_before=NOW + timedelta(days=1))], NOW, 0).message
    assert judge.judge_key("t", [_cert(key_bits=1024)], MOZ).status == Status.FAIL
    assert judge.judge_key("t", [_cert(key_type="EC secp256r1", key_bits=256)],
                           MOZ).status == Status.PASS
    assert judge.judge_key("t", [_cert(key_type="EC secp224r1", key_bits=224)],
                           MOZ).status == Status.FAIL
    ncsc = judge.judge_key("t", [_cert()], load_profile("ncsc-nl"))
    assert ncsc.status == Status.PASS and "phase-out" in ncsc.message
    # a served self-signed root's own SHA-1 signature does not matter; an intermediate's does
    root = _cert(signature_hash="sha1", self_signed=True)
    assert judge.judge_signature("t", [_cert(), root], MOZ).status == Status.PASS
    assert judge.judge_signature("t", [_cert(), _cert(signature_hash="sha1")],
                                 MOZ).status == Status.FAIL
    assert judge.judge_signature("t", [_cert(signature_hash="md5")], MOZ).status == Status.FAIL


def test_protocol_and_suite_judges() -> None:
    acc = {"SSLv3": False, "TLSv1": False, "TLSv1.1": False, "TLSv1.2": None, "TLSv1.3": True}
    assert judge.judge_protocols("t", acc, MOZ).status == Status.PASS
    assert judge.judge_protocols("t", {**acc, "TLSv1": True}, MOZ).status == Status.FAIL
    none = {"SSLv3": False, "TLSv1": False, "TLSv1.1": False, "TLSv1.2": False, "TLSv1.3": False}
    assert judge.judge_protocols("t", none, MOZ).status == Status.FAIL
    unknown = {**none, "TLSv1.2": None}
    assert judge.judge_protocols("t", unknown, MOZ).status == Status.ERROR
    assert judge.judge_suites("t", ["TLS_RSA_WITH_RC4_128_SHA"], [], MOZ,
                              capped=False).status == Status.FAIL
    assert judge.judge_suites("t", [], ["TLS_RSA_WITH_AES_128_CBC_SHA"], MOZ,
                              capped=False).status == Status.PASS


@pytest.mark.parametrize("value,age", [
    ("max-age=31536000; includeSubDomains", 31536000), ('max-age="600"', 600),
    ("includeSubDomains; MAX-AGE=15552000", 15552000), ("max-age=abc", None), ("", None),
    # RFC 6797 §6.1/§8.1: a repeated directive or a broken quote voids the whole header.
    ("max-age=31536000; max-age=0", None), ("max-age=1; MAX-AGE=31536000", None),
    ('max-age="31536000', None), ("max-age=31536000; includeSubDomains; includeSubDomains", None),
    ("max-age=31536000;", 31536000), (" max-age = 31536000 ; preload", 31536000),
])
def test_hsts_parse(value, age) -> None:
    assert judge.parse_hsts(value) == age


def test_hsts_and_redirect_judges() -> None:
    assert judge.judge_hsts("t", "u", 200, [], 100).status == Status.FAIL
    assert judge.judge_hsts("t", "u", 200, ["max-age=50"], 100).status == Status.FAIL
    assert judge.judge_hsts("t", "u", 301, ["max-age=200", "max-age=1"], 100).status == Status.PASS
    assert judge.judge_redirect("http://a/", [("http://a/", 301, "https://a/")]).status == \
        Status.PASS
    assert judge.judge_redirect("http://a/", [("http://a/", 200, None)]).status == Status.FAIL
    assert judge.judge_redirect("http://a/", [("http://a/", 302, "http://b/"),
                                              ("http://b/", 404, None)]).status == Status.FAIL


def test_http_head_parse() -> None:
    h = parse_http_head("HTTP/1.1 301 Moved Permanently\r\nServer: nginx\r\n"
                        "Location: https://x/\r\nStrict-Transport-Security: max-age=1")
    assert h.status == 301 and h.header("location") == ["https://x/"]
    with pytest.raises(ValueError):
        parse_http_head("SSH-2.0-OpenSSH")


def test_kexinit_captured_debian12_default() -> None:
    data = cap("sshd-debian12-default")
    banner, rest = data.split(b"\r\n", 1)
    length = struct.unpack("!I", rest[:4])[0]
    packet = rest[4:4 + length]
    kex = parse_kexinit(packet[1:length - packet[0]], banner.decode())
    offer = kex.offer()
    assert banner.startswith(b"SSH-2.0-OpenSSH_9.2")
    assert "curve25519-sha256" in offer["kex"] and offer["host_keys"] == ["ssh-ed25519"]
    out = judge.judge_ssh("h", offer, MOZ.ssh, MOZ.label, min_rsa_bits=2048)
    assert out.status == Status.FAIL
    assert out.facts["weak"] == {"macs": ["umac-64-etm@openssh.com", "hmac-sha1-etm@openssh.com",
                                          "umac-64@openssh.com", "hmac-sha1"]}
    hardened = {**offer, "macs": ["hmac-sha2-256-etm@openssh.com"]}
    assert judge.judge_ssh("h", hardened, MOZ.ssh, MOZ.label,
                           min_rsa_bits=2048).status == Status.PASS
    with pytest.raises(ValueError):
        parse_kexinit(b"\x15" + b"\x00" * 40)


@pytest.mark.parametrize("text,host,port", [
    ("example.com", "example.com", 443), ("example.com:8443", "example.com", 8443),
    ("[::1]:8443", "::1", 8443), ("10.0.0.1", "10.0.0.1", 443),
])
def test_cli_target_parsing(text, host, port) -> None:
    from controlcheck.cli.cmd_tls import parse_target

    spec = parse_target(text, None, None)
    assert (spec["host"], spec["port"]) == (host, port)
    assert parse_target("https://[::1]:9443/x", "n", None)["url"] == "https://[::1]:9443/x"
    with pytest.raises(ValueError):
        parse_target("a b", None, None)
    with pytest.raises(ValueError):
        parse_target("host:99999", None, None)
