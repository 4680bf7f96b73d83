"""Ed25519 keys and DSSE envelopes over the bundle manifest.

The envelope follows the DSSE spec (secure-systems-lab/dsse, ``envelope.md``
and ``protocol.md``): the signature covers the pre-authentication encoding
``PAE(type, body)`` — never the bare payload — so a signature made for one
payload type cannot be replayed as another.  ``keyid`` is the SHA-256 of
the raw 32-byte public key, so an auditor can tell which key signed without
trusting anything inside the bundle.

Errors raised here are ``KeyError_`` (a key file that is missing or not an
Ed25519 key: a usage error) — signature problems are reported by
``verify_envelope`` as a list of messages, not raised.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PAYLOAD_TYPE = "application/vnd.controlcheck.manifest+json"
ENV_SIGNING_KEY = "CONTROLCHECK_SIGNING_KEY"


class KeyFileError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: lengths are ASCII decimal byte counts."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()


def generate_keypair(output: Path) -> tuple[Path, Path]:
    """Write ``output`` (PKCS#8 PEM, mode 0600) and ``output.pub`` (SubjectPublicKeyInfo PEM)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pub_path = output.with_name(output.name + ".pub")
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even briefly.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return output, pub_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{what} {path}: cannot read ({exc.strerror or exc})") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """PKCS#8/traditional PEM or an OpenSSH private key, unencrypted, Ed25519 only."""
    data = _read(path, "signing key")
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key: Any = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"signing key {path}: not a readable unencrypted private key "
                           f"({exc}); create one with 'controlcheck keygen --output NAME'") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"signing key {path}: {type(key).__name__} is not an Ed25519 key; "
                           f"create one with 'controlcheck keygen --output NAME'")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """SubjectPublicKeyInfo PEM or an OpenSSH ``ssh-ed25519 AAAA…`` line."""
    data = _read(path, "public key")
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key: Any = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, binascii.Error) as exc:
        hint = " (this looks like a private key: pass NAME.pub)" if b"PRIVATE" in data else ""
        raise KeyFileError(f"public key {path}: not a readable public key{hint} ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key {path}: {type(key).__name__} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)


def sign_envelope(payload: bytes, key: Ed25519PrivateKey,
                  payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The DSSE JSON envelope, serialised with sorted keys so it is byte-reproducible."""
    sig = key.sign(pae(payload_type, payload))  # Ed25519 is deterministic: same run, same bytes
    doc = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid(key.public_key()),
                        "sig": base64.b64encode(sig).decode("ascii")}],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")


def parse_envelope(data: bytes) -> Envelope:
    """Parse strictly; raises ``ValueError`` with what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("payloadType"), str) \
            or not isinstance(doc.get("payload"), str) \
            or not isinstance(doc.get("signatures"), list) or not doc["signatures"]:
        raise ValueError("not a DSSE envelope (needs payloadType, payload, signatures)")
    try:
        payload = base64.b64decode(doc["payload"], validate=True)
        sigs = tuple((str(s.get("keyid", "")), base64.b64decode(s["sig"], validate=True))
                     for s in doc["signatures"])
    except (binascii.Error, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed payload or signature encoding ({exc})") from exc
    return Envelope(doc["payloadType"], payload, sigs)


def verify_envelope(env: Envelope, key: Ed25519PublicKey) -> list[str]:
    """Problems with the envelope for ``key``; empty when a signature by ``key`` verifies."""
    if env.payload_type != PAYLOAD_TYPE:
        return [f"envelope payloadType is {env.payload_type!r}, expected {PAYLOAD_TYPE!r}"]
    want = keyid(key)
    message = pae(env.payload_type, env.payload)
    for _kid, sig in env.signatures:
        # keyid is only a hint (DSSE): try the key on every signature, trust only the math.
        try:
            key.verify(sig, message)
            return []
        except InvalidSignature:
            continue
    kids = ", ".join(k[:16] or "(none)" for k, _ in env.signatures)
    if want not in {k for k, _ in env.signatures}:
        return [f"signature: not signed by the given key (given key id {want[:16]}, "
                f"envelope names key id {kids})"]
    return [f"signature: does not verify with the given key (key id {want[:16]}): "
            f"the signature or the signed manifest was changed"]
