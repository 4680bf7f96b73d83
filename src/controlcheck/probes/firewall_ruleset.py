"""Shared model of parsed input chains, and what makes a conditional accept *broad*.

A conditional accept before an input chain's drop is harmless only if its
conditions really narrow what it lets in.  ``Conditions`` is the summary both
parsers (nft JSON, iptables-save) build for one rule; ``Conditions.broad`` says
whether the rule accepts (almost) everything of the protocols it covers.

What counts as a restriction (the rule is *not* broad):

* destination port limited to a proper subset of 1-65535 (``tcp dport {22, 443}``;
  ``0-65535``/``1-65535`` and negations like ``dport != 22`` are not restrictions);
* source address limited to a proper subset (any prefix but /0; not negated, so
  ``ip saddr != 127.0.0.0/8`` is not one); an ipset/nft named source set counts;
* connection tracking limited to ``established``/``related`` (replies to what the
  host started); ``new`` or ``untracked`` in the state set is not a restriction;
* input interface loopback (``iif lo``); ``ct status dnat`` (traffic a DNAT rule,
  with its own conditions, already selected);
* ICMP/ICMPv6 only: accepting ICMP wholesale is normal practice (PMTU discovery,
  IPv6 neighbour discovery need it) and opens no service port, so it never makes
  default-deny fail.

Everything else (``limit``, ``sport``, ``daddr``, ``meta mark``, ``tcp flags`` ...)
narrows nothing we can rely on.  A compat ``xt`` match that nft JSON does not
show (iptables-nft rules) makes the rule *undecided*, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

IPV4 = "IPv4"
IPV6 = "IPv6"
ALL_FAMILIES = frozenset({IPV4, IPV6})
ICMP_PROTOS = frozenset({"icmp", "ipv6-icmp", "icmpv6"})
_ALL_PORTS = (1, 65535)  # port 0 is not usable, so 1-65535 is "every port"
_SAFE_CT_STATES = frozenset({"established", "related"})
_PROTO_NAMES = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP", "dccp": "DCCP", "udplite": "UDP-Lite",
                "icmp": "ICMP", "ipv6-icmp": "ICMPv6", "icmpv6": "ICMPv6"}
_PROTO_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "132": "sctp",
                  "33": "dccp"}


class RulesetParseError(ValueError):
    """The ruleset text is not what the tool documents; the message says where."""


@dataclass(frozen=True)
class InputChain:
    """One base chain on the input hook and what it does with unmatched traffic."""

    source: str  # "nftables", "iptables", "ip6tables"
    name: str  # "inet filter input"
    families: frozenset[str]
    policy: str  # "accept" / "drop"
    # What decides a packet no rule explicitly matched: "policy drop",
    # "final rule: reject", "accepts all TCP before its drop: rule '...'", ...
    fallthrough: str
    denies: bool  # unmatched traffic is dropped/rejected
    undecided: bool = False  # a rule we cannot read decides it (opaque xt match)

    def describe(self) -> str:
        fams = "+".join(sorted(self.families))
        return f"{self.source} '{self.name}' ({fams}): {self.fallthrough}"


@dataclass(frozen=True)
class Ruleset:
    source: str
    chains: tuple[InputChain, ...]
    empty: bool  # no tables/chains at all
    notes: tuple[str, ...] = ()
    backend: str = ""  # iptables-save: "nf_tables" or "legacy" when its header says so


def normalise_proto(name: str) -> str:
    name = name.lower()
    return _PROTO_NUMBERS.get(name, name)


def ports_cover_all(intervals: Iterable[tuple[int, int]]) -> bool:
    """Do these (low, high) port intervals cover every usable port 1-65535?"""
    reach = _ALL_PORTS[0] - 1
    for low, high in sorted(intervals):
        if low > reach + 1:
            return False
        reach = max(reach, high)
    return reach >= _ALL_PORTS[1]


def ct_states_safe(states: Iterable[str]) -> bool:
    found = {s.strip().lower() for s in states if s.strip()}
    return bool(found) and found <= _SAFE_CT_STATES


@dataclass
class Conditions:
    """What one rule's matches restrict (built by a parser, judged by ``broad``)."""

    protos: set[str] | None = None  # layer-4 protocols it can match; None: any
    families: set[str] = field(default_factory=lambda: set(ALL_FAMILIES))
    dport: bool = False  # destination port restricted to a proper subset
    saddr: bool = False  # source address restricted to a proper subset
    ct_safe: bool = False  # only established/related
    loopback: bool = False
    dnat: bool = False
    opaque: list[str] = field(default_factory=list)  # unreadable compat matches

    def limit_protos(self, protos: Iterable[str]) -> None:
        new = {normalise_proto(p) for p in protos}
        self.protos = new if self.protos is None else self.protos & new

    def limit_families(self, families: Iterable[str]) -> None:
        self.families &= set(families)

    @property
    def icmp_only(self) -> bool:
        return self.protos is not None and bool(self.protos) and self.protos <= ICMP_PROTOS

    @property
    def restricted(self) -> bool:
        return (self.dport or self.saddr or self.ct_safe or self.loopback or self.dnat
                or self.icmp_only or self.protos == set())

    @property
    def broad(self) -> bool:
        """Accepts (almost) everything of its protocols, as far as we can read it."""
        return not self.restricted and not self.opaque

    @property
    def undecided(self) -> bool:
        return not self.restricted and bool(self.opaque)

    def scope(self, chain_families: Iterable[str]) -> str:
        """'all TCP', 'all TCP and UDP', 'all IPv4 traffic', 'everything'."""
        fams = set(chain_families) & self.families
        fam = "" if fams >= set(chain_families) else "IPv4 " if fams == {IPV4} else \
            "IPv6 " if fams == {IPV6} else ""
        if self.protos is None:
            return f"all {fam}traffic" if fam else "everything"
        names = sorted(_PROTO_NAMES.get(p, p.upper()) for p in self.protos)
        return f"all {fam}" + " and ".join(names)
