"""Pure parsing of listening sockets (``ss -H -tulnp`` or ``/proc/net/*``) and the allowlist judge.

A socket bound to loopback (127.0.0.0/8, ::1, ``::ffff:127.x``, or bound to the
``lo`` device with ``%lo``) cannot be reached from another machine, so it is
not exposure and is left out of the judgement (and said so).  Wildcard and
specific addresses count.  ``/proc/net`` does not show ``SO_BINDTODEVICE``,
so the fallback counts ``0.0.0.0%lo`` listeners as exposed (errs to ``fail``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controlcheck.inventory import PortRule, ports_cover


class SocketParseError(ValueError):
    pass


@dataclass(frozen=True)
class Listener:
    proto: str  # "tcp" / "udp"
    address: str  # as shown: "0.0.0.0", "::", "*", "127.0.0.1", "fe80::1"
    port: int
    interface: str = ""  # "%lo" scope/device, without the "%"
    process: str = ""  # "sshd" (from ss -p), empty if unknown

    @property
    def loopback(self) -> bool:
        if self.interface == "lo":
            return True
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return False  # "*" and names: wildcard
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback

    def __str__(self) -> str:
        addr = f"[{self.address}]" if ":" in self.address else self.address
        if self.interface:
            addr += f"%{self.interface}"
        proc = f" ({self.process})" if self.process else ""
        return f"{self.port}/{self.proto} on {addr}{proc}"


_SS_LOCAL_RE = re.compile(r"^(?P<addr>\[[^\]]*\]|[^%\s]*?)(?:%(?P<iface>[^:\s]+))?:(?P<port>\d+|\*)$")
_SS_PROC_RE = re.compile(r'\(\("([^"]+)"')


def parse_ss(text: str) -> list[Listener]:
    """``ss -H -tuln[p]`` lines: ``tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",…))``."""
    listeners: list[Listener] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if fields[0] in ("Netid", "State"):
            continue  # header, if -H was not honoured
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            raise SocketParseError(f"ss line {lineno} not understood: {line!r}")
        proto, state, local = fields[0], fields[1], fields[4]
        if proto == "tcp" and state != "LISTEN":
            continue
        m = _SS_LOCAL_RE.match(local)
        if not m or m.group("port") == "*":
            raise SocketParseError(f"ss line {lineno}: local address {local!r} not understood")
        addr = m.group("addr").strip("[]")
        proc = _SS_PROC_RE.search(line)
        listeners.append(Listener(proto, addr, int(m.group("port")), m.group("iface") or "",
                                  proc.group(1) if proc else ""))
    return _dedupe(listeners)


_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


def parse_proc_net(text: str, proto: str, ipv6: bool) -> list[Listener]:
    """``/proc/net/{tcp,udp}{,6}``: TCP in state LISTEN, UDP unconnected (what ``ss -l`` shows)."""
    listeners = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "sl":
            continue
        if len(fields) < 4 or ":" not in fields[1]:
            raise SocketParseError(f"/proc/net line {lineno} not understood: {line!r}")
        state = fields[3]
        if state != (_TCP_LISTEN if proto == "tcp" else _UDP_UNCONNECTED):
            continue
        hex_addr, hex_port = fields[1].split(":")
        listeners.append(Listener(proto, _proc_addr(hex_addr, ipv6), int(hex_port, 16)))
    return listeners


def _proc_addr(hex_addr: str, ipv6: bool) -> str:
    """Kernel byte order: each 32-bit word is host-endian (little on x86/arm64)."""
    raw = bytes.fromhex(hex_addr)
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words)
    if ipv6:
        return str(ipaddress.IPv6Address(packed))
    return str(ipaddress.IPv4Address(packed))


def _dedupe(items: Iterable[Listener]) -> list[Listener]:
    seen: dict[tuple[str, str, int, str], Listener] = {}
    for item in items:
        key = (item.proto, item.address, item.port, item.interface)
        if key not in seen or (item.process and not seen[key].process):
            seen[key] = item
    return sorted(seen.values(), key=lambda x: (x.proto, x.port, x.address))


@dataclass(frozen=True)
class ListeningVerdict:
    exposed: tuple[Listener, ...]  # not loopback
    loopback: tuple[Listener, ...]
    unexpected: tuple[Listener, ...]  # exposed and not in the allowlist


def judge_listening(listeners: Sequence[Listener],
                    allowed: Sequence[PortRule]) -> ListeningVerdict:
    exposed = tuple(x for x in listeners if not x.loopback)
    loop = tuple(x for x in listeners if x.loopback)
    unexpected = tuple(x for x in exposed if not ports_cover(allowed, x.port, x.proto))
    return ListeningVerdict(exposed, loop, unexpected)


def summarise_ports(listeners: Iterable[Listener]) -> str:
    """``22/tcp (sshd), 5353/udp`` — one entry per port/proto."""
    by_port: dict[tuple[int, str], set[str]] = {}
    for x in listeners:
        by_port.setdefault((x.port, x.proto), set())
        if x.process:
            by_port[(x.port, x.proto)].add(x.process)
    parts = []
    for (port, proto), procs in sorted(by_port.items()):
        parts.append(f"{port}/{proto}" + (f" ({', '.join(sorted(procs))})" if procs else ""))
    return ", ".join(parts)
