"""Pure judges: observation + profile/params → Outcome.  No I/O here.

Every judge names the endpoint, says what is wrong and what to do; every threshold
comes from the profile or the check's parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from urllib.parse import urljoin, urlsplit

from controlcheck.model import Outcome
from controlcheck.probes.tls.certs import CertInfo, name_matches
from controlcheck.probes.tls.profiles import Profile
from controlcheck.transports.ssh_kex import RSA_HOST_KEY_ALGORITHMS, HostKeyInfo

VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def judge_protocols(target: str, accepted: Mapping[str, bool | None], profile: Profile,
                    evidence: Sequence[str] = (), undecided: str | None = None) -> Outcome:
    """``accepted`` maps a version to True/False, or None when it was not probed or the
    probe could not decide (``undecided`` says why)."""
    yes = [v for v in VERSIONS if accepted.get(v)]
    facts = {"versions_accepted": yes, "tls13": bool(accepted.get("TLSv1.3")),
             "profile": profile.id}
    allowed = set(profile.protocols) | set(profile.protocols_phase_out)
    bad = [v for v in yes if v not in allowed]
    unknown_bad = [v for v in VERSIONS if v not in allowed and accepted.get(v) is None]
    why = f" ({undecided})" if undecided else ""
    if bad:
        also = (f"; could not tell about {', '.join(unknown_bad)}{why}" if unknown_bad else "")
        return Outcome.failed(
            f"{target} accepts {', '.join(bad)}, which {profile.label} does not allow; disable "
            f"them (allowed: {', '.join(v for v in VERSIONS if v in profile.protocols)}){also}",
            evidence, **facts)
    if unknown_bad:
        # Not seeing a forbidden version is not proof it is refused: never pass on it.
        return Outcome.error(f"{target}: could not tell whether {', '.join(unknown_bad)} "
                             f"is accepted{why}", evidence, **facts)
    good = [v for v in yes if v in profile.protocols]
    if not good:
        unknown = [v for v in profile.protocols if accepted.get(v) is None]
        if unknown:
            return Outcome.error(f"{target}: could not tell whether {', '.join(unknown)} "
                                 "is accepted", evidence, **facts)
        return Outcome.failed(
            f"{target} accepts none of the versions {profile.label} requires "
            f"({', '.join(sorted(profile.protocols))}); enable TLS 1.2 and/or 1.3",
            evidence, **facts)
    phase = [v for v in yes if v in profile.protocols_phase_out]
    note = f"; phase-out: {', '.join(phase)}" if phase else ""
    return Outcome.passed(f"{target} accepts only {', '.join(yes)}{note}", evidence, **facts)


def judge_suites(target: str, accepted_outside: Sequence[str], accepted_phase_out: Sequence[str],
                 profile: Profile, *, capped: bool, evidence: Sequence[str] = (),
                 **facts: object) -> Outcome:
    facts = {**facts, "profile": profile.id, "suites_outside_profile": list(accepted_outside),
             "suites_phase_out": list(accepted_phase_out)}
    more = " (and possibly more: the search stopped at its limit)" if capped else ""
    if accepted_outside:
        return Outcome.failed(
            f"{target} accepts cipher suites outside {profile.label}: "
            f"{', '.join(accepted_outside)}{more}; remove them from the server's cipher list",
            evidence, **facts)
    note = f"; phase-out suites accepted: {', '.join(accepted_phase_out)}" \
        if accepted_phase_out else ""
    return Outcome.passed(f"{target} accepts no cipher suite outside {profile.label}{note}",
                          evidence, **facts)


def judge_trust(target: str, verified: bool, reason: str | None, anchor: str,
                evidence: Sequence[str] = ()) -> Outcome:
    if verified:
        return Outcome.passed(f"{target}: the served chain verifies to {anchor}", evidence)
    return Outcome.failed(
        f"{target}: the certificate chain does not verify to {anchor}: {reason}; serve the "
        "full chain (leaf + intermediates) issued by a trusted CA", evidence,
        verify_error=reason)


def judge_hostname(target: str, name: str, leaf: CertInfo,
                   evidence: Sequence[str] = ()) -> Outcome:
    names = list(leaf.dns_names) + list(leaf.ip_names)
    facts = {"name": name, "san": names}
    if name_matches(name, leaf):
        return Outcome.passed(f"{target}: the certificate covers {name}", evidence, **facts)
    shown = ", ".join(names[:8]) or "no subjectAltName"
    return Outcome.failed(f"{target}: the certificate does not cover {name} (SANs: {shown}); "
                          f"issue one whose subjectAltName includes {name}", evidence, **facts)


def judge_expiry(target: str, certs: Sequence[CertInfo], now: datetime, min_days: int,
                 evidence: Sequence[str] = ()) -> Outcome:
    leaf = certs[0]
    facts = {"not_before": leaf.not_before.isoformat(), "not_after": leaf.not_after.isoformat(),
             "days_left": (leaf.not_after - now).days, "lifetime_days": leaf.lifetime_days}
    for i, c in enumerate(certs):
        which = "certificate" if i == 0 else f"chain certificate {c.subject}"
        if now < c.not_before:
            return Outcome.failed(f"{target}: the {which} is not valid before "
                                  f"{c.not_before:%Y-%m-%d %H:%M} UTC; fix its dates or the "
                                  "server clock", evidence, **facts)
        if now > c.not_after:
            return Outcome.failed(f"{target}: the {which} expired on {c.not_after:%Y-%m-%d}; "
                                  "renew it", evidence, **facts)
        left = (c.not_after - now).total_seconds() / 86400
        if left < min_days:
            return Outcome.failed(f"{target}: the {which} expires on {c.not_after:%Y-%m-%d} "
                                  f"({left:.1f} days left, at least {min_days} required); "
                                  "renew it now", evidence, **facts)
    return Outcome.passed(f"{target}: the certificate is valid until {leaf.not_after:%Y-%m-%d} "
                          f"({facts['days_left']} days left)", evidence, **facts)


def _served_non_anchor(certs: Sequence[CertInfo]) -> list[CertInfo]:
    """The leaf, and served intermediates (a served self-signed root proves nothing)."""
    return [c for i, c in enumerate(certs) if i == 0 or not c.self_signed]


def judge_key(target: str, certs: Sequence[CertInfo], profile: Profile,
              evidence: Sequence[str] = ()) -> Outcome:
    leaf = certs[0]
    facts = {"key": f"{leaf.key_type} {leaf.key_bits}"}
    notes = []
    for i, c in enumerate(_served_non_anchor(certs)):
        which = "certificate" if i == 0 else f"chain certificate {c.subject}"
        weak = ((c.key_type in ("RSA", "DSA") and c.key_bits < profile.rsa_min_bits)
                or (c.key_type.startswith("EC") and c.key_bits < profile.ec_min_bits))
        if weak:
            need = profile.ec_min_bits if c.key_type.startswith("EC") else profile.rsa_min_bits
            return Outcome.failed(f"{target}: the {which} has a {c.key_type} {c.key_bits}-bit "
                                  f"key, below the {need} bits {profile.label} requires; "
                                  "reissue it with a stronger key", evidence, **facts)
        if c.key_type == "RSA" and c.key_bits < profile.rsa_phase_out_below:
            notes.append(f"{which} RSA {c.key_bits} is phase-out")
    note = f" ({'; '.join(notes)})" if notes else ""
    return Outcome.passed(f"{target}: the certificate key is {leaf.key_type} {leaf.key_bits} "
                          f"bits{note}", evidence, **facts)


def judge_signature(target: str, certs: Sequence[CertInfo], profile: Profile,
                    evidence: Sequence[str] = ()) -> Outcome:
    for i, c in enumerate(_served_non_anchor(certs)):
        if c.signature_hash and c.signature_hash.lower() in profile.forbidden_hashes:
            which = "certificate" if i == 0 else f"chain certificate {c.subject}"
            return Outcome.failed(f"{target}: the {which} is signed with "
                                  f"{c.signature_hash.upper()}; reissue it with SHA-256 or "
                                  "better", evidence, signature_hash=c.signature_hash)
    return Outcome.passed(f"{target}: the certificate is signed with "
                          f"{(certs[0].signature_hash or 'an EdDSA scheme').upper()}", evidence,
                          signature_hash=certs[0].signature_hash)


_MAX_AGE = re.compile(r'\s*max-age\s*=\s*(?:"(\d+)"|(\d+))\s*', re.IGNORECASE)


def parse_hsts(value: str) -> int | None:
    """max-age of one STS header, or None when a browser would ignore the header.

    RFC 6797 §6.1: every directive appears at most once, and a header that breaks the
    syntax is ignored (§8.1) — so ``max-age=31536000; max-age=0`` gives no HSTS at all.
    """
    directives = value.split(";")
    named = [n for n in (d.split("=", 1)[0].strip().lower() for d in directives) if n]
    if len(named) != len(set(named)):
        return None
    for d in directives:
        m = _MAX_AGE.fullmatch(d)
        if m:
            return int(m.group(1) or m.group(2))
    return None


def judge_hsts(target: str, url: str, status: int, hsts_values: Sequence[str], min_max_age: int,
               evidence: Sequence[str] = ()) -> Outcome:
    if not hsts_values:
        return Outcome.failed(f"{url} (HTTP {status}) sends no Strict-Transport-Security "
                              f"header; add one with max-age of at least {min_max_age}",
                              evidence, http_status=status)
    # RFC 6797 §8.1: only the first header is processed.
    max_age = parse_hsts(hsts_values[0])
    facts = {"http_status": status, "hsts": hsts_values[0], "max_age": max_age}
    if max_age is None:
        return Outcome.failed(f"{url}: Strict-Transport-Security {hsts_values[0]!r} has no valid "
                              "max-age; fix the header", evidence, **facts)
    if max_age < min_max_age:
        return Outcome.failed(f"{url}: Strict-Transport-Security max-age={max_age} is below "
                              f"{min_max_age} seconds; raise it", evidence, **facts)
    return Outcome.passed(f"{url} sends Strict-Transport-Security max-age={max_age}", evidence,
                          **facts)


def judge_redirect(url: str, hops: Sequence[tuple[str, int, str | None]],
                   evidence: Sequence[str] = ()) -> Outcome:
    """``hops``: (url, status, Location) for each plain-HTTP answer, in order.

    The probe follows plain-HTTP hops on ``url``'s own host only, so the last hop is
    either the final answer or the first redirect that leaves the host (or is https).
    """
    facts = {"hops": [{"url": u, "status": s, "location": loc} for u, s, loc in hops]}
    last_url, status, location = hops[-1]
    origin = (urlsplit(url).hostname or "").lower()
    target = urlsplit(urljoin(last_url, location)) if location else None
    other = target is not None and (target.hostname or "").lower() != origin
    where = f" (another host: {target.hostname})" if other and target else ""
    if 300 <= status < 400 and target is not None and target.scheme.lower() == "https":
        return Outcome.passed(f"{url} redirects ({status}) to {location}{where}", evidence,
                              **facts)
    if 300 <= status < 400 and location:
        return Outcome.failed(f"{url}: redirects stay on plain HTTP ({last_url} → {location}"
                              f"{where}{', not followed' if other else ''}); redirect to "
                              "https://", evidence, **facts)
    return Outcome.failed(f"{last_url} answers {status} over plain HTTP instead of redirecting "
                          "to https://; add a 301 redirect to the HTTPS site", evidence, **facts)


#: An algorithm whose key we cannot fetch ourselves carries the same key as its sibling:
#: RFC 8332 §3 — rsa-sha2-256/512 use the very "ssh-rsa" key that ssh-rsa signs with.
SAME_RSA_KEY = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ssh-rsa-cert-v01@openssh.com": ("rsa-sha2-512-cert-v01@openssh.com",
                                     "rsa-sha2-256-cert-v01@openssh.com"),
}
#: DSA fails whatever the profile says: SSH's ssh-dss is fixed at 1024 bits with SHA-1
#: (RFC 4253 §6.6, FIPS 186-2) and OpenSSH removed it; no parameter can make it adequate.
DSA_HOST_KEY_ALGORITHMS = ("ssh-dss", "ssh-dss-cert-v01@openssh.com")


def judge_ssh(target: str, offer: Mapping[str, Sequence[str]], weak: Mapping[str, Sequence[str]],
              profile_label: str, evidence: Sequence[str] = (), *,
              min_rsa_bits: int, host_keys: Sequence[HostKeyInfo] = (),
              unread: Mapping[str, str] | None = None) -> Outcome:
    """``offer``: kex/host_keys/ciphers/macs lists from the server's KEXINIT.

    ``host_keys``: the keys read in a key exchange per host-key algorithm; ``unread``:
    algorithm → why its key could not be read.  Every RSA algorithm offered must have its
    key seen (itself or its RFC 8332 sibling): a key nobody looked at never passes.
    """
    unread = unread or {}
    kinds = {"kex": "weak_kex", "host_keys": "weak_host_keys", "ciphers": "weak_ciphers",
             "macs": "weak_macs"}
    found: dict[str, list[str]] = {}
    for kind, key in kinds.items():
        patterns = weak.get(key, ())
        bad = [a for a in offer.get(kind, ()) if any(fnmatchcase(a, p) for p in patterns)]
        if kind == "host_keys":
            bad += [a for a in offer.get(kind, ()) if a in DSA_HOST_KEY_ALGORITHMS
                    and a not in bad]
        if bad:
            found[kind] = bad
    by_alg = {k.algorithm: k for k in host_keys}
    small: dict[tuple[int, str], list[str]] = {}  # (bits, fingerprint) -> algorithms
    unseen: dict[str, str] = {}
    for alg in offer.get("host_keys", ()):
        if alg not in RSA_HOST_KEY_ALGORITHMS:
            continue  # ECDSA / Ed25519 sizes are fixed by the algorithm name
        seen = by_alg.get(alg) or next((by_alg[s] for s in SAME_RSA_KEY.get(alg, ())
                                        if s in by_alg), None)
        if seen is None:
            unseen[alg] = unread.get(alg, "its key was not read")
        elif seen.bits < min_rsa_bits:
            small.setdefault((seen.bits, seen.sha256), []).append(alg)
    facts: dict[str, object] = {
        "offered": {k: list(v) for k, v in offer.items()}, "weak": found,
        "host_keys_read": [k.as_fact() for k in host_keys],
        "min_rsa_host_key_bits": min_rsa_bits,
        "small_rsa_host_keys": [alg for algs in small.values() for alg in algs]}
    if unseen:
        facts["host_keys_unread"] = dict(unseen)
    problems: list[str] = []
    if found:
        listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in found.items())
        problems.append(f"the SSH server offers weak algorithms ({listing}); remove them in "
                        "sshd_config (KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms) per "
                        f"{profile_label}")
    for (bits, fp), algs in small.items():
        problems.append(f"its RSA host key ({fp}, offered as {', '.join(algs)}) has {bits} "
                        f"bits, fewer than the {min_rsa_bits} required "
                        "(min_rsa_host_key_bits); replace it (ssh-keygen -t rsa -b 3072 "
                        "-f /etc/ssh/ssh_host_rsa_key) or drop the RSA HostKey and keep Ed25519")
    not_seen = "; ".join(f"{a}: {r}" for a, r in unseen.items())
    if problems:
        extra = f" (RSA host key not checked for {not_seen})" if unseen else ""
        return Outcome.failed(f"{target}: " + "; ".join(problems) + extra, evidence, **facts)
    if unseen:
        return Outcome.error(f"{target}: cannot tell the RSA host key size, so the check cannot "
                             f"pass ({not_seen}); let the server also offer aes*-ctr/gcm and "
                             "rsa-sha2-256/512 to this scanner, or check the key by hand: "
                             "ssh-keyscan -t rsa HOST | ssh-keygen -lf -", evidence, **facts)
    sizes = sorted({f"{k.bits} bits" for k in host_keys if k.key_type == "ssh-rsa"})
    keys_note = f"; its RSA host key has {', '.join(sizes)}" if sizes else ""
    return Outcome.passed(f"{target}: the SSH server offers no weak kex, cipher, MAC or host-key "
                          f"algorithm{keys_note}", evidence, **facts)
