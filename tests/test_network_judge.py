"""Pure parts of the network checks on real scanner output (tests/data/fleet/scan_*.txt,
captured from the lab: see the first line of each file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlcheck.model import Status
from controlcheck.probes.network import ZoneScan, judge_management, judge_reachability
from controlcheck.transports.tcp import expand_ports, parse_scan

DATA = Path(__file__).parent / "data" / "fleet"
PORTS = [22, 80, 443, 3306]


def _scan(name: str) -> dict[int, str]:
    text = "".join(line + "\n" for line in (DATA / f"scan_{name}.txt").read_text().splitlines()
                   if not line.startswith("#"))
    return parse_scan(text, PORTS)


def test_parse_real_outputs() -> None:
    assert _scan("drop-policy") == {22: "open", 80: "closed", 443: "filtered", 3306: "filtered"}
    assert set(_scan("unreachable").values()) == {"unreachable"}
    assert _scan("bash_no-firewall") == {22: "open", 80: "closed", 443: "closed", 3306: "closed"}


def test_parse_refuses_garbage_and_missing_ports() -> None:
    with pytest.raises(ValueError, match="unexpected scanner output"):
        parse_scan("22 open\nSegmentation fault\n", [22])
    with pytest.raises(ValueError, match=r"no answer for port\(s\) \[80\]"):
        parse_scan("22 open\n", [22, 80])
    with pytest.raises(ValueError):
        parse_scan("y\n" * 10, [22])  # a host printing junk never yields states


def test_reachability_pass_fail_error() -> None:
    drop = ZoneScan("internet", _scan("drop-policy"))
    ok = judge_reachability("web", [drop], {"internet": [22]})
    assert ok.status == Status.PASS and "open [22]" in ok.message and "2 filtered" in ok.message
    bad = judge_reachability("web", [drop], {"internet": [80, 443]})
    assert bad.status == Status.FAIL
    assert "from zone internet port(s) 22 answer but only 80/tcp, 443/tcp may" in bad.message
    nothing = judge_reachability("web", [drop], {"internet": []})
    assert nothing.status == Status.FAIL and "but this zone may reach no port" in nothing.message
    down = judge_reachability("web", [ZoneScan("internet", _scan("unreachable"))],
                              {"internet": [22]})
    assert down.status == Status.ERROR and "unreachable" in down.message
    broken = judge_reachability("web", [ZoneScan("office", {}, "no python3")], {"office": [22]})
    assert broken.status == Status.ERROR and "no python3" in broken.message
    # A violation seen from one zone is a fail even if another zone could not look.
    mixed = judge_reachability("web", [drop, ZoneScan("office", {}, "no python3")],
                               {"internet": [], "office": [22]})
    assert mixed.status == Status.FAIL


def test_udp_and_ranges_in_allowlist() -> None:
    states = {22: "open", 8005: "open"}
    res = judge_reachability("h", [ZoneScan("z", states)], {"z": ["8000-8010/tcp", "22/udp"]})
    assert res.status == Status.FAIL and "port(s) 22 answer" in res.message


def test_management_exposure() -> None:
    drop = ZoneScan("internet", _scan("drop-policy"))
    assert judge_management("web", [drop], [22, 3306]).status == Status.FAIL
    assert judge_management("web", [drop], [3306, 5432]).status == Status.PASS
    assert judge_management("web", [ZoneScan("internet", _scan("unreachable"))],
                            [22]).status == Status.ERROR


def test_expand_ports_is_bounded() -> None:
    assert expand_ports([(22, 22), (80, 82), (22, 22)], 10) == [22, 80, 81, 82]
    with pytest.raises(ValueError, match="more than 100 ports"):
        expand_ports([(1, 65535)], 100)


def test_silence_from_every_zone_is_undecided() -> None:
    silent = {22: "filtered", 80: "filtered", 443: "filtered", 3306: "filtered"}
    # a zone that may reach nothing: all filtered is what it should see, but with no
    # answer anywhere the host may simply be down
    r = judge_reachability("h", [ZoneScan("internet", silent)], {"internet": []})
    assert r.status == Status.ERROR and "liveness reference" in r.message
    # a zone that may reach 22 and hears nothing: undecided even if another zone answered
    r = judge_reachability("h", [ZoneScan("internet", silent), ZoneScan("mgmt", silent)],
                           {"internet": [], "mgmt": [22]})
    assert r.status == Status.ERROR and "zone mgmt may reach 22/tcp" in r.message
    # the same silence from the internet is a pass once mgmt proves the host is up
    r = judge_reachability("h", [ZoneScan("internet", silent),
                                 ZoneScan("mgmt", _scan("drop-policy"))],
                           {"internet": [], "mgmt": [22]})
    assert r.status == Status.PASS, r.message


def test_management_needs_a_sign_of_life() -> None:
    silent = {22: "filtered", 3306: "filtered"}
    assert judge_management("h", [ZoneScan("internet", silent)], [22, 3306],
                            alive=True).status == Status.PASS
    assert judge_management("h", [ZoneScan("internet", silent)], [22, 3306],
                            alive=False).status == Status.ERROR
    assert judge_management("h", [ZoneScan("internet", silent)], [22, 3306],
                            alive=None).status == Status.ERROR
    refused = {22: "closed", 3306: "filtered"}  # an RST is a sign of life
    assert judge_management("h", [ZoneScan("internet", refused)], [22, 3306],
                            alive=None).status == Status.PASS
