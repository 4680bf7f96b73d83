"""Collect: what an endpoint accepts, with as few handshakes as the verdicts need.

Per endpoint (memoised on the engine's TargetSession, so the nine checks share it):

1. one OpenSSL handshake offering everything it can (TLS 1.0–1.3, all suites, SECLEVEL 0)
   that verifies the chain and sends the HTTP GET on the same connection (a second one
   only when verification refuses the chain, to fetch it);
2. one raw ClientHello capped at TLS 1.1 offering every known suite: any ServerHello
   means a legacy version is accepted (narrowed down only then, to name each one);
3. one raw TLS 1.2 ClientHello offering *every suite outside the profile*: rejected means
   none is accepted; accepted names one culprit, which is removed and the hello repeated;
4. the same for TLS 1.3 suites outside the profile (only when the server speaks 1.3 and
   the profile leaves some out);
5. one TLS 1.2 hello with the profile's suites and status_request: OCSP stapling, the
   ECDHE group, and a positive control that our raw hello is one the server accepts.

The first failure to reach the endpoint (refused, timeout, garbage) is remembered and
every later stage errors at once with that reason, so a dead endpoint costs one timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from controlcheck.probes.base import CheckContext
from controlcheck.probes.tls.profiles import Profile
from controlcheck.transports import raw_hello as rh
from controlcheck.transports.base import ConnectError, TransportError
from controlcheck.transports.tls_suites import LEGACY_SUITES, NAME_TO_CODE, TLS13_SUITES, suite_name

MAX_CULPRITS = 12
_SSL_TO_NAME = {"TLSv1": "TLSv1", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}


class Unreachable(TransportError):
    """The endpoint could not be talked to at all; every check errors with this."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int
    address: str
    servername: str
    scheme: str  # "https", "http" (plain twin only) or "tls" (bare HOST:PORT)
    path: str
    http_url: str | None
    ca_file: str | None

    @property
    def hsts_url(self) -> str | None:
        """Where HSTS is judged: an https:// URL, or a bare host on port 443."""
        if self.scheme == "https" or (self.scheme == "tls" and self.port == 443):
            host = f"[{self.host}]" if ":" in self.host else self.host
            port = "" if self.port == 443 else f":{self.port}"
            return f"https://{host}{port}{self.path}"
        return None

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name} ({host}:{self.port})" if self.name != f"{host}:{self.port}" \
            else self.name


def endpoint_of(ctx: CheckContext) -> Endpoint:
    spec = ctx.target.spec
    url = spec.get("url")
    path = "/"
    if url:
        parts = urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    else:
        scheme = "tls"
        host = spec["host"]
        port = int(spec.get("port", 443))
    http_url = spec.get("http_url") or (url if scheme == "http" else None)
    ca = spec.get("ca_file")
    return Endpoint(name=ctx.target.name, host=host, port=port,
                    address=spec.get("address") or host,
                    servername=spec.get("servername") or host, scheme=scheme, path=path,
                    http_url=http_url, ca_file=str(ctx.inventory.resolve(ca)) if ca else None)


@dataclass
class ScanState:
    """Everything learnt about one endpoint so far (lives in ``session.memo``)."""

    fatal: str | None = None
    handshakes: int = 0
    attempts: list[str] = field(default_factory=list)
    base: Any = None  # tls_handshake.Handshake, or an exception
    versions: dict[str, bool | None] | None = None
    suites: dict[str, Any] = field(default_factory=dict)  # per profile id
    info: rh.Answer | None = None
    # Some raw ClientHello got a ServerHello: the server takes our hand-built hellos, so
    # their refusals mean something.  Without it a refusal may be about our hello itself.
    raw_accepted: bool = False
    versions_undecided: str | None = None  # why SSLv3/TLS 1.0/1.1 could not be decided


def state(ctx: CheckContext) -> ScanState:
    st = ctx.session.memo.get("tls-scan")
    if st is None:
        st = ctx.session.memo["tls-scan"] = ScanState()
    assert isinstance(st, ScanState)
    return st


def _check_alive(st: ScanState) -> None:
    if st.fatal:
        raise Unreachable(st.fatal)


