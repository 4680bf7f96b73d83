"""TLS probe edge cases found in review, each against a real server on 127.0.0.1.

- legacy versions: a server (behind a picky proxy) that drops some raw ClientHellos
  without an alert while OpenSSL gets through;
- suites: a server that picks a suite we did not offer (real nginx ServerHello bytes
  replayed to every hello);
- SNI: an IP target without a servername sends no SNI (RFC 6066), against
  ``openssl s_server -servername_fatal``, which refuses an IP literal as SNI;
- https-redirect: redirects that leave the host are judged on that first hop, never
  followed (no name lookup of another host);
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlcheck.catalogue import Catalogue, load_catalogue
from controlcheck.engine import Engine
from controlcheck.inventory import Inventory, Target
from controlcheck.model import CheckResult, TargetKind
from controlcheck.transports.factory import open_transport

sys.path.insert(0, str(Path(__file__).parent))
from lab.nginx import NginxLab  # noqa: E402
from tls_fixtures import (  # noqa: E402
    PickyProxy,
    ReplayServer,
    _write,
    closed_port,
    make_ca,
    make_leaf,  # noqa: E402
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the lab needs root")
EXT_ENCRYPT_THEN_MAC = 22  # OpenSSL clients send it; our raw hellos do not


def _run(targets: list[Target]) -> dict[tuple[str, str], CheckResult]:
    full = load_catalogue()
    cat = Catalogue([c for c in full.controls if c.family == "TLS"
                     and TargetKind.ENDPOINT in c.applies_to], full.digest, full.files)
    inv = Inventory(None, Path.cwd(), targets, {}, {}, [], "test")
    run = Engine(cat, inv, transport_factory=open_transport, workers=8, timeout=5).run()
    return {(r.target, r.check): r for r in run.results}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("tlsreview")
    root = make_ca("review lab root")
    (d / "root.pem").write_bytes(root.cert_pem())
    cert, key, _ = _write(d, "site", make_leaf(root, ["site.lab.test"]))
    nginx = NginxLab(d)
    ports = {
        "tls10only": nginx.add_server("tls10only", cert, key, protocols="TLSv1",
                                      ciphers="DEFAULT:@SECLEVEL=0"),
        "alllegacy": nginx.add_server("alllegacy", cert, key,
                                      protocols="TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
                                      ciphers="DEFAULT:@SECLEVEL=0"),
    }
    for name, where in (("to-other-https", "https://elsewhere.lab.test/login"),
                        ("to-other-http", "http://elsewhere.lab.test/"),
                        ("to-same-https", "https://127.0.0.1:8443/x")):
        ports[name] = nginx.add_plain_http(name, where)
    nginx.start()
    stoppers = [nginx.stop]
    proxies = {
        # drops every hello below TLS 1.2 (our TLS-1.1-capped probe), lets OpenSSL through
        "tls10only": PickyProxy(ports["tls10only"], lambda v, _e: v >= 0x0303),
        # drops every hello without encrypt_then_mac: all raw probes, never OpenSSL's
        "alllegacy": PickyProxy(ports["alllegacy"],
                                lambda _v, e: EXT_ENCRYPT_THEN_MAC in e),
    }
    stoppers += [p.stop for p in proxies.values()]
    yield {"dir": d, "ca": d / "root.pem", "ports": ports, "proxies": proxies}
    for s in reversed(stoppers):
        s()


def _target(name: str, port: int, ca: Path) -> Target:
    return Target(name, TargetKind.ENDPOINT,
                  {"name": name, "url": f"https://127.0.0.1:{port}/",
                   "servername": "site.lab.test", "ca_file": str(ca)})


def test_openssl_tls10_wins_over_a_dropped_raw_legacy_hello(servers) -> None:
    """OpenSSL negotiates TLS 1.0; the raw 1.1-capped hello is dropped: TLS 1.0 stays
    accepted (fail naming it), and 1.1/SSLv3 are called undecided, not refused."""
    by = _run([_target("p10", servers["proxies"]["tls10only"].port, servers["ca"])])
    r = by[("p10", "tls.protocol-versions")]
    assert r.status.value == "fail", r.message
    assert r.facts["versions_accepted"] == ["TLSv1"]
    assert "accepts TLSv1," in r.message
    assert "could not tell about SSLv3, TLSv1.1" in r.message
    assert "accepts none" not in r.message


def test_legacy_refusals_untrusted_when_no_raw_hello_is_accepted(servers) -> None:
    """The server accepts TLS 1.0 but drops every raw hello: no raw ServerHello at all, so
    the dropped legacy probe proves nothing; pass would be false."""
    by = _run([_target("pall", servers["proxies"]["alllegacy"].port, servers["ca"])])
    r = by[("pall", "tls.protocol-versions")]
    assert r.status.value == "error", r.message
    assert "could not tell whether SSLv3, TLSv1, TLSv1.1 is accepted" in r.message
    assert by[("pall", "tls.cipher-suites")].status.value == "error"
    # the same server without the proxy: TLS 1.0 is seen and fails
    direct = _run([_target("dall", servers["ports"]["alllegacy"], servers["ca"])])
    assert direct[("dall", "tls.protocol-versions")].status.value == "fail"


def test_a_suite_that_was_not_offered_is_an_error_not_a_pass() -> None:
    """Every hello gets nginx's real ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256, also
    the probe offering only suites outside the profile: not "none accepted"."""
    data = (Path(__file__).parent / "data" / "tls" / "good-info12.bin").read_bytes()
    srv = ReplayServer(data)
    try:
        by = _run([Target("replay", TargetKind.ENDPOINT,
                          {"name": "replay", "host": "127.0.0.1", "port": srv.port})])
    finally:
        srv.stop()
    r = by[("replay", "tls.cipher-suites")]
    assert r.status.value == "error", r.message
    assert ("chose suite TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which was not offered"
            in r.message)


@pytest.mark.parametrize(("name", "status", "words"), [
    ("to-other-https", "pass", "to https://elsewhere.lab.test/login (another host: "
                               "elsewhere.lab.test)"),
    ("to-same-https", "pass", "redirects (301) to https://127.0.0.1:8443/x"),
    # the old probe followed this hop: a name lookup of elsewhere.lab.test, then "error"
    ("to-other-http", "fail", "http://elsewhere.lab.test/ (another host: "
                              "elsewhere.lab.test), not followed"),
])
def test_redirect_leaving_the_host_is_judged_not_followed(servers, name: str, status: str,
                                                           words: str) -> None:
    url = f"http://127.0.0.1:{servers['ports'][name]}/"
    by = _run([Target(name, TargetKind.ENDPOINT, {"name": name, "url": url})])
    r = by[(name, "http.https-redirect")]
    assert (r.status.value, words in r.message) == (status, True), r.message
    assert len(r.facts["hops"]) == 1


@pytest.fixture()
def s_server(servers):
    """openssl s_server that answers a wrong SNI with a fatal unrecognized_name alert."""
    d, port = servers["dir"], closed_port()
    cert, key = d / "site.pem", d / "site.key"
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
         "-key", str(key), "-cert2", str(cert), "-key2", str(key),
         "-servername", "site.lab.test", "-servername_fatal", "-www", "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(5)


def test_ip_target_sends_no_sni(s_server: int) -> None:
    by = _run([Target("ip", TargetKind.ENDPOINT, {"name": "ip", "host": "127.0.0.1",
                                                  "port": s_server})])
    r = by[("ip", "tls.protocol-versions")]
    assert r.status.value == "pass", r.message
    assert r.facts["versions_accepted"] == ["TLSv1.2", "TLSv1.3"]
    # OpenSSL's default suites include CBC-SHA ones outside Mozilla intermediate
    s = by[("ip", "tls.cipher-suites")]
    assert s.status.value == "fail", s.message
    assert "_CBC_" in s.message
