"""Network-layer firewall and access checks: TCP connects from the scanner zones.

Collect: for each zone, run one connect scan of the host's address from where
the zone is (this machine, an argv prefix such as ``ip netns exec dmz``, or an
inventory host over the run's shared connection to it).  Results are memoised per host and zone
so both checks share one scan.  Judge: pure functions over ``{port: state}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controlcheck.inventory import parse_ports, ports_cover
from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.transports.base import Transport, TransportError
from controlcheck.transports.local import LocalTransport
from controlcheck.transports.tcp import expand_ports, run_scan, summarise

MANAGEMENT_PORTS = [22, 23, 135, 445, 1433, 1521, 2375, 2376, 3306, 3389, 5432, 5900, 5985,
                    5986, 6379, 8080, 8443, 9090, 9200, 10250, 11211, 27017]
# Common service ports include the management ones, so both checks share one scan.
COMMON_PORTS = sorted({21, 22, 23, 25, 53, 80, 110, 111, 139, 143, 389, 443, 465, 587, 636,
                       993, 995, 2049, 8000, *MANAGEMENT_PORTS})

_PORT_LIST = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}}
_SCAN_PARAMS: dict[str, dict[str, Any]] = {
    "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 3.5,
                        "description": "seconds before an unanswered connect counts as filtered"},
    "max_ports": {"type": "integer", "minimum": 1, "default": 512,
                  "description": "refuse to scan more ports than this per zone"},
}


@dataclass(frozen=True)
class ZoneScan:
    """What one zone saw: port states, or why it could not look."""

    zone: str
    states: Mapping[int, str]
    error: str = ""


# --------------------------------------------------------------------------- judges


def judge_reachability(host: str, scans: Sequence[ZoneScan],
                       allowed: Mapping[str, Sequence[Any]]) -> Outcome:
    """Fail on any open port a zone may not reach; error if a zone could not look."""
    violations, errors, seen = [], [], []
    for scan in scans:
        if scan.error:
            errors.append(f"zone {scan.zone}: {scan.error}")
            continue
        rules = parse_ports(allowed.get(scan.zone, []))
        bad = sorted(p for p, s in scan.states.items() if s == "open" and not ports_cover(rules, p))
        if bad:
            may = f"only {_rules_text(rules)} may" if rules else "this zone may reach no port"
            violations.append(f"from zone {scan.zone} port(s) {', '.join(map(str, bad))} answer "
                              f"but {may}")
        elif scan.states and all(s == "unreachable" for s in scan.states.values()):
            errors.append(f"zone {scan.zone}: {host} is unreachable (no route/ARP answer), "
                          "so the firewall cannot be judged")
        elif rules and not answered(scan.states):
            # Silence where something may answer: a dropping firewall and a host
            # that is down (or a zone that cannot send) look the same.
            errors.append(f"zone {scan.zone} may reach {_rules_text(rules)} but no port answered "
                          "at all (every connect timed out), so a firewall cannot be told from "
                          "a host that is down or a zone that cannot send")
        else:
            seen.append(f"zone {scan.zone}: {_counts(scan.states)}")
    facts: dict[str, Any] = {"zones": {s.zone: dict(sorted(s.states.items())) for s in scans if not s.error}}
    if not violations and not errors and not any(answered(s.states) for s in scans):
        errors.append("no port answered from any zone, so 'all filtered' cannot be told from a "
                      "host that is down; give some zone a port it may reach (e.g. mgmt: [22]) "
                      "as a liveness reference")
    if violations:
        return Outcome.failed(f"{host}: " + "; ".join(violations) +
                              ". Close these ports for that zone (network firewall or host "
                              "ruleset) or allow them in zone_access", **facts)
    if errors:
        return Outcome.error(f"{host}: " + "; ".join(errors), **facts)
    return Outcome.passed(f"{host}: only allowed ports answer ({'; '.join(seen)})", **facts)


def answered(states: Mapping[int, str]) -> bool:
    """Did the host say anything (SYN-ACK or RST)?  Timeouts and no-route prove nothing."""
    return any(state in ("open", "closed") for state in states.values())


def judge_management(host: str, scans: Sequence[ZoneScan], management: Sequence[int],
                     alive: bool | None = None) -> Outcome:
    """Fail on any management port open from an application/public zone.

    ``alive``: whether the host answered on some port from some zone (the
    reachability scans); only consulted when these scans got no answer at all.
    """
    exposed, errors, seen = [], [], []
    for scan in scans:
        if scan.error:
            errors.append(f"zone {scan.zone}: {scan.error}")
            continue
        open_ports = sorted(p for p in management if scan.states.get(p) == "open")
        if open_ports:
            exposed.append(f"{', '.join(map(str, open_ports))} from zone {scan.zone}")
        elif scan.states and all(s == "unreachable" for s in scan.states.values()):
            errors.append(f"zone {scan.zone}: {host} is unreachable, exposure cannot be judged")
        else:
            seen.append(scan.zone)
    facts: dict[str, Any] = {"zones": {s.zone: dict(sorted(s.states.items())) for s in scans if not s.error}}
    if exposed:
        return Outcome.failed(f"{host}: management port(s) reachable: {'; '.join(exposed)}. "
                              "Restrict them to the management zone", **facts)
    if not errors and not any(answered(sc.states) for sc in scans) and not alive:
        errors.append("no management port answered at all from zone(s) "
                      f"{', '.join(seen)} and the host answered nowhere else"
                      + (" (no zone_access scans to compare with)" if alive is None else "")
                      + ", so a firewall cannot be told from a host that is down; define "
                        "zone_access with a port some zone may reach as a liveness reference")
    if errors:
        return Outcome.error(f"{host}: " + "; ".join(errors), **facts)
    return Outcome.passed(f"{host}: no management port answers from zone(s) "
                          f"{', '.join(seen)}", **facts)


def _rules_text(rules: Sequence[Any]) -> str:
    return ", ".join(str(r) for r in rules) if rules else "none"


def _counts(states: Mapping[int, str]) -> str:
    by: dict[str, list[int]] = {}
    for p, s in sorted(states.items()):
        by.setdefault(s, []).append(p)
    parts = [f"open {by['open']}"] if "open" in by else []
    parts += [f"{len(by[s])} {s}" for s in ("closed", "filtered", "unreachable") if s in by]
    return ", ".join(parts)


# --------------------------------------------------------------------------- collect


def _zone_transport(ctx: CheckContext, zone_name: str,
                    zone: Mapping[str, Any]) -> tuple[Transport, bool]:
    """(transport, runs-on-this-machine) for scanning from ``zone``; none is ours to close."""
    if zone.get("exec_prefix"):
        return LocalTransport(f"zone {zone_name}", prefix=zone["exec_prefix"]), False
    via = zone.get("via", "local")
    if via == "local":
        return LocalTransport(f"zone {zone_name} (this machine)"), True
    if via == ctx.target.name:
        return ctx.session.transport, False
    hosts = [t for t in ctx.inventory.targets if t.kind == TargetKind.HOST and t.name == via]
    if not hosts:
        raise TransportError(f"zone {zone_name} scans via host {via!r}, which is not in the "
                             "inventory's hosts")
    # The run's shared connection to the scanner host: opened once per run with the
    # run's SSH options, however many targets are scanned from it.
    return ctx.session.other_host(hosts[0]), False


def scan_zone(ctx: CheckContext, zone_name: str, ports: Sequence[int]) -> ZoneScan:
    """Scan ``ports`` of the target from ``zone_name``, reusing this host's earlier scans."""
    memo: dict[int, str] = ctx.session.memo.setdefault(("tcp-scan", zone_name), {})
    todo = [p for p in ports if p not in memo]
    address = str(ctx.target.spec.get("address") or ctx.target.name)
    if todo:
        zone = ctx.inventory.zones[zone_name]
        try:
            transport, local = _zone_transport(ctx, zone_name, zone)
            states, commands = run_scan(transport, address, todo,
                                        float(ctx.params["connect_timeout"]), local=local)
        except TransportError as exc:
            return ZoneScan(zone_name, {}, ctx.evidence.redact(str(exc)))
        memo.update(states)
        ctx.note(f"TCP connect scan of {address} from zone {zone_name}",
                 f"# via {zone.get('exec_prefix') or zone.get('via', 'local')}\n"
                 f"# command: {commands[-1].argv[0]} <scan program> {address} "
                 f"{' '.join(commands[-1].argv[3:4])} <{len(todo)} ports>\n{summarise(states)}\n",
                 kind="network-scan", meta={"zone": zone_name, "address": address})
    return ZoneScan(zone_name, {p: memo[p] for p in ports})


