"""FW host layer: default-deny input firewall, and listening sockets inside the allowlist.

Collect (commands through ``ctx.run``), then judge with the pure functions in
``firewall_rules`` and ``listening``.  The kernel ruleset is the truth: ufw and
firewalld are front ends that load nftables/iptables rules, so their own status
is recorded as context but never makes the check pass on its own.
"""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.firewall_rules import (
    Ruleset,
    RulesetParseError,
    judge_default_deny,
    parse_iptables_save,
    parse_nft_json,
)
from controlcheck.probes.listening import (
    Listener,
    SocketParseError,
    judge_listening,
    parse_proc_net,
    parse_ss,
    summarise_ports,
)
from controlcheck.transports.base import CommandResult

_NOT_FOUND = 127
_PERMISSION_HINTS = ("permission denied", "operation not permitted", "you must be root",
                     "must be run as root")

# (label, argv, parser) — nft first: it also shows iptables-nft rules.
_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nftables", ("nft", "-j", "list", "ruleset")),
    ("iptables", ("iptables-save",)),
    ("ip6tables", ("ip6tables-save",)),
    ("iptables-legacy", ("iptables-legacy-save",)),
    ("ip6tables-legacy", ("ip6tables-legacy-save",)),
)


def _denied(result: CommandResult) -> bool:
    text = (result.err_text + result.text).lower()
    return any(h in text for h in _PERMISSION_HINTS)


def _collect_rulesets(ctx: CheckContext) -> tuple[list[Ruleset], list[str], list[str]]:
    """(parsed rulesets, unreadable reasons, tools found)."""
    rulesets: list[Ruleset] = []
    unreadable: list[str] = []
    found: list[str] = []
    for label, argv in _SOURCES:
        result = ctx.run(list(argv))
        if result.exit_status == _NOT_FOUND:
            continue
        found.append(label)
        if result.exit_status != 0 or _denied(result):
            why = " ".join((result.err_text.strip() or result.text.strip()).split())[:200]
            unreadable.append(f"{' '.join(argv)} exited {result.exit_status}: {why}")
            continue
        try:
            if label == "nftables":
                rulesets.append(parse_nft_json(result.text))
            else:
                rulesets.append(parse_iptables_save(result.text, label))
        except RulesetParseError as exc:
            unreadable.append(f"{' '.join(argv)}: {exc}")
    return rulesets, unreadable, found


def _frontends(ctx: CheckContext) -> list[str]:
    """What ufw/firewalld say about themselves (context for the message only)."""
    notes: list[str] = []
    ufw = ctx.run(["ufw", "status", "verbose"])
    if ufw.exit_status != _NOT_FOUND and ufw.ok:
        lines = [ln.strip() for ln in ufw.text.splitlines()
                 if ln.startswith(("Status:", "Default:"))]
        if lines:
            notes.append("ufw reports " + "; ".join(lines))
    fwd = ctx.run(["firewall-cmd", "--state"])
    if fwd.exit_status != _NOT_FOUND:
        state = (fwd.text.strip() or fwd.err_text.strip()).splitlines()
        notes.append(f"firewalld reports {state[0] if state else 'nothing'!r}")
    return notes


def _ipv6_enabled(ctx: CheckContext) -> bool:
    """IPv6 needs covering unless the kernel has no IPv6 at all (``ipv6.disable=1``)."""
    result = ctx.run(["cat", "/proc/net/if_inet6"])
    return result.ok


