"""Shared helpers for the FW/ACCESS host-layer lab tests (owned by that area).

Hosts are lab hosts (tests/lab) checked through ``LocalTransport`` with the
host's ``nsenter`` prefix, via the real engine and the packaged catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from controlcheck.catalogue import load_catalogue
from controlcheck.engine import Engine, Run
from controlcheck.inventory import load_inventory
from controlcheck.model import CheckResult
from controlcheck.transports.factory import open_transport

try:
    from tests.lab import Host, Lab
except ImportError:  # pytest imports test modules top-level (tests/ has no __init__.py)
    from lab import Host, Lab  # type: ignore[no-redef]

__all__ = ["Host", "Lab", "evidence_text", "load_nft", "results", "run_hosts"]

COMPLIANT_NFT = """\
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    tcp dport 22 accept
  }
}
"""

IP_ONLY_NFT = """\
table ip filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    tcp dport 22 accept
  }
}
"""

HARDENED_SSHD = ("PermitRootLogin no\nPasswordAuthentication no\n"
                 "KbdInteractiveAuthentication no\nPermitEmptyPasswords no\n")
WEAK_SSHD = "PermitRootLogin yes\nPasswordAuthentication yes\n"


def load_nft(host: Host, ruleset: str) -> None:
    host.exec(["nft", "-f", "-"], input=ruleset)


def run_hosts(tmp: Path, hosts: Sequence[tuple[Host, Mapping[str, Any]]], only: Sequence[str],
              register: Sequence[Mapping[str, Any]] = (),
              prefix_user: str | None = None) -> Run:
    """Run the catalogue controls holding ``only`` against lab hosts (local + nsenter)."""
    entries = [{"name": h.name, "transport": "local",
                "exec_prefix": h.exec_prefix(user=prefix_user), **extra} for h, extra in hosts]
    inv = tmp / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"hosts": entries, "access_register": list(register)}))
    catalogue = load_catalogue().select(list(only))
    return Engine(catalogue, load_inventory(inv), transport_factory=open_transport).run()


def results(run: Run, check: str) -> dict[str, CheckResult]:
    return {r.target: r for r in run.results if r.check == check}


def evidence_text(run: Run, target: str) -> str:
    return "\n".join(e.content.decode("utf-8", "replace") for e in run.evidence.all()
                     if e.target == target)
