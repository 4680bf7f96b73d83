"""TLS/HTTP endpoint checks and SSH algorithm check — scaffold until the TLS probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


_PROFILE = {"profile": {"type": "string", "default": "mozilla-intermediate"}}
CHECKS = (
    CheckSpec("tls.protocol-versions", TargetKind.ENDPOINT, _not_implemented,
              "SSLv3, TLS 1.0 or 1.1 accepted, or neither TLS 1.2 nor 1.3 offered", _PROFILE),
    CheckSpec("tls.cipher-suites", TargetKind.ENDPOINT, _not_implemented,
              "any suite outside the profile accepted", _PROFILE),
    CheckSpec("tls.certificate-trust", TargetKind.ENDPOINT, _not_implemented,
              "chain does not verify to the system store or the endpoint's ca_file", {}),
    CheckSpec("tls.certificate-hostname", TargetKind.ENDPOINT, _not_implemented,
              "no SAN matches the name asked for", {}),
    CheckSpec("tls.certificate-expiry", TargetKind.ENDPOINT, _not_implemented,
              "expired, not yet valid, or fewer than min_days remain",
              {"min_days": {"type": "integer", "minimum": 0, "default": 14}}),
    CheckSpec("tls.certificate-key", TargetKind.ENDPOINT, _not_implemented,
              "RSA < 2048 bits, EC < 256 bits", {}),
    CheckSpec("tls.certificate-signature", TargetKind.ENDPOINT, _not_implemented,
              "signed with MD5 or SHA-1", {}),
    CheckSpec("http.hsts", TargetKind.ENDPOINT, _not_implemented,
              "HTTPS response without Strict-Transport-Security max-age >= min_max_age",
              {"min_max_age": {"type": "integer", "minimum": 0, "default": 15552000}}),
    CheckSpec("http.https-redirect", TargetKind.ENDPOINT, _not_implemented,
              "the plain-HTTP twin serves content instead of redirecting to https", {}),
    CheckSpec("ssh.algorithms", TargetKind.HOST, _not_implemented,
              "the SSH server offers a weak kex, cipher, MAC or host-key algorithm", {}),
)
