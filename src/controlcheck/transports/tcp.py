"""TCP connect scans, run from wherever a scanner zone is.

The scan is one small Python program (``SCAN_PROGRAM``) run with the address,
timeout and ports as *arguments* (never spliced into code), through a transport:
this machine (``LocalTransport``), a local argv prefix such as
``ip netns exec dmz`` (how a zone is entered), or an inventory host's own
transport (the connect then starts on that host).  Hosts without python3 get the
same scan from bash's ``/dev/tcp``.  One answer line per port: ``PORT STATE``
with STATE one of:

``open``         the handshake completed
``closed``       RST: the host is up, nothing listens or a firewall rejects
``filtered``     no answer before the timeout (dropped)
``unreachable``  ICMP/ARP says the address cannot be reached, or the zone itself cannot
                 send (blackhole/prohibit route: EINVAL/EACCES, its own output firewall:
                 EPERM) — only a timeout is "filtered", so a zone without a path never
                 looks like a dropping firewall
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence

from controlcheck.transports.base import CommandResult, Transport, TransportError

STATES = ("open", "closed", "filtered", "unreachable")

# Runs under any python3 >= 3.5; connects to every port at once, bounded by one
# overall deadline.  Kept dependency-free so it runs on a bare server.
SCAN_PROGRAM = r"""
import errno, selectors, socket, sys, time
addr, timeout, ports = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def state(err):
    if err == 0: return "open"
    if err == errno.ECONNREFUSED: return "closed"
    if err == errno.ETIMEDOUT: return "filtered"
    return "unreachable"
res, sel = {}, selectors.DefaultSelector()
for p in ports:
    s = socket.socket(fam, socket.SOCK_STREAM); s.setblocking(False)
    err = s.connect_ex((addr, p))
    if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        sel.register(s, selectors.EVENT_WRITE, p)
    else:
        res[p] = state(err); s.close()
end = time.monotonic() + timeout
while sel.get_map():
    left = end - time.monotonic()
    if left <= 0: break
    for key, _ in sel.select(left):
        res[key.data] = state(key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
        sel.unregister(key.fileobj); key.fileobj.close()
for key in list(sel.get_map().values()):
    res[key.data] = "filtered"; key.fileobj.close()
for p in ports: print(p, res[p])
"""

# Fallback without python3: one background connect per port under `timeout`.
BASH_PROGRAM = r"""
addr=$1; t=$2; shift 2
for p in "$@"; do
  ( err=$(timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$addr" "$p" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then echo "$p open"
    elif [ $rc -eq 124 ]; then echo "$p filtered"
    else case $err in *refused*) echo "$p closed";; *"timed out"*) echo "$p filtered";;
         *) echo "$p unreachable";; esac; fi ) &
done
wait
"""

_LINE = re.compile(r"^(\d{1,5}) (open|closed|filtered|unreachable)$")


def scan_argv(address: str, ports: Sequence[int], timeout: float, *,
              interpreter: str = "python3") -> list[str]:
    return [interpreter, "-c", SCAN_PROGRAM, address, f"{timeout:g}", *map(str, ports)]


def bash_scan_argv(address: str, ports: Sequence[int], timeout: float) -> list[str]:
    return ["bash", "-c", BASH_PROGRAM, "cc-scan", address, f"{timeout:g}", *map(str, ports)]


def parse_scan(text: str, ports: Iterable[int]) -> dict[int, str]:
    """Scanner output → {port: state}; every asked port must be answered exactly."""
    found: dict[int, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"unexpected scanner output line {line!r}")
        found[int(m.group(1))] = m.group(2)
    missing = sorted(set(ports) - set(found))
    if missing:
        raise ValueError(f"scanner gave no answer for port(s) {missing[:10]}")
    return found


def run_scan(transport: Transport, address: str, ports: Sequence[int], timeout: float, *,
             local: bool = False) -> tuple[dict[int, str], list[CommandResult]]:
    """Scan through ``transport``; returns the states and the commands run (evidence).

    Raises ``TransportError`` when the zone has neither python3 nor bash, or the
    scanner's answer cannot be read — never guesses a state.
    """
    interpreter = sys.executable if local else "python3"
    budget = timeout + 15.0  # start-up of the interpreter (or of an SSH channel)
    results = [transport.run(scan_argv(address, ports, timeout, interpreter=interpreter),
                             timeout=budget)]
    if results[-1].exit_status == 127:
        results.append(transport.run(bash_scan_argv(address, ports, timeout), timeout=budget))
        if results[-1].exit_status == 127:
            raise TransportError(f"{transport.name}: neither python3 nor bash to run a TCP "
                                 "connect from; install python3 there or scan from another zone")
    last = results[-1]
    if last.exit_status != 0 or last.truncated:
        raise TransportError(f"{transport.name}: the TCP connect scan failed (exit "
                             f"{last.exit_status}): {last.err_text.strip()[:300]}")
    try:
        return parse_scan(last.text, ports), results
    except ValueError as exc:
        raise TransportError(f"{transport.name}: {exc}") from None


def expand_ports(rules: Iterable[tuple[int, int]], limit: int) -> list[int]:
    """Ranges → sorted port list; refuses to expand beyond ``limit`` ports."""
    ports: set[int] = set()
    for first, last in rules:
        ports.update(range(first, last + 1))
        if len(ports) > limit:
            raise ValueError(f"more than {limit} ports to scan; narrow the ranges or raise "
                             "the check's max_ports parameter")
    return sorted(ports)


def summarise(states: Mapping[int, str]) -> str:
    """``22 open, 80 closed, …`` in port order, for evidence."""
    return "\n".join(f"{p} {s}" for p, s in sorted(states.items()))