def scan_zones(ctx: CheckContext, plan: Mapping[str, Sequence[int]]) -> list[ZoneScan]:
    """Scan from all zones at once: a dropping firewall costs one timeout, not one per zone."""
    if len(plan) == 1:
        return [scan_zone(ctx, z, p) for z, p in plan.items()]
    with ThreadPoolExecutor(max_workers=min(len(plan), 8), thread_name_prefix="cc-scan") as pool:
        return list(pool.map(lambda item: scan_zone(ctx, *item), plan.items()))


def _tcp_pairs(specs: Sequence[Any]) -> list[tuple[int, int]]:
    return [(r.first, r.last) for r in parse_ports(specs) if r.proto == "tcp"]


def check_reachability(ctx: CheckContext) -> Outcome:
    zone_access: Mapping[str, Sequence[Any]] = ctx.target.spec.get("zone_access") or {}
    if not ctx.inventory.zones or not zone_access:
        return Outcome.manual(f"{ctx.target.name}: no scanner zones or no zone_access for this "
                              "host; define 'zones:' and per-host 'zone_access:' (which ports "
                              "each zone may reach) to check the network firewall layer")
    try:
        plan = _reachability_plan(ctx, zone_access, ctx.params["common_ports"])
    except ValueError as exc:
        return Outcome.error(f"{ctx.target.name}: {exc}")
    return judge_reachability(ctx.target.name, scan_zones(ctx, plan), zone_access)


