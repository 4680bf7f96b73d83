"""FW host checks against real lab hosts: own nftables ruleset, own sockets, own sshd."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from hostlayer_fixtures import (  # noqa: E402
    COMPLIANT_NFT,
    IP_ONLY_NFT,
    Host,
    Lab,
    load_nft,
    results,
    run_hosts,
)

from controlcheck.model import Status  # noqa: E402

DENY = "host.firewall.default-deny"
LISTEN = "host.firewall.listening-allowed"
BROAD = Path(__file__).parent / "data" / "firewall" / "broad"
IP6_DROP = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
LISTENER = ("import socket,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('0.0.0.0', 8081)); s.listen()\n"
            "l=socket.socket(); l.bind(('127.0.0.1', 9099)); l.listen()\n"
            "print('ready', flush=True); time.sleep(60)\n")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        for name in ("fw-good", "fw-none", "fw-iponly", "fw-listen", "fw-noports", "fw-broad",
                     "fw-ipt-new", "fw-ipt-good"):
            lab.add_host(name)
        lab.start_all()
        load_nft(lab.host("fw-good"), COMPLIANT_NFT)
        load_nft(lab.host("fw-listen"), COMPLIANT_NFT)
        load_nft(lab.host("fw-iponly"), IP_ONLY_NFT)
        load_nft(lab.host("fw-broad"), (BROAD / "bad-l4proto-tcp.nft").read_text())
        for name, case in (("fw-ipt-new", "ipt-bad-ctstate-new"), ("fw-ipt-good", "ipt-good-ports")):
            lab.host(name).exec(["iptables-restore"], input=(BROAD / f"{case}.rules").read_text())
            lab.host(name).exec(["ip6tables-restore"], input=IP6_DROP)
        yield lab
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def listener(lab: Lab) -> Iterator[None]:
    """A real python listener on 0.0.0.0:8081 (+ loopback 9099) inside fw-listen's netns."""
    host = lab.host("fw-listen")
    proc = subprocess.Popen(host.exec_prefix() + ["python3", "-c", LISTENER],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    yield
    proc.kill()
    proc.wait()


def test_default_deny(lab: Lab, tmp_path: Path) -> None:
    hosts: list[tuple[Host, dict[str, Any]]] = [
        (lab.host(n), {}) for n in ("fw-good", "fw-none", "fw-iponly")]
    started = time.monotonic()
    res = results(run_hosts(tmp_path, hosts, [DENY]), DENY)
    assert time.monotonic() - started < 20
    good, none, iponly = res["fw-good"], res["fw-none"], res["fw-iponly"]
    assert good.status == Status.PASS, good.message
    assert "IPv4: nftables 'inet filter input' (policy drop)" in good.message
    assert "IPv6: nftables 'inet filter input' (policy drop)" in good.message
    assert none.status == Status.FAIL, none.message
    assert "no firewall ruleset is loaded" in none.message
    assert iponly.status == Status.FAIL, iponly.message
    assert iponly.message.startswith("fw-iponly: IPv6 input is not default-deny (IPv4 is: "
                                     "nftables 'ip filter input', policy drop). Load a ruleset")


def test_default_deny_broad_accepts(lab: Lab, tmp_path: Path) -> None:
    # Policy drop, but an earlier rule accepts a whole protocol or all new connections.
    hosts: list[tuple[Host, dict[str, Any]]] = [
        (lab.host(n), {}) for n in ("fw-broad", "fw-ipt-new", "fw-ipt-good")]
    res = results(run_hosts(tmp_path, hosts, [DENY]), DENY)
    broad, new, good = res["fw-broad"], res["fw-ipt-new"], res["fw-ipt-good"]
    assert broad.status == Status.FAIL, broad.message
    assert ("nftables 'inet filter input' (IPv4+IPv6): accepts all TCP before its drop: "
            "rule 'meta l4proto tcp accept'") in broad.message
    # iptables-nft: nft JSON cannot read '-m conntrack'; iptables-save decides.
    assert new.status == Status.FAIL, new.message
    assert "rule '-A INPUT -m conntrack --ctstate NEW -j ACCEPT'" in new.message
    assert good.status == Status.PASS, good.message
    assert "IPv4: iptables 'filter INPUT' (policy drop)" in good.message


def test_default_deny_without_root_is_error(lab: Lab, tmp_path: Path) -> None:
    # The lab's unprivileged 'auditor' cannot read the ruleset: never pass, never fail.
    res = results(run_hosts(tmp_path, [(lab.host("fw-good"), {})], [DENY],
                            prefix_user="auditor"), DENY)
    r = res["fw-good"]
    assert r.status == Status.ERROR, r.message
    assert "cannot read the firewall ruleset" in r.message
    assert "Operation not permitted" in r.message


def test_listening_allowed(lab: Lab, listener: None, tmp_path: Path) -> None:
    hosts = [(lab.host("fw-good"), {"allowed_ports": [22]}),
             (lab.host("fw-listen"), {"allowed_ports": [22]}),
             (lab.host("fw-noports"), {})]
    res = results(run_hosts(tmp_path, hosts, [LISTEN]), LISTEN)
    good, bad, manual = res["fw-good"], res["fw-listen"], res["fw-noports"]
    assert good.status == Status.PASS, good.message
    assert good.message == "fw-good: every exposed listener is allowed (22/tcp (sshd))"
    assert bad.status == Status.FAIL, bad.message
    assert "8081/tcp on 0.0.0.0 (python3)" in bad.message
    assert "9099" not in bad.message.split(".")[0]  # loopback listener not counted
    assert "1 loopback-only listener(s) not counted" in bad.message
    assert manual.status == Status.MANUAL, manual.message
    assert "22/tcp (sshd)" in manual.message and "add allowed_ports" in manual.message.lower()


def test_listening_allowed_when_port_is_listed(lab: Lab, listener: None,
                                               tmp_path: Path) -> None:
    hosts = [(lab.host("fw-listen"), {"allowed_ports": [22, "8000-8100/tcp"]})]
    r = results(run_hosts(tmp_path, hosts, [LISTEN]), LISTEN)["fw-listen"]
    assert r.status == Status.PASS, r.message
