"""Network-layer checks against real lab hosts with real nftables rulesets, scanned
from three kinds of zone: a namespace (exec_prefix), this machine (via: local) and
another lab host over SSH (via: jump)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from fleet_fixtures import NetnsServer, host_entry, http_server, write_inventory  # noqa: E402
from lab import Lab  # noqa: E402

from controlcheck.catalogue import load_catalogue  # noqa: E402
from controlcheck.engine import Engine  # noqa: E402
from controlcheck.inventory import load_inventory  # noqa: E402
from controlcheck.model import CheckResult, Status  # noqa: E402
from controlcheck.transports.factory import open_transport  # noqa: E402

pytestmark = pytest.mark.lab


class _Admin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"admin panel\n")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], CheckResult]]:
    lab = Lab()
    servers: list[NetnsServer] = []
    try:
        web, wide, bare, jump, silent = (lab.add_host(n)
                                         for n in ("web", "wide", "bare", "jump", "silent"))
        lab.add_zone_netns("internet")
        lab.start_all()
        # web: SSH and the admin panel only from the scanner (mgmt) and ssh from jump.
        web.exec(["nft", "-f", "-"], input=(
            "table inet filter {\n chain input {\n"
            "  type filter hook input priority 0; policy drop;\n"
            "  iif lo accept\n  ct state established,related accept\n"
            f"  ip saddr {lab.scanner_address} tcp dport {{ 22, 8080 }} accept\n"
            f"  ip saddr {jump.address} tcp dport 22 accept\n"
            "  tcp dport 80 reject with tcp reset\n }\n}\n"))
        # silent: drops everything from everywhere, like a host that is down.
        silent.exec(["nft", "-f", "-"], input=(
            "table inet filter {\n chain input {\n"
            "  type filter hook input priority 0; policy drop;\n  iif lo accept\n }\n}\n"))
        for h in (web, wide):
            bound = threading.Event()
            servers.append(NetnsServer(h.netns, http_server(h.address, 8080, _Admin, bound))
                           .start())
            assert bound.wait(5)
        inv = write_inventory(tmp_path_factory.mktemp("net") / "inventory.yaml", {
            "zones": {
                "internet": {"exec_prefix": lab.zone_prefix("internet"), "kind": "public"},
                "mgmt": {"via": "local", "kind": "management"},
                "office": {"via": "jump", "kind": "office"},
            },
            "hosts": [
                host_entry(lab, web, zone_access={"internet": [], "mgmt": [22, 8080],
                                                  "office": [22]}),
                host_entry(lab, wide, zone_access={"internet": [443]}),
                host_entry(lab, bare),
                host_entry(lab, jump),
                host_entry(lab, silent, zone_access={"internet": [], "mgmt": [22]}),
            ],
        })
        catalogue = load_catalogue().select(["net.firewall.reachability",
                                             "net.access.management-exposure"])
        run = Engine(catalogue, load_inventory(inv), transport_factory=open_transport).run()
        yield {(r.target, r.check): r for r in run.results if r.check.startswith("net.")}
    finally:
        for s in servers:
            s.stop()
        lab.teardown()


def test_compliant_host_passes_from_every_zone(results: dict[tuple[str, str], CheckResult]) -> None:
    r = results[("web", "net.firewall.reachability")]
    assert r.status == Status.PASS, r.message
    zones = r.facts["zones"]
    assert zones["internet"][22] == "filtered" and zones["internet"][80] == "closed"
    assert zones["mgmt"][8080] == "open" and zones["mgmt"][22] == "open"
    assert zones["office"][22] == "open" and zones["office"][8080] == "filtered"
    m = results[("web", "net.access.management-exposure")]
    assert m.status == Status.PASS, m.message


def test_open_host_fails_both(results: dict[tuple[str, str], CheckResult]) -> None:
    r = results[("wide", "net.firewall.reachability")]
    assert r.status == Status.FAIL
    assert "from zone internet port(s) 22, 8080 answer but only 443/tcp may" in r.message
    m = results[("wide", "net.access.management-exposure")]
    assert m.status == Status.FAIL and "22, 8080 from zone internet" in m.message


def test_host_without_zone_access_is_manual(results: dict[tuple[str, str], CheckResult]) -> None:
    r = results[("bare", "net.firewall.reachability")]
    assert r.status == Status.MANUAL and "zone_access" in r.message
    # Exposure needs no per-host rules: the public zone must not reach SSH, and does.
    assert results[("bare", "net.access.management-exposure")].status == Status.FAIL


def test_scan_evidence_recorded(results: dict[tuple[str, str], CheckResult]) -> None:
    assert results[("web", "net.firewall.reachability")].evidence


def test_silence_is_not_a_firewall_verdict(results: dict[tuple[str, str], CheckResult]) -> None:
    # Every SYN times out from every zone: a dropping firewall and a dead host look the
    # same, so neither network check may pass.
    reach = results[("silent", "net.firewall.reachability")]
    assert reach.status == Status.ERROR, reach.message
    assert "zone mgmt may reach 22/tcp but no port answered" in reach.message
    exposure = results[("silent", "net.access.management-exposure")]
    assert exposure.status == Status.ERROR, exposure.message
    assert "answered nowhere else" in exposure.message
