"""TLS/HTTP endpoint checks and the SSH algorithm check.

Collecting lives in ``scan`` (and the transports it calls), judging in ``judge``; the
functions here wire the two together, record evidence and handle "not applicable".
"""

from __future__ import annotations

from typing import Any

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.tls import judge, scan
from controlcheck.probes.tls.profiles import DEFAULT_PROFILE, Profile, load_profile


def _profile(ctx: CheckContext) -> Profile:
    return load_profile(str(ctx.params.get("profile") or DEFAULT_PROFILE))


def _tls_endpoint(ctx: CheckContext) -> scan.Endpoint | Outcome:
    ep = scan.endpoint_of(ctx)
    if ep.scheme == "http":
        return Outcome.skipped(f"{ep.name} is a plain-HTTP URL: only http.https-redirect "
                               "applies; give its https:// URL to check TLS")
    return ep


def _attempts(ctx: CheckContext, ep: scan.Endpoint) -> str:
    return ctx.note(f"TLS handshakes with {ep.label}", scan.attempts_text(ctx, ep),
                    kind="tls-handshake", meta={"handshakes": scan.state(ctx).handshakes})


def _with_facts(ctx: CheckContext, out: Outcome) -> Outcome:
    st = scan.state(ctx)
    facts = {**out.facts, "handshakes": st.handshakes}
    return Outcome(out.status, out.message, out.evidence, facts)