def hello(ctx: CheckContext, ep: Endpoint, spec: rh.ClientHelloSpec, *,
          want_flight: bool = False) -> rh.Answer:
    st = state(ctx)
    _check_alive(st)
    st.handshakes += 1
    try:
        answer, _raw = rh.exchange(ep.address, ep.port, spec, timeout=ctx.timeout,
                                   want_flight=want_flight)
    except (ConnectError, rh.HelloTimeout, rh.HelloGarbage) as exc:
        st.fatal = f"{ep.name}: {exc}"
        st.attempts.append(f"raw ClientHello {spec.label}: {exc}")
        raise Unreachable(st.fatal) from exc
    if answer.kind == "alert" and answer.alert in (47, 50, 109, 110, 112):
        # illegal_parameter/decode_error/missing or unsupported extension: the server
        # objects to our hello itself, so the answer says nothing about what it accepts.
        # unrecognized_name: a name-based server refuses our SNI (e.g. nginx
        # ssl_reject_handshake) before it looks at versions or suites.
        st.attempts.append(f"raw ClientHello {spec.label}: {answer.describe()} (unusable)")
        raise TransportError(f"{ep.label} rejected our probe ClientHello ({spec.label}) with "
                             f"{answer.describe()}; cannot decide")
    st.attempts.append(f"raw ClientHello {spec.label}: {answer.describe()}")
    if answer.accepted:
        st.raw_accepted = True
    return answer


def base_handshake(ctx: CheckContext, ep: Endpoint) -> Any:
    """The OpenSSL handshake (+ GET).  Raises for an unreachable endpoint."""
    from controlcheck.transports.tls_handshake import HandshakeFailed, handshake

    st = state(ctx)
    if st.base is None:
        _check_alive(st)
        try:
            hsts = ep.hsts_url
            st.base = handshake(ep.address, ep.port, ep.servername, ca_file=ep.ca_file,
                                timeout=ctx.timeout,
                                http_path=ep.path if hsts else None,
                                http_host=_host_header(ep))
            st.handshakes += 1 if st.base.verified else 2
            st.attempts.append(f"OpenSSL handshake (TLS 1.0-1.3, all suites): "
                               f"{st.base.protocol} {st.base.cipher}"
                               f"{'' if st.base.verified else ' (chain not verified)'}")
        except HandshakeFailed as exc:
            st.handshakes += 1
            st.base = exc
            st.attempts.append(f"OpenSSL handshake: {exc}")
        except TransportError as exc:
            st.handshakes += 1
            st.fatal = f"{ep.name}: {exc}"
            st.attempts.append(f"OpenSSL handshake: {exc}")
            raise Unreachable(st.fatal) from exc
    if isinstance(st.base, Exception):
        raise st.base
    return st.base


def _host_header(ep: Endpoint) -> str:
    # The name the TLS handshake asked for (SNI) is the site being checked; with an
    # address-only URL and --servername, the URL host would route the GET to another
    # virtual host (nginx picks the server block by Host, not SNI) and judge its HSTS.
    name = ep.servername or ep.host
    host = f"[{name}]" if ":" in name else name
    return host if ep.port == 443 else f"{host}:{ep.port}"


def versions(ctx: CheckContext, ep: Endpoint, profile: Profile) -> dict[str, bool | None]:
    """Which protocol versions are accepted (None: not needed, not probed)."""
    from controlcheck.transports.tls_handshake import HandshakeFailed

    st = state(ctx)
    if st.versions is not None:
        return st.versions
    acc: dict[str, bool | None] = {v: None for v in ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2",
                                                      "TLSv1.3")}
    try:
        base = base_handshake(ctx, ep)
        negotiated = _SSL_TO_NAME.get(base.protocol)
        if negotiated:
            acc[negotiated] = True
            if negotiated != "TLSv1.3":
                acc["TLSv1.3"] = False  # we offered 1.3; a server that speaks it picks it
    except HandshakeFailed:
        pass
    if acc["TLSv1.3"] is None:
        a = hello(ctx, ep, rh.ClientHelloSpec(rh.TLS13, tuple(TLS13_SUITES), ep.servername))
        acc["TLSv1.3"] = a.accepted and a.version == rh.TLS13
    if acc["TLSv1.2"] is None and ("TLSv1.2" not in profile.protocols or not acc["TLSv1.3"]):
        a = hello(ctx, ep, rh.ClientHelloSpec(rh.TLS12, LEGACY_SUITES, ep.servername))
        acc["TLSv1.2"] = a.accepted and a.version == rh.TLS12
    _legacy_versions(ctx, ep, profile, acc)
    st.versions = acc
    return acc


