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
interface (``iifname "eth0" accept``), and jumps/gotos to chains that do so.
Other broad-but-conditional accepts (``ip saddr 0.0.0.0/0 accept``) are not
analysed; the listening-socket and network-reachability checks cover that
layer.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IPV4 = "IPv4"
IPV6 = "IPv6"
_NFT_FAMILIES = {"inet": frozenset({IPV4, IPV6}), "ip": frozenset({IPV4}),
                 "ip6": frozenset({IPV6})}
# Statements that never make a rule conditional (they act, they do not match).
_NFT_ACTIONS = {"counter", "log", "notrack", "mangle", "set", "map"}
_NFT_VERDICTS = {"accept", "drop", "reject", "jump", "goto", "return", "queue", "continue"}
# Statements that certainly make a rule conditional.
_NFT_CONDITIONS = {"match", "limit", "quota", "ct count", "meter"}
_LOOPBACK_IFACES = {"lo"}
_MAX_DEPTH = 16


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
    # "final rule: reject", "accepts everything: rule 'counter accept'", ...
    fallthrough: str
    denies: bool  # unmatched traffic is dropped/rejected

    def describe(self) -> str:
        fams = "+".join(sorted(self.families))
        return f"{self.source} '{self.name}' ({fams}): {self.fallthrough}"


@dataclass(frozen=True)
class Ruleset:
    source: str
    chains: tuple[InputChain, ...]
    empty: bool  # no tables/chains at all
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- nftables


@dataclass
class _NftChain:
    family: str
    table: str
    name: str
    hook: str | None = None
    type: str | None = None
    policy: str = "accept"
    rules: list[list[Mapping[str, Any]]] = field(default_factory=list)


def parse_nft_json(text: str) -> Ruleset:
    """``nft -j list ruleset`` → the input base chains and their fall-through verdicts."""
    try:
        data = json.loads(text)
        items = data["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RulesetParseError(f"nft JSON output not understood: {exc}") from exc
    dormant: set[tuple[str, str]] = set()
    chains: dict[tuple[str, str, str], _NftChain] = {}
    tables = 0
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "table" in item:
            t = item["table"]
            tables += 1
            flags = t.get("flags", [])
            if flags == "dormant" or (isinstance(flags, list) and "dormant" in flags):
                dormant.add((t["family"], t["name"]))
        elif "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = _NftChain(
                c["family"], c["table"], c["name"], c.get("hook"), c.get("type"),
                c.get("policy", "accept"))
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            if key in chains:
                chains[key].rules.append(list(r.get("expr", [])))
    result: list[InputChain] = []
    notes: list[str] = []
    for chain in chains.values():
        if chain.hook != "input" or chain.family not in _NFT_FAMILIES:
            continue
        name = f"{chain.family} {chain.table} {chain.name}"
        if (chain.family, chain.table) in dormant:
            notes.append(f"table {chain.family} {chain.table} is dormant: '{name}' not credited")
            continue
        if chain.type not in (None, "filter"):
            continue
        verdict, why = _nft_walk(chain, chains, 0)
        if verdict is None:
            verdict, why = chain.policy, f"policy {chain.policy}"
        result.append(InputChain("nftables", name, _NFT_FAMILIES[chain.family], chain.policy,
                                 why, verdict in ("drop", "reject")))
    return Ruleset("nftables", tuple(result), empty=tables == 0, notes=tuple(notes))


def _nft_walk(chain: _NftChain, chains: Mapping[tuple[str, str, str], _NftChain],
              depth: int) -> tuple[str | None, str]:
    """First verdict that applies to *every* packet reaching ``chain``, if any.

    Returns ("accept"|"drop"|"reject"|"return", why) or (None, "") when traffic
    that no rule matched falls through to the caller/policy.
    """
    if depth > _MAX_DEPTH:
        return None, ""
    escapes = False  # a conditional return/goto lets some traffic leave this chain
    for expr in chain.rules:
        verdict, target = _nft_verdict(expr)
        if verdict is None:
            continue
        text = _nft_rule_text(expr)
        iface = _nft_interface_only(expr)
        if verdict == "accept" and iface is not None and iface not in _LOOPBACK_IFACES:
            return "accept", f"accepts everything on interface {iface}: rule '{text}'"
        if not _nft_unconditional(expr):
            if verdict in ("return", "goto"):
                escapes = True
            # Only an interface-wide jump is "everything" (firewalld binds zones so).
            if verdict in ("jump", "goto") and target and iface is not None \
                    and iface not in _LOOPBACK_IFACES:
                sub = chains.get((chain.family, chain.table, target))
                if sub is not None:
                    sub_verdict, why = _nft_walk(sub, chains, depth + 1)
                    if sub_verdict == "accept":
                        return "accept", f"conditionally reaches chain {target}, which {why}"
            continue
        if verdict in ("drop", "reject") and escapes and depth > 0:
            # In a jumped-to chain, what a conditional return lets out goes on in the
            # caller (ufw-not-local returns all local traffic before its DROP).
            return None, ""
        if verdict in ("accept", "drop", "reject"):
            label = "accepts everything" if verdict == "accept" else f"final rule {verdict}s"
            return verdict, f"{label}: rule '{text}'"
        if verdict == "return":
            return "return", f"unconditional return: rule '{text}'"
        if verdict in ("jump", "goto") and target:
            sub = chains.get((chain.family, chain.table, target))
            if sub is None:
                continue
            sub_verdict, why = _nft_walk(sub, chains, depth + 1)
            if sub_verdict in ("accept", "drop", "reject"):
                return sub_verdict, f"via {verdict} {target}: {why}"
            if verdict == "goto":
                return None, ""  # after a goto the rest of this chain is never evaluated
    return None, ""


