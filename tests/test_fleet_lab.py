"""The whole catalogue over SSH against a fleet of lab hosts that differ, through the
real CLI (`controlcheck run -i <generated inventory>`), asserting each host's status
per check.  Broken hosts (unreachable, changed host key, no banner, megabytes of
output) must end as `error` within the timeout while the run completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from fleet_fixtures import (  # noqa: E402
    HARDENED_SSHD,
    WEAK_SSHD,
    NetnsServer,
    host_entry,
    silent_listener,
    write_inventory,
)
from lab import Lab  # noqa: E402

pytestmark = pytest.mark.lab


def _nft(scanner: str) -> str:
    """Default-deny input; SSH only from the scanner (the management zone)."""
    return ("table inet filter {\n chain input {\n"
            "  type filter hook input priority 0; policy drop;\n"
            "  iif lo accept\n  ct state established,related accept\n"
            f"  ip saddr {scanner} tcp dport 22 accept\n }}\n}}\n")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = Lab()
    tmp = tmp_path_factory.mktemp("fleet")
    server = None
    try:
        names = ("compliant", "weakssh", "nofw", "extraadmin", "hostkey", "chatty")
        hosts = {n: lab.add_host(n) for n in names}
        for n, h in hosts.items():
            h.write_file("/etc/ssh/sshd_config.d/10-policy.conf",
                         WEAK_SSHD if n == "weakssh" else HARDENED_SSHD)
        hosts["extraadmin"].write_file("/etc/group", "\n".join(
            line + ("," if line.split(":")[3] else "") + "mallory" if line.startswith("sudo:")
            else line for line in hosts["extraadmin"].read_file("/etc/group").decode().splitlines())
            + "\n")
        # Every command on this host prints endlessly (sshd runs this instead).
        hosts["chatty"].write_file("/etc/ssh/sshd_config.d/05-chatty.conf", "ForceCommand yes\n")
        lab.add_zone_netns("internet")
        lab.add_zone_netns("hang")
        lab.start_all()
        for n, h in hosts.items():
            if n != "nofw":
                h.exec(["nft", "-f", "-"], input=_nft(lab.scanner_address))
        bound = threading.Event()
        server = NetnsServer(lab.zones["hang"].netns,
                             silent_listener(lab.zones["hang"].address, 22, bound)).start()
        assert bound.wait(5)
        wrong_kh = tmp / "wrong_known_hosts"
        wrong_kh.write_text(f"{hosts['hostkey'].address} "
                            f"{hosts['compliant'].host_key_public().rsplit(' ', 1)[0]}\n")
        zone_access = {"internet": [], "mgmt": [22]}
        entries = [host_entry(lab, h, zone_access=zone_access) for n, h in hosts.items()]
        entries[names.index("hostkey")]["known_hosts"] = str(wrong_kh)
        entries.append(host_entry(lab, hosts["compliant"], name="unreachable",
                                  address=str(lab.network.network_address + 190),
                                  zone_access=zone_access))
        entries.append(host_entry(lab, hosts["compliant"], name="hang",
                                  address=lab.zones["hang"].address, zone_access=zone_access))
        inv = write_inventory(tmp / "inventory.yaml", {
            "zones": {"internet": {"exec_prefix": lab.zone_prefix("internet"), "kind": "public"},
                      "mgmt": {"via": "local", "kind": "management"}},
            "access_register": [{"user": "auditor", "approval": "CHG-1"}],
            "hosts": entries,
        })
        report = tmp / "report.json"
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "controlcheck", "run", "-i", str(inv),
                               "-o", str(report), "--timeout", "8", "-q"],
                              capture_output=True, text=True, timeout=180)
        elapsed = time.monotonic() - t0
        data = json.loads(report.read_text())
        yield {"proc": proc, "elapsed": elapsed, "report": data,
               "status": {(r["target"], r["check"]): r for r in data["results"]},
               "sshd_logs": {n: h.sshd_log_path.read_text() for n, h in hosts.items()}}
    finally:
        if server:
            server.stop()
        lab.teardown()


ASSERTED = ("host.access.ssh-config", "host.access.uid0", "host.access.admins-approved",
            "host.firewall.default-deny", "net.firewall.reachability",
            "net.access.management-exposure")

EXPECTED: dict[str, dict[str, str]] = {
    "compliant": dict.fromkeys(ASSERTED, "pass"),
    "weakssh": {**dict.fromkeys(ASSERTED, "pass"), "host.access.ssh-config": "fail"},
    "nofw": {**dict.fromkeys(ASSERTED, "pass"), "host.firewall.default-deny": "fail",
             "net.firewall.reachability": "fail", "net.access.management-exposure": "fail"},
    "extraadmin": {**dict.fromkeys(ASSERTED, "pass"), "host.access.admins-approved": "fail"},
    # The network sees these hosts fine; only the SSH-based checks cannot decide.
    "hostkey": {**dict.fromkeys(ASSERTED[:4], "error"), "net.firewall.reachability": "pass",
                "net.access.management-exposure": "pass"},
    "unreachable": dict.fromkeys(ASSERTED, "error"),
    "hang": {**dict.fromkeys(ASSERTED[:4], "error"), "net.firewall.reachability": "fail",
             "net.access.management-exposure": "fail"},
}


@pytest.mark.parametrize("host", sorted(EXPECTED))
def test_each_host_gets_its_expected_statuses(fleet: dict[str, Any], host: str) -> None:
    got = {c: fleet["status"][(host, c)]["status"] for c in ASSERTED}
    assert got == EXPECTED[host], {c: fleet["status"][(host, c)]["message"] for c in ASSERTED}


def test_chatty_host_never_passes_a_host_check(fleet: dict[str, Any]) -> None:
    rows = [r for r in fleet["report"]["results"] if r["target"] == "chatty"
            and r["check"].startswith("host.")]
    assert rows and all(r["status"] != "pass" for r in rows), \
        [(r["check"], r["status"], r["message"]) for r in rows if r["status"] == "pass"]


def test_broken_hosts_say_why(fleet: dict[str, Any]) -> None:
    msg = {h: fleet["status"][(h, "host.access.ssh-config")]["message"]
           for h in ("hostkey", "unreachable", "hang")}
    assert "HOST KEY CHANGED" in msg["hostkey"]
    assert "cannot connect" in msg["unreachable"] or "timed out" in msg["unreachable"]
    assert "hang" in msg["hang"] and ("banner" in msg["hang"] or "timed out" in msg["hang"])


def test_run_completes_in_time_with_one_connection_per_host(fleet: dict[str, Any]) -> None:
    assert fleet["proc"].returncode == 1, fleet["proc"].stderr  # failures found
    assert fleet["elapsed"] < 60
    for name in ("compliant", "weakssh", "nofw", "extraadmin"):
        assert fleet["sshd_logs"][name].count("Accepted publickey") == 1, name
    assert "Accepted publickey" not in fleet["sshd_logs"]["hostkey"]  # no credential offered