_LEGACY = ("SSLv3", "TLSv1", "TLSv1.1")


def _legacy_versions(ctx: CheckContext, ep: Endpoint, profile: Profile,
                     acc: dict[str, bool | None]) -> None:
    """SSLv3/TLS 1.0/1.1: one hello capped at TLS 1.1, narrowed down only if one is accepted.

    What OpenSSL negotiated is proof and always wins.  A raw refusal counts only when the
    same raw machinery got a ServerHello from this server at all (else the server may be
    refusing *our hello*, not the version), and never when it contradicts OpenSSL.
    """
    st = state(ctx)
    raw: dict[str, bool] = {}
    last: rh.Answer | None = None
    cap = rh.TLS11
    while cap >= rh.SSL3:
        last = hello(ctx, ep, rh.ClientHelloSpec(cap, LEGACY_SUITES, ep.servername))
        got = last.version if last.accepted and last.version is not None \
            and last.version <= cap else None
        if got is None:
            for v in range(rh.SSL3, cap + 1):
                raw[rh.VERSION_NAMES[v]] = False
            break
        raw[rh.VERSION_NAMES[got]] = True
        for v in range(got + 1, cap + 1):
            raw[rh.VERSION_NAMES[v]] = False
        cap = got - 1
    refused = [v for v in _LEGACY if raw.get(v) is False]
    said = last.describe() if last is not None else "no answer"
    contradicted = [v for v in refused if acc.get(v)]
    reason = None
    if contradicted:
        reason = (f"our raw ClientHello capped at TLS 1.1 got '{said}', yet the OpenSSL "
                  f"handshake negotiated {', '.join(contradicted)}: the raw probe is not "
                  "believable on this server")
    elif refused and not st.raw_accepted and not _control_hello(ctx, ep, profile, acc):
        reason = (f"the server accepted none of our raw ClientHellos (legacy probe: '{said}'), "
                  "so their refusal may be about our hello rather than the version")
    for name in _LEGACY:
        if raw.get(name):
            acc[name] = True
        elif name in raw and not acc.get(name):
            acc[name] = None if reason else False
    if reason:
        st.versions_undecided = reason
        st.attempts.append(f"SSLv3/TLS 1.0/1.1 refusals not trusted: {reason}")


def _control_hello(ctx: CheckContext, ep: Endpoint, profile: Profile,
                   acc: dict[str, bool | None]) -> bool:
    """A raw hello the server should accept (what OpenSSL saw): does it take ours?"""
    if acc.get("TLSv1.2") is not False:
        try:
            info = info_hello(ctx, ep, profile, acc)  # memoised: cipher-suites reuses it
        except Unreachable:
            raise
        except TransportError:
            info = None
        if info is not None and info.accepted:
            return True
    if acc.get("TLSv1.3"):
        a = hello(ctx, ep, rh.ClientHelloSpec(rh.TLS13, tuple(TLS13_SUITES), ep.servername))
        return a.accepted
    return False


