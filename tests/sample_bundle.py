#!/usr/bin/env python3
"""Build a sample evidence bundle from a real lab run (needs root):

    sudo .venv/bin/python tests/sample_bundle.py evidence-sample.zip

Brings up two namespace hosts (one hardened behind a default-deny firewall, one stock)
and three TLS endpoints on loopback, writes an inventory with scanner zones, runs the
whole catalogue over SSH with ``--bundle`` and a fresh signing key, then verifies the
bundle offline.  Everything stays on loopback and the lab's own namespaces.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_fixtures import harden, host_entry, load_nft, write_inventory  # noqa: E402
from lab import Lab  # noqa: E402
from tls_fixtures import start_lab  # noqa: E402


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlcheck", *args], text=True,
                          capture_output=True, timeout=600)


def main(out: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="cc-sample-"))
    lab = Lab()
    tls = None
    try:
        web1, web2 = lab.add_host("web1"), lab.add_host("web2")
        harden(web1)
        lab.add_zone_netns("internet")
        lab.start_all()
        load_nft(web1)
        tls = start_lab(work / "tls")
        zone_access = {"internet": [], "mgmt": [22]}
        inventory = write_inventory(work / "inventory.yaml", {
            "zones": {"internet": {"exec_prefix": lab.zone_prefix("internet"), "kind": "public"},
                      "mgmt": {"via": "local", "kind": "management"}},
            "hosts": [host_entry(lab, h, zone_access=zone_access, allowed_ports=[22])
                      for h in (web1, web2)],
            "access_register": [{"user": "auditor", "approval": "LAB-1"}],
            "endpoints": [{"name": c.name, "url": c.url, "servername": c.servername,
                           "ca_file": str(tls.ca_file)}
                          for c in tls.cases if c.name in ("good", "expired", "tls10")],
        })
        key = work / "signer"
        keygen = cli("keygen", "--output", str(key))
        print(keygen.stdout.strip())
        run = cli("run", "-i", str(inventory), "-q", "-o", str(work / "report.json"),
                  "--bundle", str(out), "--signing-key", str(key))
        print(f"controlcheck run: exit {run.returncode}", run.stderr.strip())
        verify = cli("bundle", "verify", str(out), "--key", f"{key}.pub")
        print(verify.stdout.strip(), verify.stderr.strip())
        print(f"public key for auditors: {key}.pub")
        return verify.returncode
    finally:
        if tls is not None:
            tls.stop()
        lab.teardown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]).resolve()))
