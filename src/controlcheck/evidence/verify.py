"""Verify a bundle offline: signature, then every file's hash and size, then the zip itself.

Trust flows from the key the auditor holds: the DSSE signature covers the
manifest, the manifest covers every file.  Hashes are checked against the
*signed* payload, so rewriting ``manifest.json`` in the zip is itself a
finding.  The zip container is checked too: duplicate names, path traversal
(``../x``, absolute paths, backslashes), symlinks and encrypted entries are
rejected, and the archive must be byte-identical to the canonical encoding
of its own files (``zipcanon``), so a comment, stray bytes or any changed
header field is caught — an extractor could otherwise show an auditor
something the manifest never covered.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlcheck.evidence.manifest import ENVELOPE, MANIFEST, parse_manifest
from controlcheck.evidence.signing import keyid, parse_envelope, verify_envelope
from controlcheck.evidence.zipcanon import canonical_zip, first_difference

# What zipfile raises on a hostile or damaged archive (it has no single base class).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
               OSError, ValueError, EOFError, struct.error, RuntimeError)


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: bool = False
    signer: str | None = None  # key id whose signature verified
    manifest: dict[str, Any] | None = None
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def unsafe_name(name: str) -> str | None:
    """Why a member name could escape or confuse an extraction; None when safe."""
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if name.endswith("/"):
        return "directory entry"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "path traversal ('..', '.' or empty component)"
    return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read at most ``limit`` + 1 bytes so a zip bomb cannot exhaust memory."""
    chunks: list[bytes] = []
    total = 0
    with zf.open(info) as fh:
        while total <= limit:
            chunk = fh.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    return b"".join(chunks)


def _members(zf: zipfile.ZipFile, out: Verification) -> dict[str, zipfile.ZipInfo]:
    counts = Counter(i.filename for i in zf.infolist())
    for name, n in sorted(counts.items()):
        if n > 1:
            out.problems.append(f"zip: duplicate entry {name!r} ({n} times): "
                                f"extractors disagree on which one wins")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        why = unsafe_name(info.filename)
        if why:
            out.problems.append(f"zip: unsafe entry name {info.filename!r}: {why}")
            continue
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            out.problems.append(f"zip: entry {info.filename!r} is a symbolic link")
            continue
        if info.flag_bits & 0x1:
            out.problems.append(f"zip: entry {info.filename!r} is encrypted")
            continue
        if counts[info.filename] == 1:
            members[info.filename] = info
    return members


def _signature(envelope_bytes: bytes | None, manifest_bytes: bytes | None,
               key: Ed25519PublicKey | None, allow_unsigned: bool,
               out: Verification) -> bytes | None:
    """Check the envelope; return the manifest bytes that hashes are checked against."""
    if envelope_bytes is None:
        msg = f"unsigned: the bundle has no {ENVELOPE}"
        if allow_unsigned:
            out.notes.append(msg + "; hashes are checked against an unsigned manifest that "
                                   "anyone could have rewritten")
        else:
            out.problems.append(msg + " (pass --allow-unsigned to check hashes only)")
        return manifest_bytes
    out.signed = True
    try:
        env = parse_envelope(envelope_bytes)
    except ValueError as exc:
        out.problems.append(f"changed: {ENVELOPE} (unreadable envelope: {exc})")
        return manifest_bytes
    if key is None:
        msg = f"signature not checked: no public key given ({ENVELOPE} is present)"
        (out.notes if allow_unsigned else out.problems).append(
            msg if allow_unsigned else msg + "; pass --key NAME.pub")
    else:
        sig_problems = verify_envelope(env, key)
        out.problems.extend(sig_problems)
        if not sig_problems:
            out.signer = keyid(key)
    if manifest_bytes is None:
        out.problems.append(f"removed: {MANIFEST} (missing from the zip; the signed copy in "
                            f"{ENVELOPE} is used to check the files)")
    elif manifest_bytes != env.payload:
        out.problems.append(f"changed: {MANIFEST} (differs from the signed manifest in "
                            f"{ENVELOPE})")
    return env.payload


def _read_all(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limit: int,
              out: Verification) -> tuple[dict[str, bytes], set[str]]:
    contents: dict[str, bytes] = {}
    unreadable: set[str] = set()
    for name, info in members.items():
        try:
            data = _read_member(zf, info, limit)
        except _ZIP_ERRORS as exc:
            out.problems.append(f"changed: {name} (cannot be read: {exc})")
            unreadable.add(name)
            continue
        if len(data) > limit:
            out.problems.append(f"changed: {name} (expands beyond the size of the archive)")
            unreadable.add(name)
            continue
        contents[name] = data
    return contents, unreadable


def _canonical(raw: bytes, contents: dict[str, bytes], out: Verification) -> None:
    """The archive must be exactly the canonical encoding of the files it holds."""
    try:
        canon = canonical_zip(contents)
    except (ValueError, UnicodeEncodeError) as exc:
        out.problems.append(f"zip: cannot be a bundle ({exc})")
        return
    if canon != raw:
        at = first_difference(canon, raw)
        out.problems.append(
            f"zip: differs from the canonical layout of its own files at byte {at} "
            f"(archive {len(raw)} bytes, canonical {len(canon)}): a header, comment, "
            f"compression or stray bytes were changed")


def verify_bundle(path: Path, key: Ed25519PublicKey | None,
                  allow_unsigned: bool = False) -> Verification:
    """Raises ``OSError`` only when ``path`` cannot be read (a usage error)."""
    out = Verification()
    raw = path.read_bytes()
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except _ZIP_ERRORS as exc:
        out.problems.append(f"{path}: not a readable zip archive ({exc})")
        return out
    with zf:
        members = _members(zf, out)
        contents, unreadable = _read_all(zf, members, len(raw), out)
    if not out.problems:  # dup/unsafe/unreadable entries are already named precisely
        _canonical(raw, contents, out)
    trusted = _signature(contents.get(ENVELOPE), contents.get(MANIFEST), key,
                         allow_unsigned, out)
    if trusted is None:
        if MANIFEST not in unreadable:
            out.problems.append(f"removed: {MANIFEST} (the bundle has no manifest)")
        return out
    try:
        manifest = parse_manifest(trusted)
    except ValueError as exc:
        out.problems.append(f"changed: {MANIFEST} ({exc})")
        return out
    out.manifest = manifest
    _check_files(contents, unreadable, set(members), manifest, out)
    return out


def _check_files(contents: dict[str, bytes], unreadable: set[str], members: set[str],
                 manifest: dict[str, Any], out: Verification) -> None:
    listed: set[str] = set()
    for entry in manifest["files"]:
        name, want_hash, want_size = entry["path"], entry["sha256"], entry["size"]
        listed.add(name)
        if unsafe_name(name) or name in (MANIFEST, ENVELOPE):
            out.problems.append(f"manifest: lists an unsafe or reserved path {name!r}")
            continue
        if name in unreadable:
            continue  # already reported
        data = contents.get(name)
        if data is None:
            out.problems.append(f"removed: {name} (listed in the manifest, missing from the zip)")
            continue
        got_hash = hashlib.sha256(data).hexdigest()
        if len(data) != want_size:
            out.problems.append(f"changed: {name} (size {len(data)} bytes, manifest says "
                                f"{want_size})")
        elif got_hash != want_hash:
            out.problems.append(f"changed: {name} (sha256 {got_hash[:16]}…, manifest says "
                                f"{want_hash[:16]}…)")
        else:
            out.files_checked += 1
    for name in sorted(members):
        if name not in listed and name not in (MANIFEST, ENVELOPE):
            out.problems.append(f"added: {name} (in the zip, not in the manifest)")
