"""A scanner zone that cannot send at all must never look like a dropping firewall.

Each zone here is a real, empty network namespace (``unshare -n``) with one route for the
target's network: ``blackhole`` (connect: EINVAL), ``prohibit`` (EACCES), ``unreachable``
(EHOSTUNREACH).  No packet leaves the namespace; the scan program is the real one, run
through the real LocalTransport prefix.  (A zone whose own output firewall drops SYNs
still looks "filtered": the kernel retransmits silently, like a remote drop.)
"""

from __future__ import annotations

import os
import shutil

import pytest

from controlcheck.model import Status
from controlcheck.probes.network import ZoneScan, judge_management, judge_reachability
from controlcheck.transports.local import LocalTransport
from controlcheck.transports.tcp import bash_scan_argv, parse_scan, run_scan

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="not root: needs a network namespace")

SETUPS = {
    "blackhole": "ip route add blackhole 10.9.9.0/24",
    "prohibit": "ip route add prohibit 10.9.9.0/24",
    "unreachable": "ip route add unreachable 10.9.9.0/24",
}


def _zone(setup: str) -> LocalTransport:
    return LocalTransport("zone", prefix=["unshare", "-n", "sh", "-c",
                                          f'ip link set lo up; {setup}; exec "$@"', "sh"])


@pytest.mark.parametrize("kind", sorted(SETUPS))
def test_zone_without_a_path_is_an_error_not_a_pass(kind: str) -> None:
    states, _ = run_scan(_zone(SETUPS[kind]), "10.9.9.9", [22, 80, 443], 1.0)
    assert set(states.values()) == {"unreachable"}, states
    scan = ZoneScan("internet", states)
    assert judge_reachability("web", [scan], {"internet": []}).status == Status.ERROR
    assert judge_management("web", [scan], [22]).status == Status.ERROR


@pytest.mark.parametrize("kind", ["blackhole", "prohibit"])
def test_bash_fallback_agrees(kind: str) -> None:
    t = _zone(SETUPS[kind])
    out = t.run(bash_scan_argv("10.9.9.9", [22, 80], 1.0), timeout=10)
    assert set(parse_scan(out.text, [22, 80]).values()) == {"unreachable"}, out.text
