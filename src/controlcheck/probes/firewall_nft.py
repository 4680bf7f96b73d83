"""``nft -j list ruleset`` (the stable JSON interface) → input chains and their fall-through.

``inet`` covers IPv4 and IPv6; ``ip`` only IPv4 and ``ip6`` only IPv6.  Each
chain is walked once per address family it covers, because a rule such as
``ip saddr 0.0.0.0/0 accept`` opens IPv4 only; families with different outcomes
become separate ``InputChain`` entries.  Verdict maps are expanded into one
virtual rule per element, so ``tcp dport vmap { 0-65535 : accept }`` is read as
``tcp dport 0-65535 accept``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlcheck.probes.firewall_ruleset import (
    IPV4,
    IPV6,
    Conditions,
    InputChain,
    Ruleset,
    RulesetParseError,
    ct_states_safe,
    ports_cover_all,
)

_NFT_FAMILIES = {"inet": frozenset({IPV4, IPV6}), "ip": frozenset({IPV4}),
                 "ip6": frozenset({IPV6})}
# Statements that never make a rule conditional (they act, they do not match).
_NFT_ACTIONS = {"counter", "log", "notrack", "mangle", "set", "map"}
_NFT_VERDICTS = {"accept", "drop", "reject", "jump", "goto", "return", "queue", "continue"}
_LOOPBACK_IFACES = {"lo"}
_MAX_DEPTH = 16
_L4_WITH_PORTS = {"tcp", "udp", "sctp", "dccp", "udplite", "th"}
_FAMILY_OF_PROTOCOL = {"ip": IPV4, "icmp": IPV4, "ip6": IPV6, "icmpv6": IPV6}
_NFPROTO = {"ipv4": IPV4, "ipv6": IPV6}

Rule = Sequence[Mapping[str, Any]]


@dataclass
class _NftChain:
    family: str
    table: str
    name: str
    hook: str | None = None
    type: str | None = None
    policy: str = "accept"
    rules: list[list[Mapping[str, Any]]] = field(default_factory=list)


@dataclass
class _Tables:
    chains: dict[tuple[str, str, str], _NftChain]
    # named sets and maps: (family, table, name) -> elements
    sets: dict[tuple[str, str, str], list[Any]]


def parse_nft_json(text: str) -> Ruleset:
    """``nft -j list ruleset`` → the input base chains and their fall-through verdicts."""
    try:
        data = json.loads(text)
        items = data["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RulesetParseError(f"nft JSON output not understood: {exc}") from exc
    dormant: set[tuple[str, str]] = set()
    tables = _Tables({}, {})
    count = 0
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "table" in item:
            t = item["table"]
            count += 1
            flags = t.get("flags", [])
            if flags == "dormant" or (isinstance(flags, list) and "dormant" in flags):
                dormant.add((t["family"], t["name"]))
        elif "chain" in item:
            c = item["chain"]
            tables.chains[(c["family"], c["table"], c["name"])] = _NftChain(
                c["family"], c["table"], c["name"], c.get("hook"), c.get("type"),
                c.get("policy", "accept"))
        elif "set" in item or "map" in item:
            s = item.get("set") or item["map"]
            tables.sets[(s["family"], s["table"], s["name"])] = list(s.get("elem", []))
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            if key in tables.chains:
                tables.chains[key].rules.append(list(r.get("expr", [])))
    result: list[InputChain] = []
    notes: list[str] = []
    for chain in tables.chains.values():
        if chain.hook != "input" or chain.family not in _NFT_FAMILIES:
            continue
        name = f"{chain.family} {chain.table} {chain.name}"
        if (chain.family, chain.table) in dormant:
            notes.append(f"table {chain.family} {chain.table} is dormant: '{name}' not credited")
            continue
        if chain.type not in (None, "filter"):
            continue
        result += _judge_chain(chain, tables, name)
    return Ruleset("nftables", tuple(result), empty=count == 0, notes=tuple(notes))


def _judge_chain(chain: _NftChain, tables: _Tables, name: str) -> list[InputChain]:
    """One entry per distinct outcome over the address families the chain covers."""
    outcomes: dict[tuple[str, str], set[str]] = {}
    for fam in sorted(_NFT_FAMILIES[chain.family]):
        opaque: list[str] = []
        verdict, why = _walk(chain, tables, fam, 0, opaque)
        if verdict is None or verdict == "return":
            verdict, why = chain.policy, f"policy {chain.policy}"
        if verdict in ("drop", "reject") and opaque:
            # An unreadable accept came first: it may let everything in, or not.
            verdict, why = "undecided", f"{opaque[0]}; otherwise {why}"
        outcomes.setdefault((verdict, why), set()).add(fam)
    return [InputChain("nftables", name, frozenset(fams), chain.policy, why,
                       verdict in ("drop", "reject"), undecided=verdict == "undecided")
            for (verdict, why), fams in outcomes.items()]


def _walk(chain: _NftChain, tables: _Tables, fam: str, depth: int,
          opaque: list[str]) -> tuple[str | None, str]:
    """First verdict that applies to *every* ``fam`` packet reaching ``chain``, if any.

    Returns ("accept"|"drop"|"reject"|"return", why) or (None, "") when traffic
    that no rule matched falls through to the caller/policy.  A broad conditional
    accept (see ``firewall_ruleset``) counts as "accept".  Accepts we cannot read
    (compat ``xt`` matches) are appended to ``opaque``: they make a deny undecided.
    """
    if depth > _MAX_DEPTH:
        return None, ""
    escapes = False  # a conditional return/goto lets some traffic leave this chain
    for expr in _expand_vmaps(chain, tables):
        verdict, target = _verdict(expr)
        if verdict is None:
            continue
        cond = _conditions(expr, chain, tables)
        if fam not in cond.families:
            continue  # e.g. 'ip saddr ...' never matches an IPv6 packet
        text = rule_text(expr)
        unconditional = _unconditional(expr)
        iface = _interface_only(expr)
        if verdict == "accept" and iface is not None and iface not in _LOOPBACK_IFACES:
            return "accept", f"accepts everything on interface {iface}: rule '{text}'"
        if not unconditional:
            if verdict in ("return", "goto"):
                escapes = True
            if verdict == "accept" and cond.broad:
                return "accept", f"accepts {cond.scope([fam])} before its drop: rule '{text}'"
            if verdict == "accept" and cond.undecided:
                opaque.append(f"undecided: rule '{text}' uses the iptables compat match "
                              f"{', '.join(cond.opaque)}, which nft JSON does not show")
            # A broad jump (firewalld binds zones by interface) reaches all of the sub-chain.
            if verdict in ("jump", "goto") and target and cond.broad:
                sub = tables.chains.get((chain.family, chain.table, target))
                if sub is not None:
                    sub_verdict, why = _walk(sub, tables, fam, depth + 1, opaque)
                    if sub_verdict == "accept":
                        return sub_verdict, (f"rule '{text}' reaches chain {target}, "
                                             f"which {why}")
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
            sub = tables.chains.get((chain.family, chain.table, target))
            if sub is None:
                continue
            sub_verdict, why = _walk(sub, tables, fam, depth + 1, opaque)
            if sub_verdict in ("accept", "drop", "reject"):
                return sub_verdict, f"via {verdict} {target}: {why}"
            if verdict == "goto":
                return None, ""  # after a goto the rest of this chain is never evaluated
    return None, ""


def _expand_vmaps(chain: _NftChain, tables: _Tables) -> list[list[Mapping[str, Any]]]:
    """Each ``vmap`` rule becomes one rule per map element (key == element → verdict)."""
    out: list[list[Mapping[str, Any]]] = []
    for expr in chain.rules:
        vmaps = [s for s in expr if "vmap" in s]
        if len(vmaps) != 1:
            out.append(expr)
            continue
        vmap = vmaps[0]["vmap"]
        rest = [s for s in expr if "vmap" not in s]
        data = vmap.get("data")
        if isinstance(data, str) and data.startswith("@"):
            elems = tables.sets.get((chain.family, chain.table, data[1:]), [])
        elif isinstance(data, Mapping):
            elems = list(data.get("set", []))
        else:
            elems = []
        for elem in elems:
            if isinstance(elem, list) and len(elem) == 2 and isinstance(elem[1], Mapping):
                match = {"match": {"op": "==", "left": vmap.get("key"), "right": elem[0]}}
                out.append([*rest, match, elem[1]])
    return out


def _verdict(expr: Rule) -> tuple[str | None, str | None]:
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


def _unconditional(expr: Rule) -> bool:
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


def _interface_only(expr: Rule) -> str | None:
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


# --------------------------------------------------------------------------- conditions


def _conditions(expr: Rule, chain: _NftChain, tables: _Tables) -> Conditions:
    cond = Conditions()
    for stmt in expr:
        for key, value in stmt.items():
            if key == "match" and isinstance(value, Mapping):
                _add_match(cond, value, chain, tables)
            elif key == "xt" and isinstance(value, Mapping) and value.get("type") == "match" \
                    and value.get("name") != "comment":
                cond.opaque.append(str(value.get("name")))
    return cond


def _add_match(cond: Conditions, match: Mapping[str, Any], chain: _NftChain,
               tables: _Tables) -> None:
    left, right = match.get("left"), match.get("right")
    positive = match.get("op") in ("==", "in")
    if isinstance(left, Mapping) and "concat" in left and isinstance(right, Mapping) \
            and "concat" in right and len(left["concat"]) == len(right["concat"]):
        for sub_left, sub_right in zip(left["concat"], right["concat"], strict=True):
            _add_match(cond, {"op": match.get("op"), "left": sub_left, "right": sub_right},
                       chain, tables)
        return
    values = _values(right, chain, tables)
    if not isinstance(left, Mapping):
        return
    if "payload" in left:
        proto = str(left["payload"].get("protocol", ""))
        fld = str(left["payload"].get("field", ""))
        if proto in _FAMILY_OF_PROTOCOL:
            cond.limit_families({_FAMILY_OF_PROTOCOL[proto]})
        if proto in _L4_WITH_PORTS - {"th"} or proto in ("icmp", "icmpv6"):
            cond.limit_protos({"ipv6-icmp" if proto == "icmpv6" else proto})
        if fld in ("protocol", "nexthdr") and positive and values is not None:
            cond.limit_protos(str(v) for v in values)
        elif fld == "dport" and positive and values is not None:
            cond.dport = cond.dport or _ports_restricted(values)
        elif fld == "saddr" and positive and values is not None:
            cond.saddr = cond.saddr or _addresses_restricted(values)
    elif "meta" in left:
        mkey = left["meta"].get("key")
        if mkey == "l4proto" and positive and values is not None:
            cond.limit_protos(str(v) for v in values)
        elif mkey == "nfproto" and positive and values is not None:
            cond.limit_families(_NFPROTO[str(v)] for v in values if str(v) in _NFPROTO)
        elif mkey in ("iif", "iifname") and positive and values is not None:
            cond.loopback = cond.loopback or all(str(v) == "lo" for v in values)
    elif "ct" in left:
        ckey = left["ct"].get("key")
        if ckey == "state" and positive and values is not None:
            cond.ct_safe = cond.ct_safe or ct_states_safe(str(v) for v in values)
        elif ckey == "status" and positive and values is not None:
            cond.dnat = cond.dnat or {str(v) for v in values} == {"dnat"}


def _values(right: Any, chain: _NftChain, tables: _Tables) -> list[Any] | None:
    """The elements a match's right-hand side stands for (None: cannot tell)."""
    if isinstance(right, str) and right.startswith("@"):
        elems = tables.sets.get((chain.family, chain.table, right[1:]))
        return None if elems is None else [_elem(e) for e in elems]
    if isinstance(right, list):
        return [_elem(e) for e in right]
    if isinstance(right, Mapping) and "set" in right:
        return [_elem(e) for e in right["set"]]
    return [_elem(right)]