def weak_suites(ctx: CheckContext, ep: Endpoint, profile: Profile) -> dict[str, Any]:
    """Suites outside / phase-out of the profile that the endpoint accepts."""
    st = state(ctx)
    if profile.id in st.suites:
        return st.suites[profile.id]  # type: ignore[no-any-return]
    acc = versions(ctx, ep, profile)
    allowed = {NAME_TO_CODE[n] for n in profile.suites}
    outside: list[str] = []
    phase: list[str] = []
    capped = False
    legacy_spoken = [v for v in ("TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3") if acc.get(v)]
    ambiguous = False
    if legacy_spoken or acc.get("TLSv1.2") is None:
        top = {"TLSv1.2": rh.TLS12, "TLSv1.1": rh.TLS11, "TLSv1": rh.TLS10,
               "SSLv3": rh.SSL3}[legacy_spoken[0]] if legacy_spoken else rh.TLS12
        offer = [c for c in LEGACY_SUITES if c not in allowed]
        found, capped, ambiguous = _narrow(ctx, ep, top, offer)
        for code in found:
            (phase if profile.suite_level(suite_name(code)) == "phase-out" else outside) \
                .append(suite_name(code))
    if acc.get("TLSv1.3"):
        offer13 = [c for c in TLS13_SUITES if c not in allowed]
        if offer13:
            found13, capped13, _amb = _narrow(ctx, ep, rh.TLS13, offer13)
            capped = capped or capped13
            for code in found13:
                (phase if profile.suite_level(suite_name(code)) == "phase-out" else outside) \
                    .append(suite_name(code))
    info = info_hello(ctx, ep, profile)
    if not outside and not phase and not st.raw_accepted:
        # Every refusal may be about our hand-built hello, not the suites offered.
        raise TransportError(f"{ep.label} accepted none of our probe ClientHellos, not even "
                             "with suites it should accept; cannot tell which suites it "
                             "accepts")
    if ambiguous and not outside and (info is None or info.kind == "closed"):
        raise TransportError(f"{ep.label} closes the connection on our probe ClientHello "
                             "without an alert, also for suites it should accept; cannot tell "
                             "which suites it accepts")
    result = {"outside": outside, "phase_out": phase, "capped": capped}
    st.suites[profile.id] = result
    return result


def _narrow(ctx: CheckContext, ep: Endpoint, version: int,
            offer: list[int]) -> tuple[list[int], bool, bool]:
    """Offer the whole class; while a suite is picked, name it and offer the rest."""
    found: list[int] = []
    remaining = list(offer)
    ambiguous = False
    while remaining:
        if len(found) >= MAX_CULPRITS:
            return found, True, ambiguous
        spec = rh.ClientHelloSpec(version, tuple(remaining), ep.servername)
        a = hello(ctx, ep, spec)
        if not a.accepted:
            ambiguous = a.kind == "closed"
            break
        if a.cipher not in remaining:
            # A broken server (or one in front of another): its pick says nothing about
            # the suites offered, and stopping here would read as "none accepted".
            raise TransportError(f"{ep.label}: the server chose suite "
                                 f"{suite_name(a.cipher or 0)}, which was not offered "
                                 f"({spec.label}); cannot tell which suites it accepts")
        found.append(a.cipher)
        remaining.remove(a.cipher)
    return found, False, ambiguous


def info_hello(ctx: CheckContext, ep: Endpoint, profile: Profile,
               acc: dict[str, bool | None] | None = None) -> rh.Answer | None:
    """TLS 1.2 with the profile's own suites + status_request: OCSP, group, sanity."""
    st = state(ctx)
    if st.info is not None:
        return st.info
    if acc is None:
        acc = st.versions or {}
    suites12 = tuple(NAME_TO_CODE[n] for n in sorted(profile.suites)
                     if NAME_TO_CODE[n] not in TLS13_SUITES)
    if acc.get("TLSv1.2") is False or not suites12:
        return None
    st.info = hello(ctx, ep, rh.ClientHelloSpec(rh.TLS12, suites12, ep.servername,
                                                status_request=True), want_flight=True)
    if acc.get("TLSv1.2") is None and st.info.kind != "closed":
        # A silent close is no refusal of TLS 1.2: leave it undecided.
        acc["TLSv1.2"] = st.info.accepted and st.info.version == rh.TLS12
    return st.info


def attempts_text(ctx: CheckContext, ep: Endpoint) -> str:
    st = state(ctx)
    sni = "none (an IP address is never sent as SNI)" if rh.is_ip_literal(ep.servername) \
        else ep.servername
    lines = [f"endpoint {ep.label}: connect {ep.address}:{ep.port}, SNI {sni}",
             f"handshakes so far: {st.handshakes}"]
    lines += [f"{i + 1}. {a}" for i, a in enumerate(st.attempts)]
    return "\n".join(lines) + "\n"
