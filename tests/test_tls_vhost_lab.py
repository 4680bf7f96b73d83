"""TLS checks against name-based virtual hosts on one nginx port (SNI and Host header).

The shared lab (``tests/lab/nginx.py``) gives every server block its own port; these
cases need several server blocks *on one port*, so the blocks are added here beside the
lab's own (same ``NginxServer`` type, same port).  Real nginx, 127.0.0.1 only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from controlcheck.catalogue import Catalogue, load_catalogue
from controlcheck.engine import Engine
from controlcheck.inventory import Inventory, Target
from controlcheck.model import TargetKind
from controlcheck.transports.factory import open_transport

sys.path.insert(0, str(Path(__file__).parent))
from lab.nginx import NginxLab, NginxServer  # noqa: E402
from tls_fixtures import HSTS, MOZ_CIPHERS, _write, make_ca, make_leaf  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the lab needs root")


def _block(port: int, name: str, cert: Path, key: Path, *, default: bool = False,
           extra: str = "", ciphers: str = MOZ_CIPHERS) -> NginxServer:
    lines = [f"listen 127.0.0.1:{port} ssl{' default_server' if default else ''};",
             f"server_name {name};", f'ssl_certificate "{cert}";',
             f'ssl_certificate_key "{key}";', "ssl_protocols TLSv1.2 TLSv1.3;",
             f'ssl_ciphers "{ciphers}";', extra,
             f'location / {{ default_type text/plain; return 200 "ok {name}\\n"; }}']
    return NginxServer(name, port, True, NginxLab._block(lines))


@pytest.fixture(scope="module")
def vhosts(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("tlsvhost")
    root = make_ca("vhost lab root")
    ca = d / "root.pem"
    ca.write_bytes(root.cert_pem())
    site_cert, site_key, _ = _write(d, "site", make_leaf(root, ["site.lab.test"]))
    weak_cert, weak_key, _ = _write(d, "weak", make_leaf(root, ["weak.lab.test"]))
    catch_cert, catch_key, _ = _write(d, "catch", make_leaf(root, ["catch.lab.test"]))
    nginx = NginxLab(d)
    # Port A: the catch-all default server sends HSTS, the named site does not.
    a = nginx._new("hsts-port")
    nginx.servers["catchall"] = _block(a, "catch.lab.test", catch_cert, catch_key,
                                       default=True, extra=HSTS)
    nginx.servers["site"] = _block(a, "site.lab.test", site_cert, site_key)
    # Port B: unknown names are refused (alert unrecognized_name); the one named site
    # accepts a static-RSA suite outside every profile.
    b = nginx._new("reject-port")
    nginx.servers["reject"] = _block(b, "_", weak_cert, weak_key, default=True,
                                     extra="ssl_reject_handshake on;")
    nginx.servers["weak"] = _block(b, "weak.lab.test", weak_cert, weak_key,
                                   ciphers=MOZ_CIPHERS + ":AES128-SHA", extra=HSTS)
    nginx.start()
    yield {"ca": str(ca), "a": a, "b": b}
    nginx.stop()


def _run(spec: dict[str, object]) -> dict[str, tuple[str, str]]:
    full = load_catalogue()
    cat = Catalogue([c for c in full.controls if c.family == "TLS"
                     and TargetKind.ENDPOINT in c.applies_to], full.digest, full.files)
    t = Target("ep", TargetKind.ENDPOINT, {"name": "ep", **spec})
    inv = Inventory(None, Path.cwd(), [t], {}, {}, [], "test")
    run = Engine(cat, inv, transport_factory=open_transport, timeout=5).run()
    return {r.check: (r.status.value, r.message) for r in run.results}


def test_hsts_is_read_from_the_vhost_named_by_servername(vhosts) -> None:
    """SNI picks site.lab.test; the GET must too, not the catch-all behind the address."""
    got = _run({"url": f"https://127.0.0.1:{vhosts['a']}/", "servername": "site.lab.test",
                "ca_file": vhosts["ca"]})
    assert got["http.hsts"][0] == "fail", got["http.hsts"]
    assert got["tls.certificate-hostname"][0] == "pass", got["tls.certificate-hostname"]
    catch = _run({"url": f"https://127.0.0.1:{vhosts['a']}/", "servername": "catch.lab.test",
                  "ca_file": vhosts["ca"]})
    assert catch["http.hsts"][0] == "pass", catch["http.hsts"]


def test_unrecognized_name_is_not_read_as_suites_refused(vhosts) -> None:
    """A server that refuses our SNI has said nothing about its suites or versions."""
    got = _run({"url": f"https://127.0.0.1:{vhosts['b']}/", "servername": "typo.lab.test",
                "ca_file": vhosts["ca"]})
    assert got["tls.cipher-suites"][0] == "error", got["tls.cipher-suites"]
    assert got["tls.protocol-versions"][0] == "error", got["tls.protocol-versions"]
    assert "unrecognized_name" in got["tls.cipher-suites"][1]
    # The right name reaches the weak site: its static-RSA suite is found.
    right = _run({"url": f"https://127.0.0.1:{vhosts['b']}/", "servername": "weak.lab.test",
                  "ca_file": vhosts["ca"]})
    assert right["tls.cipher-suites"][0] == "fail", right["tls.cipher-suites"]
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in right["tls.cipher-suites"][1]
    assert right["tls.protocol-versions"][0] == "pass", right["tls.protocol-versions"]
