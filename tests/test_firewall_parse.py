"""Firewall parsers and judges on real captured outputs.

``tests/data/firewall/nft/*.json``: each ``X.nft`` was loaded with ``nft -f`` in a
throw-away network namespace and listed with ``nft -j list ruleset`` (nftables
1.0.6, Debian 12).  ``iptables-nft-compat.json`` is the nft view of rules made
with iptables-nft.  ``iptables/*.save``: ``iptables-save``/``ip6tables-save``
(nf_tables backend) and ``iptables-legacy-save``/``ip6tables-legacy-save`` output
from a namespace.  ``ss/``: ``ss -H -tulnp`` and ``/proc/net/*`` with a python
listener set (wildcard, loopback, ``SO_BINDTODEVICE lo``, dual-stack, UDP).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controlcheck.inventory import parse_ports
from controlcheck.probes.firewall_rules import (
    IPV4,
    IPV6,
    RulesetParseError,
    judge_default_deny,
    parse_iptables_save,
    parse_nft_json,
)
from controlcheck.probes.listening import (
    SocketParseError,
    judge_listening,
    parse_proc_net,
    parse_ss,
    summarise_ports,
)

DATA = Path(__file__).parent / "data" / "firewall"


def nft(name: str):
    return parse_nft_json((DATA / "nft" / f"{name}.json").read_text())


def ipt(name: str, source: str):
    return parse_iptables_save((DATA / "iptables" / f"{name}.save").read_text(), source)


@pytest.mark.parametrize("name", ["inet-drop", "final-reject", "ip-and-ip6-drop",
                                  "two-tables"])
def test_nft_default_deny_holds(name: str) -> None:
    verdict = judge_default_deny([nft(name)], ipv6_enabled=True)
    assert verdict.holds, verdict
    assert verdict.uncovered == []


@pytest.mark.parametrize(("name", "uncovered"), [
    ("empty", [IPV4, IPV6]),
    ("ip-only-drop", [IPV6]),  # an ip table leaves IPv6 open
    ("policy-accept", [IPV4, IPV6]),
    ("accept-all-first", [IPV4, IPV6]),  # policy drop, but 'counter accept' first
    ("jump-accept-all", [IPV4, IPV6]),  # policy drop, but jumps to an accept-all chain
    ("output-only-drop", [IPV4, IPV6]),  # drops output, not input
    ("limit-drop-last", [IPV4, IPV6]),  # rate-limited drop is conditional
])
def test_nft_default_deny_fails(name: str, uncovered: list[str]) -> None:
    verdict = judge_default_deny([nft(name)], ipv6_enabled=True)
    assert not verdict.holds
    assert verdict.uncovered == uncovered


def test_ip_only_is_enough_without_ipv6_in_kernel() -> None:
    assert judge_default_deny([nft("ip-only-drop")], ipv6_enabled=False).holds


def test_nft_describes_why() -> None:
    (chain,) = nft("accept-all-first").chains
    assert chain.fallthrough == "accepts everything: rule 'counter accept'"
    assert not chain.denies and chain.policy == "drop"
    (chain,) = nft("jump-accept-all").chains
    assert "via jump allow_all" in chain.fallthrough
    (chain,) = nft("final-reject").chains
    assert chain.denies and chain.fallthrough.startswith("final rule rejects")
    assert nft("empty").empty and nft("empty").chains == ()


def test_nft_xt_reject_target_counts_as_reject() -> None:
    chains = {c.name: c for c in nft("iptables-nft-compat").chains}
    assert chains["ip6 filter INPUT"].denies
    assert "xt target REJECT" in chains["ip6 filter INPUT"].fallthrough


def test_iptables_nft_compat_match_is_judged_by_iptables_save() -> None:
    # '-m conntrack' shows in nft JSON only as 'xt match conntrack': it may say NEW
    # (accept all) or ESTABLISHED, so the nft view alone is undecided, never a pass.
    rs = nft("iptables-nft-compat")
    chains = {c.name: c for c in rs.chains}
    assert chains["ip filter INPUT"].undecided and not chains["ip filter INPUT"].denies
    alone = judge_default_deny([rs], ipv6_enabled=True)
    assert alone.uncovered == [IPV4] and alone.undecided == [chains["ip filter INPUT"]]
    # The same capture's iptables-save views (nf_tables backend) read the same table.
    views = [rs, ipt("nft-v4-policy-drop", "iptables"), ipt("nft-v6-final-reject", "ip6tables")]
    assert judge_default_deny(views, ipv6_enabled=True).holds


def test_two_input_chains_one_dropping_suffices() -> None:
    rs = nft("two-tables")
    assert {c.name: c.denies for c in rs.chains} == {"inet audit input": False,
                                                      "inet filter input": True}


def test_nft_garbage_is_a_parse_error() -> None:
    with pytest.raises(RulesetParseError):
        parse_nft_json("Error: Could not process rule: Operation not permitted")


def test_dormant_table_not_credited() -> None:
    text = (DATA / "nft" / "inet-drop.json").read_text().replace(
        '"name": "filter", "handle"', '"name": "filter", "flags": ["dormant"], "handle"', 1)
    assert '"dormant"' in text
    rs = parse_nft_json(text)
    assert rs.chains == () and "dormant" in rs.notes[0]


def test_iptables_policy_drop_and_final_reject() -> None:
    v4 = ipt("nft-v4-policy-drop", "iptables")
    v6 = ipt("nft-v6-final-reject", "ip6tables")
    assert v4.chains[0].denies and v4.chains[0].families == {IPV4}
    assert v6.chains[0].denies and v6.chains[0].families == {IPV6}
    assert judge_default_deny([v4, v6], ipv6_enabled=True).holds
    assert judge_default_deny([v4], ipv6_enabled=True).uncovered == [IPV6]


def test_iptables_accept_before_drop_is_open() -> None:
    rs = ipt("legacy-accept-then-drop", "iptables-legacy")
    assert not rs.chains[0].denies
    assert "accepts everything: rule '-A INPUT -j ACCEPT'" in rs.chains[0].fallthrough


@pytest.mark.parametrize("name", ["legacy-v4-open", "legacy-v6-empty", "nft-empty"])
def test_iptables_empty_or_open(name: str) -> None:
    rs = ipt(name, "iptables")
    assert rs.empty
    assert not judge_default_deny([rs], ipv6_enabled=False).holds


def test_iptables_interface_wide_accept_is_open() -> None:
    text = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -i eth0 -j ACCEPT\nCOMMIT\n")
    (chain,) = parse_iptables_save(text, "iptables").chains
    assert not chain.denies and "interface eth0" in chain.fallthrough


def test_legacy_tables_union_with_nft() -> None:
    # An open legacy table does not undo a dropping nft chain: packets pass both.
    verdict = judge_default_deny([nft("inet-drop"), ipt("legacy-v4-open", "iptables-legacy")],
                                 ipv6_enabled=True)
    assert verdict.holds and len(verdict.open_chains) == 1


# --------------------------------------------------------------------------- sockets


def test_ss_parse_real_output() -> None:
    listeners = parse_ss((DATA / "ss" / "netns-mixed.tulnp.txt").read_text())
    by = {(x.proto, x.address, x.port): x for x in listeners}
    assert by[("tcp", "0.0.0.0", 22)].process == "python3"
    assert by[("tcp", "*", 8443)].loopback is False  # dual-stack wildcard
    assert by[("tcp", "0.0.0.0", 6379)].interface == "lo"
    loop = sorted((x.port, x.proto) for x in listeners if x.loopback)
    assert loop == [(53, "tcp"), (323, "udp"), (6379, "tcp"), (9000, "tcp"), (9001, "tcp")]
    assert len(listeners) == 11


def test_ss_without_process_column() -> None:
    listeners = parse_ss((DATA / "ss" / "netns-mixed.tuln.txt").read_text())
    assert len(listeners) == 11 and all(x.process == "" for x in listeners)


def test_proc_net_fallback_matches_ss_except_bound_device() -> None:
    listeners = []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        text = (DATA / "ss" / f"netns-mixed.proc-net-{name}.txt").read_text()
        listeners += parse_proc_net(text, name[:3], name.endswith("6"))
    exposed = {(x.port, x.proto) for x in listeners if not x.loopback}
    # /proc/net cannot see SO_BINDTODEVICE, so 6379 on 0.0.0.0%lo counts (errs to fail).
    assert exposed == {(22, "tcp"), (8080, "tcp"), (8443, "tcp"), (6379, "tcp"), (5353, "udp")}


def test_judge_listening_against_allowlist() -> None:
    listeners = parse_ss((DATA / "ss" / "netns-mixed.tulnp.txt").read_text())
    verdict = judge_listening(listeners, parse_ports([22, "5353/udp", "8000-8500/tcp"]))
    assert verdict.unexpected == ()
    verdict = judge_listening(listeners, parse_ports([22, "5353/tcp"]))
    assert sorted({(x.port, x.proto) for x in verdict.unexpected}) == [
        (5353, "udp"), (8080, "tcp"), (8443, "tcp")]
    assert len(verdict.loopback) == 5
    assert summarise_ports(verdict.unexpected) == "5353/udp (python3), 8080/tcp (python3), " \
        "8443/tcp (python3)"


def test_ss_garbage_is_a_parse_error() -> None:
    with pytest.raises(SocketParseError):
        parse_ss("Cannot open netlink socket: Protocol not supported\n")


# --------------------------------------------------------------------------- ufw
# tests/data/firewall/ufw/: ufw 0.36.2-1 (Debian 12 .deb, dpkg -i inside a lab host's
# overlay), 'ufw allow 22/tcp; ufw --force enable', then 'ufw default allow incoming'.
# Each state: 'ufw status verbose', 'nft -j list ruleset', iptables-save/ip6tables-save.


def test_ufw_default_deny_holds_in_both_views() -> None:
    ufw = DATA / "ufw"
    assert "Default: deny (incoming)" in (ufw / "active.status.txt").read_text()
    nft_view = parse_nft_json((ufw / "active.nft.json").read_text())
    # ufw's '-m conntrack' is opaque in nft JSON: undecided there, decided by iptables-save.
    alone = judge_default_deny([nft_view], ipv6_enabled=True)
    assert not alone.holds and {c.name for c in alone.undecided} == {
        "ip filter INPUT", "ip6 filter INPUT"}
    ipt_view = [parse_iptables_save((ufw / "active.iptables.save").read_text(), "iptables"),
                parse_iptables_save((ufw / "active.ip6tables.save").read_text(), "ip6tables")]
    assert judge_default_deny(ipt_view, ipv6_enabled=True).holds
    assert judge_default_deny([nft_view, *ipt_view], ipv6_enabled=True).holds


def test_ufw_allow_incoming_is_open_despite_drop_in_sub_chain() -> None:
    # ufw-not-local ends in an unconditional DROP, but first RETURNs all local traffic:
    # that DROP must not be credited as the input chain's default (it was, once: a
    # false pass caught by this real capture).
    ufw = DATA / "ufw"
    assert "Default: allow (incoming)" in (ufw / "allow-incoming.status.txt").read_text()
    rs = parse_nft_json((ufw / "allow-incoming.nft.json").read_text())
    assert {c.name: c.fallthrough for c in rs.chains} == {
        "ip filter INPUT": "policy accept", "ip6 filter INPUT": "policy accept"}
    assert judge_default_deny([rs], ipv6_enabled=True).uncovered == [IPV4, IPV6]


def test_iptables_sub_chain_with_conditional_return_is_not_a_default() -> None:
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:sub - [0:0]\n-A INPUT -j sub\n"
            "-A sub -m addrtype --dst-type LOCAL -j RETURN\n-A sub -j DROP\nCOMMIT\n")
    (chain,) = parse_iptables_save(text, "iptables").chains
    assert not chain.denies and chain.fallthrough == "policy accept"
    text = text.replace("-A sub -m addrtype --dst-type LOCAL -j RETURN\n", "")
    (chain,) = parse_iptables_save(text, "iptables").chains
    assert chain.denies and chain.fallthrough.startswith("via chain sub: final rule drops")


def test_firewalld_iptables_backend_final_reject() -> None:
    # Verbatim 'iptables -S INPUT' of firewalld (iptables backend), quoted in
    # https://github.com/firewalld/firewalld/issues/59 (firewalld is not runnable here:
    # it needs D-Bus). The zone chains are not in the sample; the final REJECT decides.
    text = """\
-P INPUT ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -j INPUT_direct
-A INPUT -j INPUT_ZONES_SOURCE
-A INPUT -j INPUT_ZONES
-A INPUT -p icmp -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
"""
    (chain,) = parse_iptables_save(text, "iptables").chains
    assert chain.denies and chain.policy == "accept"
    assert chain.fallthrough == ("final rule rejects: rule '-A INPUT -j REJECT --reject-with "
                                 "icmp-host-prohibited'")
