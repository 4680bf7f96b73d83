"""Broad conditional accepts before the drop: real rulesets, exact verdicts.

``tests/data/firewall/broad/``: every ``X.nft`` / ``X.rules`` / ``X.rules6`` was
loaded into its own throw-away network namespace by ``capture.sh`` beside it
(``nft -f`` / ``iptables-restore`` / ``ip6tables-restore``; nftables 1.0.6,
iptables 1.8.9 nf_tables, Debian 12) and listed with ``nft -j list ruleset`` and
``iptables-save``/``ip6tables-save``.  Each ruleset is ``policy drop`` with
``iif lo accept``, ``ct state established,related accept`` and ``tcp dport 22
accept`` around the one rule under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controlcheck.probes.firewall_rules import (
    IPV4,
    IPV6,
    Ruleset,
    judge_default_deny,
    parse_iptables_save,
    parse_nft_json,
)

DATA = Path(__file__).parent / "data" / "firewall" / "broad"


def nft(name: str) -> Ruleset:
    return parse_nft_json((DATA / f"{name}.json").read_text())


def ipt(name: str) -> list[Ruleset]:
    """Both real views of one iptables-nft ruleset: iptables-save and nft JSON."""
    v6 = (DATA / f"{name}.save6").exists()
    save = (DATA / f"{name}.save6" if v6 else DATA / f"{name}.save").read_text()
    return [parse_iptables_save(save, "ip6tables" if v6 else "iptables"),
            parse_nft_json((DATA / f"{name}.nft.json").read_text())]


# name -> (address families left open, the rule the message must name, scope words)
NFT_BAD = {
    "bad-l4proto-tcp": ([IPV4, IPV6], "meta l4proto tcp accept", "all TCP"),
    "bad-ip-protocol-tcp": ([IPV4], "ip protocol tcp accept", "all TCP"),
    "bad-l4proto-set": ([IPV4, IPV6], "meta l4proto { tcp, udp } accept", "all TCP and UDP"),
    "bad-iifname-not-lo": ([IPV4, IPV6], "iifname != lo accept", "everything"),
    "bad-saddr-zero": ([IPV4], "ip saddr 0.0.0.0/0 accept", "everything"),
    "bad-ip6-saddr-zero": ([IPV6], "ip6 saddr ::/0 accept", "everything"),
    "bad-dport-1-65535": ([IPV4, IPV6], "tcp dport 1-65535 accept", "all TCP"),
    "bad-dport-0-65535": ([IPV4, IPV6], "tcp dport 0-65535 accept", "all TCP"),
    "bad-ct-new": ([IPV4, IPV6], "ct state new accept", "everything"),
    "bad-ct-all": ([IPV4, IPV6], "ct state { established, related, new } accept",
                   "everything"),
    "bad-vmap-all-ports": ([IPV4, IPV6], "tcp dport 0-65535 accept", "all TCP"),
    "bad-vmap-l4proto": ([IPV4, IPV6], "meta l4proto tcp accept", "all TCP"),
    "bad-dport-not-22": ([IPV4, IPV6], "tcp dport != 22 accept", "all TCP"),
    "bad-udp-sport-53": ([IPV4, IPV6], "udp sport 53 accept", "all UDP"),
    "bad-th-dport-all": ([IPV4, IPV6], "meta l4proto { tcp, udp } th dport 1-65535 accept",
                         "all TCP and UDP"),
    "bad-limit-only": ([IPV4, IPV6], "limit accept", "everything"),
    "bad-saddr-not-loopback": ([IPV4], "ip saddr != 127.0.0.0/8 accept", "everything"),
    "bad-jump-tcp-chain": ([IPV4, IPV6], "meta l4proto tcp jump tcp_in", "chain tcp_in"),
}
NFT_GOOD = ["good-dport-set", "good-saddr-net-port", "good-saddr-net", "good-established",
            "good-icmp", "good-ratelimited", "good-loopback", "good-vmap-ports",
            "good-ct-new-port", "good-iface-port", "good-dhcpv6", "good-dport-range"]


@pytest.mark.parametrize("name", sorted(NFT_BAD))
def test_nft_broad_accept_fails_with_rule_named(name: str) -> None:
    uncovered, rule, scope = NFT_BAD[name]
    rs = nft(name)
    verdict = judge_default_deny([rs], ipv6_enabled=True)
    assert verdict.uncovered == uncovered
    assert verdict.undecided == []
    (open_chain,) = verdict.open_chains
    assert open_chain.families == frozenset(uncovered)
    assert f"rule '{rule}'" in open_chain.fallthrough
    assert scope in open_chain.fallthrough
    # A family the broad rule cannot match stays default-deny on its own.
    for fam in {IPV4, IPV6} - set(uncovered):
        assert verdict.denying[fam][0].fallthrough == "policy drop"


def test_nft_message_reads_as_specified() -> None:
    (chain,) = nft("bad-l4proto-tcp").chains
    assert chain.describe() == ("nftables 'inet filter input' (IPv4+IPv6): accepts all TCP "
                                "before its drop: rule 'meta l4proto tcp accept'")


@pytest.mark.parametrize("name", NFT_GOOD)
def test_nft_restricted_accepts_keep_passing(name: str) -> None:
    verdict = judge_default_deny([nft(name)], ipv6_enabled=True)
    assert verdict.holds, verdict
    (chain,) = nft(name).chains
    assert chain.denies and chain.fallthrough == "policy drop"


# name -> (rule named in the iptables-save view, scope words)
IPT_BAD = {
    "ipt-bad-proto-tcp": ("-A INPUT -p tcp -j ACCEPT", "all TCP"),
    "ipt-bad-not-lo": ("-A INPUT ! -i lo -j ACCEPT", "everything"),
    # iptables-save drops '-s 0.0.0.0/0' (the default): it is a plain accept-all.
    "ipt-bad-saddr-zero": ("-A INPUT -j ACCEPT", "everything"),
    "ipt-bad-ctstate-new": ("-A INPUT -m conntrack --ctstate NEW -j ACCEPT", "everything"),
    "ipt-bad-state-new": ("-A INPUT -m state --state NEW -j ACCEPT", "everything"),
    "ipt-bad-dport-all": ("-A INPUT -p tcp -m tcp --dport 1:65535 -j ACCEPT", "all TCP"),
    # '--dport 0:65535' is the default too, so iptables-save prints no port at all.
    "ipt-bad-dport-0-all": ("-A INPUT -p udp -m udp -j ACCEPT", "all UDP"),
    "ipt-bad-multiport-all": ("-A INPUT -p tcp -m multiport --dports 1:65535 -j ACCEPT",
                              "all TCP"),
    "ipt-bad-sport-53": ("-A INPUT -p udp -m udp --sport 53 -j ACCEPT", "all UDP"),
    "ipt-bad-dport-not-22": ("-A INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT", "all TCP"),
    "ipt-bad-jump-tcp": ("-A INPUT -p tcp -j tcp_in", "chain tcp_in"),
    "ip6t-bad-proto-tcp": ("-A INPUT -p tcp -j ACCEPT", "all TCP"),
    "ip6t-bad-saddr-zero": ("-A INPUT -j ACCEPT", "everything"),
}
IPT_GOOD = ["ipt-good-ports", "ipt-good-saddr-port", "ipt-good-saddr", "ipt-good-icmp",
            "ipt-good-ratelimited", "ipt-good-ctstate-new-port", "ipt-good-state-established",
            "ip6t-good-icmp", "ip6t-good-link-local"]


@pytest.mark.parametrize("name", sorted(IPT_BAD))
def test_iptables_broad_accept_fails_with_rule_named(name: str) -> None:
    rule, scope = IPT_BAD[name]
    views = ipt(name)
    fam = IPV6 if name.startswith("ip6t") else IPV4
    (chain,) = views[0].chains
    assert not chain.denies and not chain.undecided
    assert f"rule '{rule}'" in chain.fallthrough and scope in chain.fallthrough
    # Together with the nft view of the same table (as the probe collects them): open.
    verdict = judge_default_deny(views, ipv6_enabled=True)
    assert fam in verdict.uncovered and not verdict.denying[fam]
    assert verdict.undecided == []  # iptables-save decided: a fail, not an error


@pytest.mark.parametrize("name", IPT_GOOD)
def test_iptables_restricted_accepts_keep_passing(name: str) -> None:
    views = ipt(name)
    fam = IPV6 if name.startswith("ip6t") else IPV4
    (chain,) = views[0].chains
    assert chain.denies and chain.fallthrough == "policy drop"
    assert views[0].backend == "nf_tables"
    verdict = judge_default_deny(views, ipv6_enabled=True)
    assert verdict.denying[fam] == (chain,)
    assert verdict.undecided == []  # the nft view's opaque xt rules are settled


@pytest.mark.parametrize("name", ["ipt-bad-ctstate-new", "ipt-good-state-established"])
def test_nft_view_alone_of_xt_conntrack_is_undecided(name: str) -> None:
    # NEW and ESTABLISHED look identical in nft JSON ('xt match conntrack'): never a pass.
    rs = ipt(name)[1]
    (chain,) = rs.chains
    assert chain.undecided and not chain.denies
    assert "xt match conntrack" in chain.fallthrough
    verdict = judge_default_deny([rs], ipv6_enabled=False)
    assert not verdict.holds and verdict.undecided == [chain]


def test_legacy_iptables_save_does_not_settle_nft_view() -> None:
    # A legacy-backend iptables-save reads other tables: the nft view stays undecided.
    save, nft_view = ipt("ipt-good-ports")
    legacy = parse_iptables_save(
        (DATA / "ipt-good-ports.save").read_text().replace("(nf_tables)", "(legacy)"),
        "iptables")
    assert legacy.backend == "legacy" and save.backend == "nf_tables"
    verdict = judge_default_deny([nft_view, legacy], ipv6_enabled=False)
    assert verdict.holds  # legacy INPUT itself drops, so IPv4 is covered
    (undecided,) = judge_default_deny([nft_view], ipv6_enabled=False).undecided
    assert undecided.name == "ip filter INPUT"
