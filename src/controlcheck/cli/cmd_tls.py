"""``controlcheck tls``: the CI gate — TLS endpoints checked without catalogue or inventory.

The targets become an in-memory inventory of endpoints and the TLS family of the
packaged catalogue is the catalogue slice, so this runs exactly the engine and probes
``controlcheck run`` does.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from controlcheck.cli.common import config_error, usage_error

_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/\s\[\]]+))(?::(?P<port>\d{1,5}))?$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tls", help="check TLS endpoints against a profile (CI gate; no inventory needed)",
        description="Check HOST[:PORT] (443 by default), [IPv6]:PORT, https:// URLs (adds "
                    "HSTS on that URL) and http:// URLs (HTTP->HTTPS redirect only). Exit 0 "
                    "when every check passes, 1 when one fails, 3 when one could not be "
                    "decided, 2 on usage errors.")
    p.add_argument("targets", nargs="+", metavar="TARGET")
    p.add_argument("--servername", metavar="NAME",
                   help="SNI and the name the certificate must cover (default: the host)")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDRESS",
                   help="connect to ADDRESS for HOST:PORT (like curl --resolve; repeatable)")
    p.add_argument("--ca-file", metavar="PEM", help="trust these CAs instead of the system store")
    p.add_argument("--profile", default="mozilla-intermediate", metavar="NAME|FILE",
                   help="mozilla-intermediate (6.0, default), mozilla-modern, "
                        "mozilla-intermediate-5.7, mozilla-modern-5.7, ncsc-nl (2025), or a "
                        "profile YAML file")
    p.add_argument("--min-days", type=int, default=14, metavar="N",
                   help="fail certificates with fewer days left (default 14)")
    p.add_argument("--format", choices=("text", "json", "junit", "sarif"), default="text")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the report here (default: stdout); a text summary still "
                        "goes to stdout")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="deadline in seconds for each exchange with an endpoint (default 10)")
    p.set_defaults(func=run)


def parse_resolve(entries: list[str]) -> dict[tuple[str, int], str]:
    """``HOST:PORT:ADDRESS`` entries (ADDRESS may be [IPv6]) → {(host, port): address}."""
    out: dict[tuple[str, int], str] = {}
    for e in entries:
        m = re.match(r"^([^:\s]+):(\d{1,5}):\[?([0-9A-Za-z:.-]+?)\]?$", e)
        if not m:
            raise ValueError(f"--resolve {e!r}: expected HOST:PORT:ADDRESS")
        out[(m.group(1).lower(), int(m.group(2)))] = m.group(3)
    return out


def parse_target(text: str, servername: str | None, ca_file: str | None,
                 resolve: dict[tuple[str, int], str] | None = None) -> dict[str, Any]:
    """One command-line target → an inventory endpoint entry (ValueError if malformed)."""
    spec: dict[str, Any] = {"name": text}
    if re.match(r"^https?://", text, re.IGNORECASE):
        from urllib.parse import urlsplit

        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"{text!r}: URL without a host")
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        spec["url"] = text
        if resolve and (parts.hostname.lower(), port) in resolve:
            spec["address"] = resolve[(parts.hostname.lower(), port)]
    else:
        m = _HOSTPORT.match(text)
        if not m:
            raise ValueError(f"{text!r}: expected HOST[:PORT], [IPv6]:PORT or an http(s):// URL")
        port = int(m.group("port") or 443)
        if not 1 <= port <= 65535:
            raise ValueError(f"{text!r}: port {port} out of range")
        spec["host"] = m.group("v6") or m.group("host")
        spec["port"] = port
        if resolve and (spec["host"].lower(), port) in resolve:
            spec["address"] = resolve[(spec["host"].lower(), port)]
    if servername:
        spec["servername"] = servername
    if ca_file:
        spec["ca_file"] = str(Path(ca_file).resolve())
    return spec


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """The catalogue slice and in-memory inventory for ``args`` (ConfigError/ValueError)."""
    import hashlib
    from dataclasses import replace

    from controlcheck.catalogue import Catalogue, load_catalogue
    from controlcheck.inventory import Inventory, Target
    from controlcheck.model import TargetKind
    from controlcheck.probes import registry
    from controlcheck.probes.tls.profiles import load_profile

    profile = load_profile(args.profile)
    resolve = parse_resolve(args.resolve)
    specs = [parse_target(t, args.servername, args.ca_file, resolve) for t in args.targets]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("the same target is given twice")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise ValueError(f"--ca-file {args.ca_file}: file not found")
    checks = registry()
    controls = []
    full = load_catalogue()
    for control in full.controls:
        if control.family != "TLS" or TargetKind.ENDPOINT not in control.applies_to:
            continue
        refs = []
        for ref in control.checks:
            declared = checks[ref.id].params
            params = dict(ref.params)
            if "profile" in declared:
                params["profile"] = args.profile
            if "min_days" in declared:
                params["min_days"] = args.min_days
            refs.append(replace(ref, params=params))
        controls.append(replace(control, checks=tuple(refs), only=()))
    digest = hashlib.sha256("\0".join([profile.id, *args.targets]).encode()).hexdigest()
    catalogue = Catalogue(controls, full.digest, full.files)
    targets = [Target(s["name"], TargetKind.ENDPOINT, s, source="command line") for s in specs]
    inventory = Inventory(None, Path.cwd(), targets, {}, {}, [], digest)
    return catalogue, inventory


def run(args: argparse.Namespace) -> int:
    import importlib

    from controlcheck.engine import Engine
    from controlcheck.model import Severity
    from controlcheck.reporters import FORMATS
    from controlcheck.transports.factory import open_transport
    from controlcheck.verdict import exit_code
    from controlcheck.yamlio import ConfigError

    if args.timeout <= 0:
        return usage_error("--timeout must be positive")
    if args.min_days < 0:
        return usage_error("--min-days must be 0 or more")
    try:
        catalogue, inventory = build(args)
    except ConfigError as exc:
        return config_error(exc)
    except ValueError as exc:
        return usage_error(str(exc))
    engine = Engine(catalogue, inventory, transport_factory=open_transport,
                    workers=min(32, max(1, len(inventory.targets))), timeout=args.timeout)
    result = engine.run()
    fail_on = Severity.LOW
    summary = render_text(result)
    if args.format == "text":
        text = summary
    else:
        text = importlib.import_module(FORMATS[args.format]).render(result, fail_on)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        sys.stdout.write(summary)
        print(f"{args.format} report written to {args.output}")
    elif args.format == "text":
        sys.stdout.write(text)
    else:
        sys.stdout.write(text)
        sys.stderr.write(summary)
    return exit_code(result.results, fail_on)


def render_text(run: Any) -> str:
    from controlcheck.model import count_by_status

    lines = []
    by_target: dict[str, list[Any]] = {}
    for r in run.results:
        by_target.setdefault(r.target, []).append(r)
    for target, rows in by_target.items():
        lines.append(f"{target}")
        for r in rows:
            lines.append(f"  {r.status.value.upper():5} {r.check:27} {r.message}")
    counts = count_by_status(run.results)
    lines.append("  ".join(f"{k} {v}" for k, v in counts.items() if v))
    return "\n".join(lines) + "\n"