def _reachability_plan(ctx: CheckContext, zone_access: Mapping[str, Sequence[Any]],
                       common: Sequence[int]) -> dict[str, list[int]]:
    plan: dict[str, list[int]] = {}
    for zone_name, allowed in zone_access.items():
        try:
            plan[zone_name] = expand_ports([(p, p) for p in common] + _tcp_pairs(allowed)
                                           + _tcp_pairs(ctx.target.spec.get("allowed_ports", [])),
                                           int(ctx.params["max_ports"]))
        except ValueError as exc:
            raise ValueError(f"zone {zone_name}: {exc}") from None
    return plan


def _host_answers_somewhere(ctx: CheckContext) -> bool | None:
    """Liveness from the zones of zone_access: the allowed ports only (cheap, memoised)."""
    zone_access: Mapping[str, Sequence[Any]] = ctx.target.spec.get("zone_access") or {}
    if not zone_access:
        return None
    try:
        plan = _reachability_plan(ctx, zone_access, ())
    except ValueError:
        return None
    return any(answered(sc.states) for sc in scan_zones(ctx, plan) if not sc.error)


def check_management_exposure(ctx: CheckContext) -> Outcome:
    kinds = set(ctx.params["zone_kinds"])
    zones = [n for n, z in ctx.inventory.zones.items() if z.get("kind") in kinds]
    if not zones:
        return Outcome.manual(f"{ctx.target.name}: no scanner zone of kind "
                              f"{'/'.join(sorted(kinds))} is defined; add one under 'zones:' "
                              "to check that management ports are not exposed")
    ports = sorted(set(ctx.params["management_ports"]))
    scans = scan_zones(ctx, {z: ports for z in zones})
    alive = True if any(answered(sc.states) for sc in scans) else _host_answers_somewhere(ctx)
    return judge_management(ctx.target.name, scans, ports, alive)


CHECKS = (
    CheckSpec("net.firewall.reachability", TargetKind.HOST, check_reachability,
              "from a scanner zone, a port answers that the zone may not reach",
              {"common_ports": {**_PORT_LIST, "default": COMMON_PORTS,
                                "description": "scanned besides the zone's and host's allowed "
                                               "ports"},
               **_SCAN_PARAMS}),
    CheckSpec("net.access.management-exposure", TargetKind.HOST, check_management_exposure,
              "a management port is reachable from an application/public zone",
              {"management_ports": {**_PORT_LIST, "default": MANAGEMENT_PORTS},
               "zone_kinds": {"type": "array", "items": {"type": "string"},
                              "default": ["public", "application"],
                              "description": "zones of these kinds may not reach management "
                                             "ports"},
               **_SCAN_PARAMS}),
)