def _nft_verdict(expr: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    for stmt in expr:
        for key, value in stmt.items():
            if key in _NFT_VERDICTS:
                target = value.get("target") if isinstance(value, Mapping) else None
                return key, target
            if key == "xt" and isinstance(value, Mapping) and value.get("type") == "target":
                name = str(value.get("name", "")).upper()
                if name in ("REJECT", "DROP"):
                    return name.lower(), None
    return None, None


def _nft_unconditional(expr: Sequence[Mapping[str, Any]]) -> bool:
    """True only if every statement is a known action or the verdict (strict)."""
    for stmt in expr:
        for key, value in stmt.items():
            if key in _NFT_ACTIONS or key in _NFT_VERDICTS:
                continue
            if key == "xt" and isinstance(value, Mapping):
                if value.get("type") == "target" or value.get("name") == "comment":
                    continue
            return False
    return True


def _nft_interface_only(expr: Sequence[Mapping[str, Any]]) -> str | None:
    """The interface name if the rule's only condition is ``iif``/``iifname == X``."""
    iface: str | None = None
    for stmt in expr:
        for key, value in stmt.items():
            if key in _NFT_ACTIONS or key in _NFT_VERDICTS:
                continue
            if key != "match" or value.get("op") not in ("==", "in"):
                return None
            left = value.get("left", {})
            meta = left.get("meta", {}) if isinstance(left, Mapping) else {}
            if meta.get("key") not in ("iif", "iifname") or not isinstance(value.get("right"),
                                                                            str):
                return None
            if iface is not None:
                return None
            iface = value["right"]
    return iface


def _nft_rule_text(expr: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for stmt in expr:
        for key, value in stmt.items():
            if key == "match":
                parts.append(f"{_nft_operand(value.get('left'))} {value.get('op')} "
                             f"{_nft_operand(value.get('right'))}")
            elif key == "counter":
                parts.append("counter")
            elif value is None:
                parts.append(key)
            elif isinstance(value, Mapping) and "target" in value:
                parts.append(f"{key} {value['target']}")
            elif key == "xt" and isinstance(value, Mapping):
                parts.append(f"xt {value.get('type')} {value.get('name')}")
            else:
                parts.append(key)
    return " ".join(parts)


def _nft_operand(value: Any) -> str:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(inner, Mapping):
                fields = [str(v) for v in inner.values()]
                return f"{key} {' '.join(fields)}"
            return f"{key} {inner}"
    if isinstance(value, list):
        return "{" + ", ".join(_nft_operand(v) for v in value) + "}"
    return json.dumps(value) if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- iptables


def parse_iptables_save(text: str, source: str) -> Ruleset:
    """``iptables-save`` / ``ip6tables-save`` (or ``iptables -S``) → the filter INPUT chain."""
    family = frozenset({IPV6}) if source.startswith("ip6") else frozenset({IPV4})
    table: str | None = None
    policies: dict[str, str] = {}
    rules: dict[str, list[list[str]]] = {}
    seen_filter = False
    if not any(ln.startswith("*") for ln in text.splitlines()):
        table = "filter"  # 'iptables -S' format: the filter table, '-P'/'-N' chain lines
        seen_filter = True
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-P ", "-N ")) and table == "filter":
            parts = line.split()
            policies[parts[1]] = parts[2] if line.startswith("-P") and len(parts) > 2 else "-"
            rules.setdefault(parts[1], [])
            continue
        if line.startswith("*"):
            table = line[1:]
            seen_filter = seen_filter or table == "filter"
            continue
        if table != "filter" or line == "COMMIT":
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise RulesetParseError(f"{source} line {lineno}: bad chain line {raw!r}")
            policies[parts[0]] = parts[1]
            rules.setdefault(parts[0], [])
        elif line.startswith("-A "):
            try:
                tokens = shlex.split(line)
            except ValueError as exc:
                raise RulesetParseError(f"{source} line {lineno}: {exc}") from exc
            rules.setdefault(tokens[1], []).append(tokens[2:])
    if not seen_filter or "INPUT" not in policies:
        return Ruleset(source, (), empty=True)
    policy = policies["INPUT"].lower()
    verdict, why = _ipt_walk("INPUT", rules, 0)
    if verdict is None:
        verdict, why = policy, f"policy {policy}"
    chain = InputChain(source, "filter INPUT", family, policy, why,
                       verdict in ("drop", "reject"))
    empty = policy == "accept" and not any(rules.values())
    return Ruleset(source, (chain,), empty=empty)


_IPT_NEUTRAL_MATCHES = {"comment"}


def _ipt_walk(chain: str, rules: Mapping[str, list[list[str]]],
              depth: int) -> tuple[str | None, str]:
    if depth > _MAX_DEPTH:
        return None, ""
    escapes = False  # see _nft_walk
    for tokens in rules.get(chain, []):
        target, goto, conditions = _ipt_split(tokens)
        if target is None:
            continue
        text = shlex.join(["-A", chain, *tokens])
        verdict = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject",
                   "RETURN": "return"}.get(target)
        iface = _ipt_interface_only(conditions)
        if verdict == "accept" and iface is not None and iface not in _LOOPBACK_IFACES:
            return "accept", f"accepts everything on interface {iface}: rule '{text}'"
        if conditions:
            if verdict == "return" or goto:
                escapes = True
            if verdict is None and target in rules and iface is not None \
                    and iface not in _LOOPBACK_IFACES:
                sub, why = _ipt_walk(target, rules, depth + 1)
                if sub == "accept":
                    return "accept", f"conditionally reaches chain {target}, which {why}"
            continue
        if verdict in ("drop", "reject") and escapes and depth > 0:
            return None, ""
        if verdict in ("accept", "drop", "reject"):
            label = "accepts everything" if verdict == "accept" else f"final rule {verdict}s"
            return verdict, f"{label}: rule '{text}'"
        if verdict == "return":
            return "return", f"unconditional return: rule '{text}'"
        if target in rules:
            sub, why = _ipt_walk(target, rules, depth + 1)
            if sub in ("accept", "drop", "reject"):
                return sub, f"via chain {target}: {why}"
            if goto:
                return None, ""
    return None, ""


def _ipt_split(tokens: Sequence[str]) -> tuple[str | None, bool, list[str]]:
    """(target, is_goto, condition tokens) of one ``-A`` rule (after the chain name)."""
    target: str | None = None
    goto = False
    conditions: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("-j", "--jump", "-g", "--goto") and i + 1 < len(tokens):
            target = tokens[i + 1]
            goto = tok in ("-g", "--goto")
            i += 2
            # target options (--reject-with ...) follow; they are not conditions
            while i < len(tokens) and tokens[i].startswith("--"):
                i += 2
            continue
        if tok == "-m" and i + 1 < len(tokens) and tokens[i + 1] in _IPT_NEUTRAL_MATCHES:
            i += 2
            while i < len(tokens) and tokens[i].startswith("--"):
                i += 2
            continue
        if tok in ("-c", "--set-counters"):
            i += 3
            continue
        conditions.append(tok)
        i += 1
    return target, goto, conditions


def _ipt_interface_only(conditions: Sequence[str]) -> str | None:
    if len(conditions) == 2 and conditions[0] in ("-i", "--in-interface"):
        return conditions[1]
    return None


# --------------------------------------------------------------------------- judging


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


def judge_default_deny(rulesets: Iterable[Ruleset], *, ipv6_enabled: bool) -> DefaultDenyVerdict:
    """Which address families reaching this host are default-deny on input."""
    needed = (IPV4, IPV6) if ipv6_enabled else (IPV4,)
    denying: dict[str, list[InputChain]] = {f: [] for f in (IPV4, IPV6)}
    open_chains: list[InputChain] = []
    for rs in rulesets:
        for chain in rs.chains:
            if chain.denies:
                for fam in chain.families:
                    denying[fam].append(chain)
            else:
                open_chains.append(chain)
    return DefaultDenyVerdict({f: tuple(c) for f, c in denying.items()}, tuple(open_chains),
                              needed)