def check_default_deny(ctx: CheckContext) -> Outcome:
    name = ctx.target.name
    rulesets, unreadable, found = _collect_rulesets(ctx)
    ipv6 = _ipv6_enabled(ctx)
    verdict = judge_default_deny(rulesets, ipv6_enabled=ipv6)
    context = _frontends(ctx)
    notes = [n for rs in rulesets for n in rs.notes] + context
    tail = (" (" + "; ".join(notes) + ")") if notes else ""
    if verdict.holds:
        parts = []
        for fam in verdict.families_needed:
            chain = verdict.denying[fam][0]
            parts.append(f"{fam}: {chain.source} '{chain.name}' ({chain.fallthrough})")
        extra = "" if ipv6 else "; the kernel has no IPv6, so IPv4 alone is needed"
        return Outcome.passed(f"{name}: input is default-deny — " + "; ".join(parts) + extra
                              + tail, ctx.collected, families=list(verdict.families_needed))
    if unreadable:
        return Outcome.error(
            f"{name}: cannot read the firewall ruleset ({'; '.join(unreadable)}); run as root "
            "or set 'sudo: true' for this host in the inventory", ctx.collected)
    undecided_fams = {f for c in verdict.undecided for f in c.families}
    if verdict.undecided and set(verdict.uncovered) <= undecided_fams:
        # Only when nothing is certainly open: a family that is plainly open fails below.
        why = "; ".join(c.describe() for c in verdict.undecided)
        return Outcome.error(
            f"{name}: cannot judge {', '.join(verdict.uncovered)} input: {why}. Make "
            "iptables-save (nf_tables backend) readable on this host, or convert the rules "
            "to native nftables" + tail, ctx.collected, uncovered=verdict.uncovered)
    if not found:
        return Outcome.failed(
            f"{name}: no firewall tool (nft, iptables) is installed, so nothing filters input; "
            "install nftables and load a default-deny ruleset" + tail, ctx.collected)
    open_fams = ", ".join(verdict.uncovered)
    if all(rs.empty for rs in rulesets) or not any(rs.chains for rs in rulesets):
        what = "no firewall ruleset is loaded (no input chain in any table)"
    else:
        # Untouched tables (legacy iptables with policy ACCEPT and no rules) are noise.
        quiet = {c for rs in rulesets if rs.empty for c in rs.chains}
        seen = "; ".join(c.describe() for c in verdict.open_chains if c not in quiet)
        covered = [f"{f} is: {c[0].source} '{c[0].name}', {c[0].fallthrough}"
                   for f, c in verdict.denying.items() if c and f in verdict.families_needed]
        what = (f"{open_fams} input is not default-deny"
                + (f" ({'; '.join(covered)})" if covered else "")
                + (f"; open input chains: {seen}" if seen else ""))
    return Outcome.failed(
        f"{name}: {what}. Load a ruleset whose input chain drops by default for "
        f"{open_fams} (e.g. an 'inet' table with 'policy drop', which covers IPv4 and IPv6)"
        + tail, ctx.collected, uncovered=verdict.uncovered)


def _collect_listeners(ctx: CheckContext) -> tuple[list[Listener] | None, str]:
    result = ctx.run(["ss", "-H", "-tulnp"])
    if result.ok:
        try:
            return parse_ss(result.text), "ss"
        except SocketParseError as exc:
            return None, str(exc)
    listeners: list[Listener] = []
    problems = [f"ss exited {result.exit_status}"]
    for proto in ("tcp", "udp"):
        for v6 in (False, True):
            path = f"/proc/net/{proto}{'6' if v6 else ''}"
            res = ctx.run(["cat", path])
            if not res.ok:
                if v6:
                    continue  # no IPv6 in the kernel
                problems.append(f"cannot read {path}")
                return None, "; ".join(problems)
            try:
                listeners += parse_proc_net(res.text, proto, v6)
            except SocketParseError as exc:
                return None, str(exc)
    return listeners, "/proc/net"


def check_listening_allowed(ctx: CheckContext) -> Outcome:
    name = ctx.target.name
    listeners, source = _collect_listeners(ctx)
    if listeners is None:
        return Outcome.error(f"{name}: cannot list listening sockets: {source}", ctx.collected)
    if "allowed_ports" not in ctx.target.spec:
        exposed = [x for x in listeners if not x.loopback]
        return Outcome.manual(
            f"{name}: no allowed_ports in the inventory, so nothing to compare against; "
            f"listening (not loopback): {summarise_ports(exposed) or 'nothing'}. "
            "Add allowed_ports to this host in the inventory", ctx.collected)
    allowed = ctx.target.allowed_ports
    verdict = judge_listening(listeners, allowed)
    loop_note = (f"; {len(verdict.loopback)} loopback-only listener(s) not counted"
                 if verdict.loopback else "")
    allowed_text = ", ".join(str(r) for r in allowed) or "none"
    if verdict.unexpected:
        return Outcome.failed(
            f"{name}: listening on ports outside allowed_ports ({allowed_text}): "
            + ", ".join(str(x) for x in verdict.unexpected)
            + f"{loop_note}. Stop these services, bind them to loopback, or add the ports "
            "to allowed_ports with the approval", ctx.collected,
            unexpected=[str(x) for x in verdict.unexpected], source=source)
    return Outcome.passed(
        f"{name}: every exposed listener is allowed ({summarise_ports(verdict.exposed) or 'none'})"
        f"{loop_note}", ctx.collected, source=source)


CHECKS = (
    CheckSpec('host.firewall.default-deny', TargetKind.HOST, check_default_deny,
              'no active firewall with a default-deny input policy',
              {}),
    CheckSpec('host.firewall.listening-allowed', TargetKind.HOST, check_listening_allowed,
              "a socket listens on a port outside the host's allowlist",
              {}),
)
