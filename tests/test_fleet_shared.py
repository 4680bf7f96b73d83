"""Run-wide shared connections, through the real CLI against lab sshd: a zone that
scans ``via`` an inventory host logs in there once for the whole run (not once per
target) with the run's SSH options, and hosts behind one bastion share one bastion
connection.  Logins are counted from each host's own sshd log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from fleet_fixtures import HARDENED_SSHD, host_entry, write_inventory  # noqa: E402
from lab import Lab  # noqa: E402

pytestmark = pytest.mark.lab

TARGETS = ("t1", "t2", "t3")  # scanned from zone "office", which is host "scan"
INNER = ("i1", "i2", "i3")  # reachable only through host "bastion"
CHECKS = ("host.access.ssh-config", "net.firewall.reachability")


def _logins(lab: Lab, name: str) -> int:
    return lab.hosts[name].sshd_log_path.read_text().count("Accepted publickey")


def _only_from(*sources: str) -> str:
    """Default-deny input; SSH only from ``sources``."""
    allowed = ", ".join(sources)
    return ("table inet filter {\n chain input {\n"
            "  type filter hook input priority 0; policy drop;\n"
            "  iif lo accept\n  ct state established,related accept\n"
            f"  ip saddr {{ {allowed} }} tcp dport 22 accept\n }}\n}}\n")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = Lab()
    tmp = tmp_path_factory.mktemp("shared")
    try:
        for name in ("scan", *TARGETS, "bastion", *INNER):
            lab.add_host(name).write_file("/etc/ssh/sshd_config.d/10-policy.conf",
                                          HARDENED_SSHD)
        lab.start_all()
        scan, bastion = lab.hosts["scan"], lab.hosts["bastion"]
        for name in TARGETS:
            lab.hosts[name].exec(["nft", "-f", "-"],
                                 input=_only_from(lab.scanner_address, scan.address))
        for name in INNER:  # the jump is really used: direct SSH is dropped
            lab.hosts[name].exec(["nft", "-f", "-"], input=_only_from(bastion.address))
        # An isolated HOME: the run's ~/.ssh/config names the bastion's key, and
        # ~/.ssh/known_hosts is empty.
        home = tmp / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "config").write_text(
            f"Host {bastion.address}\n  User auditor\n  IdentityFile {lab.client_key_path}\n")
        scan_kh = tmp / "scan_known_hosts"  # the scanner's key is not known yet
        scan_kh.write_text("")
        jump = f"auditor@{bastion.address}"
        inv = write_inventory(tmp / "inventory.yaml", {
            "zones": {"office": {"via": "scan", "kind": "office"}},
            "access_register": [{"user": "auditor", "approval": "CHG-1"}],
            "hosts": [host_entry(lab, scan, known_hosts=str(scan_kh)),
                      *(host_entry(lab, lab.hosts[n], zone_access={"office": [22]})
                        for n in TARGETS),
                      *(host_entry(lab, lab.hosts[n], proxy_jump=jump) for n in INNER)],
        })

        def run(*flags: str) -> dict[str, Any]:
            before = {n: _logins(lab, n) for n in lab.hosts}
            report = tmp / f"report{len(flags)}.json"
            argv = [sys.executable, "-m", "controlcheck", "run", "-i", str(inv), "-o",
                    str(report), "--timeout", "8", "-q", *flags]
            for check in CHECKS:
                argv += ["--only", check]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                  env=dict(os.environ, HOME=str(home)))
            rows = json.loads(report.read_text())["results"]
            return {"proc": proc, "rows": {(r["target"], r["check"]): r for r in rows},
                    "logins": {n: _logins(lab, n) - before[n] for n in lab.hosts}}

        refused = run()
        kh_after_refused = scan_kh.read_text()
        trusted = run("--trust-new-host-keys")
        yield {"lab": lab, "refused": refused, "trusted": trusted, "scan_kh": scan_kh,
               "kh_after_refused": kh_after_refused}
    finally:
        lab.teardown()


def test_unknown_scanner_key_refused_without_trust(fleet: dict[str, Any]) -> None:
    refused = fleet["refused"]
    for name in TARGETS:
        r = refused["rows"][(name, "net.firewall.reachability")]
        assert r["status"] == "error", r["message"]
        assert "not in known_hosts" in r["message"] and "--trust-new-host-keys" in r["message"]
    assert refused["logins"]["scan"] == 0  # no credential offered to an unknown key
    assert fleet["kh_after_refused"] == ""


def test_scanner_host_one_login_for_all_targets_with_trust(fleet: dict[str, Any]) -> None:
    trusted = fleet["trusted"]
    for name in TARGETS:
        r = trusted["rows"][(name, "net.firewall.reachability")]
        assert r["status"] == "pass", r["message"]
        assert r["facts"]["zones"]["office"]["22"] == "open"
        assert trusted["rows"][(name, "host.access.ssh-config")]["status"] == "pass"
    # The scanner's own checks and the three targets' scans: one login, recorded key.
    assert trusted["rows"][("scan", "host.access.ssh-config")]["status"] == "pass"
    assert trusted["logins"]["scan"] == 1, trusted["proc"].stderr
    lab = fleet["lab"]
    assert fleet["scan_kh"].read_text().split() == \
        [lab.hosts["scan"].address, *lab.hosts["scan"].host_key_public().split()[:2]]
    for name in TARGETS:
        assert trusted["logins"][name] == 1


@pytest.mark.parametrize("which", ["refused", "trusted"])
def test_hosts_behind_one_bastion_share_one_login(fleet: dict[str, Any], which: str) -> None:
    got = fleet[which]
    why = (got["logins"], {n: got["rows"][(n, "host.access.ssh-config")]["message"]
                           for n in INNER}, got["proc"].stderr[-2000:])
    for name in INNER:  # direct SSH is dropped, so these ran through the bastion
        assert got["rows"][(name, "host.access.ssh-config")]["status"] == "pass", why
        assert got["logins"][name] == 1, why
    assert got["logins"]["bastion"] == 1, why
