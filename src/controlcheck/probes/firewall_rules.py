"""Pure parsing and judging of host firewall rulesets (no I/O here).

A packet addressed to the host traverses *every* base chain hooked at
``input`` (all tables, all families that cover its address family) and is
accepted only if each of them accepts it.  So input is default-deny for an
address family as soon as **one** active input chain covering that family
drops what it did not explicitly allow: policy ``drop``, or an unconditional
final ``drop``/``reject``, and no rule before that accepts everything.

Sources understood:

* ``nft -j list ruleset`` (the stable JSON interface).  ``inet`` covers IPv4
  and IPv6; ``ip`` only IPv4 and ``ip6`` only IPv6, so an ``ip``-only ruleset
  leaves IPv6 open.  iptables-nft rules appear here too (as ``ip``/``ip6``
  tables, sometimes with ``xt`` compat expressions).
* ``iptables-save`` / ``ip6tables-save`` (legacy or nft backend): the
  ``filter`` table's ``INPUT`` chain.

What is deliberately *not* credited (so the check errs towards ``fail``):
drops in prerouting/raw/mangle/netdev-ingress chains, and rate-limited or
otherwise conditional final drops.  What is detected as "accepts everything":
an unconditional accept, an accept conditioned only on a non-loopback input
interface (``iifname "eth0" accept``), a *broad* conditional accept that
restricts neither destination port nor source address (``meta l4proto tcp
accept``, ``ct state new accept``, ``tcp dport 1-65535 accept``, a verdict map
covering every port; exact rules in ``firewall_ruleset``), and jumps/gotos to
chains that do so.  ICMP accepted wholesale is normal and never fails.

Layout: ``firewall_ruleset`` (model, what is broad), ``firewall_nft`` and
``firewall_ipt`` (parsers), this module (the judge; re-exports the parsers).

An iptables-nft rule with a compat ``xt`` match is opaque in nft JSON: such a
chain is *undecided* there; ``iptables-save`` (nf_tables backend) reads the same
table and decides it.  Undecided with nothing else deciding is an error, never
a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlcheck.probes.firewall_ipt import parse_iptables_save
from controlcheck.probes.firewall_nft import parse_nft_json
from controlcheck.probes.firewall_ruleset import (
    IPV4,
    IPV6,
    InputChain,
    Ruleset,
    RulesetParseError,
)

__all__ = ["IPV4", "IPV6", "DefaultDenyVerdict", "InputChain", "Ruleset", "RulesetParseError",
           "judge_default_deny", "parse_iptables_save", "parse_nft_json"]

# nft chains that iptables-nft owns: iptables-save reads the same kernel table.
_IPT_NFT_CHAINS = {"ip filter INPUT": ("iptables", IPV4), "ip6 filter INPUT": ("ip6tables", IPV6)}


@dataclass(frozen=True)
class DefaultDenyVerdict:
    """Per address family, the chains that deny unmatched input (empty: open)."""

    denying: Mapping[str, tuple[InputChain, ...]]
    open_chains: tuple[InputChain, ...]
    families_needed: tuple[str, ...]

    @property
    def uncovered(self) -> list[str]:
        return [f for f in self.families_needed if not self.denying.get(f)]

    @property
    def holds(self) -> bool:
        return not self.uncovered

    @property
    def undecided(self) -> list[InputChain]:
        """Chains we could not read that might cover an uncovered family."""
        gaps = set(self.uncovered)
        return [c for c in self.open_chains if c.undecided and c.families & gaps]


def judge_default_deny(rulesets: Iterable[Ruleset], *, ipv6_enabled: bool) -> DefaultDenyVerdict:
    """Which address families reaching this host are default-deny on input."""
    rulesets = list(rulesets)
    needed = (IPV4, IPV6) if ipv6_enabled else (IPV4,)
    denying: dict[str, list[InputChain]] = {f: [] for f in (IPV4, IPV6)}
    open_chains: list[InputChain] = []
    nft_backed = {rs.source for rs in rulesets if rs.backend == "nf_tables"}
    for rs in rulesets:
        for chain in rs.chains:
            owner = _IPT_NFT_CHAINS.get(chain.name)
            if chain.undecided and owner and owner[0] in nft_backed:
                continue  # iptables-save judged this very table from its readable form
            if chain.denies:
                for fam in chain.families:
                    denying[fam].append(chain)
            else:
                open_chains.append(chain)
    return DefaultDenyVerdict({f: tuple(c) for f, c in denying.items()}, tuple(open_chains),
                              needed)