def protocol_versions(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    profile = _profile(ctx)
    try:
        acc = scan.versions(ctx, ep, profile)
    finally:
        ev = _attempts(ctx, ep)
    return _with_facts(ctx, judge.judge_protocols(ep.label, acc, profile, [ev],
                                                  scan.state(ctx).versions_undecided))


def cipher_suites(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    profile = _profile(ctx)
    try:
        res = scan.weak_suites(ctx, ep, profile)
    finally:
        ev = _attempts(ctx, ep)
    st = scan.state(ctx)
    facts: dict[str, object] = {}
    base = st.base if st.base is not None and not isinstance(st.base, Exception) else None
    if base is not None:
        facts["negotiated"] = f"{base.protocol} {base.cipher}"
        facts["forward_secrecy"] = (base.protocol == "TLSv1.3" or "DHE" in base.cipher) \
            and not any("_RSA_WITH_" in s and "DHE" not in s for s in res["outside"]
                        + res["phase_out"])
    if st.info is not None and st.info.accepted:
        from controlcheck.transports.raw_hello import GROUPS

        facts["ocsp_stapling"] = st.info.ocsp_stapled
        facts["sct_extension"] = 18 in st.info.extensions
        if st.info.group:
            facts["key_exchange_group"] = GROUPS.get(st.info.group, hex(st.info.group))
    return _with_facts(ctx, judge.judge_suites(ep.label, res["outside"], res["phase_out"],
                                               profile, capped=res["capped"], evidence=[ev],
                                               **facts))


def _chain(ctx: CheckContext, ep: scan.Endpoint) -> tuple[Any, list[Any], list[str]]:
    from controlcheck.probes.tls.certs import chain_pem_evidence, parse_cert

    try:
        base = scan.base_handshake(ctx, ep)
    finally:
        ev = [_attempts(ctx, ep)]
    certs = [parse_cert(d) for d in base.chain_der]
    if not certs:
        raise scan.Unreachable(f"{ep.label} sent no certificate")
    ev.append(ctx.note(f"certificate chain served by {ep.label}", chain_pem_evidence(certs),
                       kind="certificate-chain", media_type="application/x-pem-file",
                       meta={"sha256": [c.sha256 for c in certs]}))
    return base, certs, ev


def certificate_trust(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    base, _certs, ev = _chain(ctx, ep)
    anchor = f"the CA file {ep.ca_file}" if ep.ca_file else "the system trust store"
    return _with_facts(ctx, judge.judge_trust(ep.label, base.verified, base.verify_error,
                                              anchor, ev))


def certificate_hostname(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    _base, certs, ev = _chain(ctx, ep)
    return _with_facts(ctx, judge.judge_hostname(ep.label, ep.servername, certs[0], ev))


def certificate_expiry(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    _base, certs, ev = _chain(ctx, ep)
    out = judge.judge_expiry(ep.label, certs, ctx.now, int(ctx.params.get("min_days", 14)), ev)
    return _with_facts(ctx, Outcome(out.status, out.message, out.evidence,
                                    {**out.facts, "embedded_scts": certs[0].scts}))


def certificate_key(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    _base, certs, ev = _chain(ctx, ep)
    return _with_facts(ctx, judge.judge_key(ep.label, certs, _profile(ctx), ev))


def certificate_signature(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    _base, certs, ev = _chain(ctx, ep)
    return _with_facts(ctx, judge.judge_signature(ep.label, certs, _profile(ctx), ev))


def hsts(ctx: CheckContext) -> Outcome:
    ep = _tls_endpoint(ctx)
    if isinstance(ep, Outcome):
        return ep
    url = ep.hsts_url
    if url is None:
        return Outcome.skipped(f"{ep.label} is a bare HOST:PORT on port {ep.port}: HSTS is "
                               "checked for https:// URLs (and port 443); give the URL to check it")
    base = scan.base_handshake(ctx, ep)
    if base.http is None:
        return Outcome.error(f"{url}: {base.http_error or 'no HTTP answer'}",
                             [_attempts(ctx, ep)])
    ev = ctx.note(f"HTTP response of {url}", base.http.raw_head + "\n", kind="http",
                  meta={"status": base.http.status})
    return _with_facts(ctx, judge.judge_hsts(ep.label, url, base.http.status,
                                             base.http.header("Strict-Transport-Security"),
                                             int(ctx.params.get("min_max_age", 15552000)),
                                             [ev]))


def https_redirect(ctx: CheckContext) -> Outcome:
    from urllib.parse import urljoin, urlsplit

    from controlcheck.transports.base import ConnectError
    from controlcheck.transports.http import get_head

    ep = scan.endpoint_of(ctx)
    if not ep.http_url:
        return Outcome.skipped(f"{ep.label} has no plain-HTTP twin; add http_url (inventory) or "
                               "an http:// target to check the redirect")
    url = ep.http_url
    original_host = (urlsplit(url).hostname or "").lower()
    hops: list[tuple[str, int, str | None]] = []
    heads: list[str] = []
    for _ in range(5):
        try:
            answer = get_head(url, address=ctx.target.spec.get("address"), timeout=ctx.timeout)
        except ConnectError as exc:
            if hops:
                raise
            if "refused" in str(exc):
                return Outcome.passed(f"{url}: nothing listens on plain HTTP (connection "
                                      "refused), so nothing is served unencrypted")
            raise
        locations = answer.header("Location")
        location = locations[0] if locations else None
        hops.append((url, answer.status, location))
        heads.append(f"# GET {url}\n{answer.raw_head}\n")
        if not (300 <= answer.status < 400 and location):
            break
        nxt = urljoin(url, location)
        # Only plain-HTTP hops on the same host are followed: another host would need a
        # name lookup and is not the endpoint under test; its first hop is judged as is.
        if not nxt.lower().startswith("http://") \
                or (urlsplit(nxt).hostname or "").lower() != original_host:
            break
        url = nxt
    ev = ctx.note(f"plain-HTTP answers for {ep.http_url}", "\n".join(heads), kind="http")
    return judge.judge_redirect(ep.http_url, hops, [ev])


def ssh_algorithms(ctx: CheckContext) -> Outcome:
    import time

    from controlcheck.transports.base import TransportError
    from controlcheck.transports.ssh_kex import (
        RSA_HOST_KEY_ALGORITHMS,
        HostKeyInfo,
        NoSshServer,
        client_can_fetch,
        fetch_host_key,
        read_kexinit,
    )

    spec = ctx.target.spec
    local = spec.get("transport", "ssh") == "local"
    address = spec.get("address") or ("127.0.0.1" if local else ctx.target.name)
    port = int(spec.get("port", 22))
    profile = _profile(ctx)
    try:
        kex = read_kexinit(address, port, timeout=ctx.timeout)
    except NoSshServer:
        return Outcome.skipped(f"{ctx.target.name}: no SSH server on {address}:{port} "
                               "(connection refused)")
    offer = kex.offer()
    body = f"{kex.banner}\n" + "".join(f"{k}: {','.join(v)}\n" for k, v in kex.lists.items())
    ev = [ctx.note(f"SSH KEXINIT of {address}:{port}", body, kind="ssh-kexinit")]
    # The algorithm name does not show an RSA key's size: complete one key exchange per
    # RSA algorithm offered (no login) to see the key.  One deadline for all of them.
    keys: list[HostKeyInfo] = []
    unread: dict[str, str] = {}
    deadline = time.monotonic() + ctx.timeout
    for alg in offer["host_keys"]:
        if alg not in RSA_HOST_KEY_ALGORITHMS:
            continue
        if not client_can_fetch(alg):
            unread[alg] = "this client cannot negotiate it"
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            unread[alg] = f"no time left within {ctx.timeout:g} s"
            continue
        try:
            keys.append(fetch_host_key(address, port, alg, timeout=left))
        except TransportError as exc:
            unread[alg] = str(exc)
    if keys or unread:
        lines = [f"{k.algorithm}: {k.key_type} {k.bits} bits {k.sha256}\n" for k in keys]
        lines += [f"{a}: not read: {r}\n" for a, r in unread.items()]
        ev.append(ctx.note(f"SSH host keys of {address}:{port}", "".join(lines),
                           kind="ssh-hostkey", meta={"keys": [k.as_fact() for k in keys]}))
    return judge.judge_ssh(f"{ctx.target.name} ({address}:{port})", offer, profile.ssh,
                           profile.label, ev,
                           min_rsa_bits=int(ctx.params.get("min_rsa_host_key_bits", 2048)),
                           host_keys=keys, unread=unread)


_PROFILE = {"profile": {"type": "string", "default": DEFAULT_PROFILE,
                        "description": "TLS profile id/alias or path of a profile YAML"}}
CHECKS = (
    CheckSpec("tls.protocol-versions", TargetKind.ENDPOINT, protocol_versions,
              "SSLv3, TLS 1.0 or 1.1 accepted, or neither TLS 1.2 nor 1.3 offered", _PROFILE),
    CheckSpec("tls.cipher-suites", TargetKind.ENDPOINT, cipher_suites,
              "any suite outside the profile accepted", _PROFILE),
    CheckSpec("tls.certificate-trust", TargetKind.ENDPOINT, certificate_trust,
              "chain does not verify to the system store or the endpoint's ca_file", {}),
    CheckSpec("tls.certificate-hostname", TargetKind.ENDPOINT, certificate_hostname,
              "no SAN matches the name asked for", {}),
    CheckSpec("tls.certificate-expiry", TargetKind.ENDPOINT, certificate_expiry,
              "expired, not yet valid, or fewer than min_days remain",
              {"min_days": {"type": "integer", "minimum": 0, "default": 14}}),
    CheckSpec("tls.certificate-key", TargetKind.ENDPOINT, certificate_key,
              "RSA < 2048 bits, EC < 256 bits", _PROFILE),
    CheckSpec("tls.certificate-signature", TargetKind.ENDPOINT, certificate_signature,
              "signed with MD5 or SHA-1", _PROFILE),
    CheckSpec("http.hsts", TargetKind.ENDPOINT, hsts,
              "HTTPS response without Strict-Transport-Security max-age >= min_max_age",
              {"min_max_age": {"type": "integer", "minimum": 0, "default": 15552000}}),
    CheckSpec("http.https-redirect", TargetKind.ENDPOINT, https_redirect,
              "the plain-HTTP twin serves content, or redirects to plain http:// (hops are "
              "followed on the same host only, never resolving another host; a redirect to "
              "https:// passes wherever it points, the target named in the message)", {}),
    CheckSpec("ssh.algorithms", TargetKind.HOST, ssh_algorithms,
              "the SSH server offers a weak kex, cipher, MAC or host-key algorithm (DSA "
              "always), or an RSA host key smaller than min_rsa_host_key_bits",
              {**_PROFILE, "min_rsa_host_key_bits": {
                  "type": "integer", "minimum": 1024, "default": 2048,
                  "description": "smallest RSA host key accepted (the key is read in a "
                                 "key exchange, without logging in)"}}),
)
