"""Certificate facts from DER bytes (pure; ``cryptography`` only parses, never verifies)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key_type: str  # RSA, EC, DSA, Ed25519, Ed448
    key_bits: int
    signature_hash: str | None  # sha256, sha1, md5, None (Ed25519)
    dns_names: tuple[str, ...]
    ip_names: tuple[str, ...]
    self_signed: bool
    sha256: str
    pem: str
    scts: int  # embedded precertificate SCTs

    @property
    def lifetime_days(self) -> int:
        return (self.not_after - self.not_before).days


def parse_cert(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        ktype, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        ktype, bits = f"EC {key.curve.name}", key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        ktype, bits = "DSA", key.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        ktype, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        ktype, bits = "Ed448", 456
    else:
        ktype, bits = type(key).__name__, 0
    try:
        algo = cert.signature_hash_algorithm
        sig_hash = algo.name if algo is not None else None
    except Exception:  # unsupported algorithm: name it from the OID instead
        sig_hash = cert.signature_algorithm_oid._name.lower()
    dns: list[str] = []
    ips: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    scts = 0
    try:
        scts = len(cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps).value)
    except (x509.ExtensionNotFound, Exception):
        scts = 0
    return CertInfo(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        key_type=ktype, key_bits=bits, signature_hash=sig_hash, dns_names=tuple(dns),
        ip_names=tuple(ips), self_signed=cert.issuer == cert.subject,
        sha256=hashlib.sha256(der).hexdigest(),
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(), scts=scts)


def name_matches(name: str, cert: CertInfo) -> bool:
    """RFC 6125: DNS-ID match, wildcard only as the whole left-most label; IPs match iPAddress.

    The subject CN is ignored (as browsers do since 2017).
    """
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        return any(ipaddress.ip_address(i) == ip for i in cert.ip_names)
    wanted = name.lower().rstrip(".")
    for pattern in cert.dns_names:
        pattern = pattern.rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            head, rest = wanted.split(".", 1)
            if head and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def chain_pem_evidence(certs: list[CertInfo]) -> str:
    """The served chain as PEM, each preceded by its subject, issuer and SHA-256."""
    parts = []
    for i, c in enumerate(certs):
        parts.append(f"# [{i}] subject: {c.subject}\n# issuer: {c.issuer}\n"
                     f"# valid: {c.not_before.isoformat()} .. {c.not_after.isoformat()}\n"
                     f"# key: {c.key_type} {c.key_bits} bits; signature hash: {c.signature_hash}\n"
                     f"# SHA-256 fingerprint: {c.sha256}\n{c.pem}")
    return "\n".join(parts)