def _elem(e: Any) -> Any:
    return e["elem"]["val"] if isinstance(e, Mapping) and "elem" in e else e


def _ports_restricted(values: list[Any]) -> bool:
    intervals: list[tuple[int, int]] = []
    for v in values:
        if isinstance(v, int):
            intervals.append((v, v))
        elif isinstance(v, Mapping) and isinstance(v.get("range"), list):
            low, high = v["range"]
            if not (isinstance(low, int) and isinstance(high, int)):
                return False  # cannot read it: no restriction credited
            intervals.append((low, high))
        else:
            return False
    return bool(intervals) and not ports_cover_all(intervals)


def _addresses_restricted(values: list[Any]) -> bool:
    for v in values:
        if isinstance(v, Mapping) and "prefix" in v:
            if int(v["prefix"].get("len", 0)) == 0:
                return False
        elif isinstance(v, Mapping) and "range" in v:
            low, high = v["range"]
            if str(low) in ("0.0.0.0", "::") and str(high) in ("255.255.255.255", "ffff:ffff:"
                                                               "ffff:ffff:ffff:ffff:ffff:ffff"):
                return False
        elif not isinstance(v, str):
            return False
    return bool(values)


# --------------------------------------------------------------------------- rendering


def rule_text(expr: Rule) -> str:
    """The rule in (roughly) nft's own syntax, for messages."""
    parts = []
    for stmt in expr:
        for key, value in stmt.items():
            if key == "match":
                op = value.get("op")
                op_text = "" if op in ("==", "in") else f"{op} "
                parts.append(f"{_operand(value.get('left'))} {op_text}"
                             f"{_operand(value.get('right'))}")
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


def _operand(value: Any) -> str:
    if isinstance(value, Mapping):
        if "payload" in value:
            return f"{value['payload'].get('protocol')} {value['payload'].get('field')}"
        if "meta" in value:
            mkey = value["meta"].get("key")
            return str(mkey) if mkey in ("iif", "iifname", "oif", "oifname") else f"meta {mkey}"
        if "prefix" in value:
            return f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}"
        if "range" in value:
            return "-".join(str(v) for v in value["range"])
        if "set" in value:
            return _operand(value["set"])
        for key, inner in value.items():
            if isinstance(inner, Mapping):
                return f"{key} {' '.join(str(v) for v in inner.values())}"
            return f"{key} {inner}"
    if isinstance(value, list):
        return "{ " + ", ".join(_operand(v) for v in value) + " }"
    return json.dumps(value) if isinstance(value, str) and not value.isidentifier() \
        else str(value)
