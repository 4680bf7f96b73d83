"""Write a finished run as a deterministic, optionally signed zip.

Layout::

    report.json            the JSON report (reporters.json_report)
    report.html            the self-contained HTML report, linking evidence/ files
    evidence/<id>.<ext>    one file per evidence item, byte for byte as recorded
    manifest.json          every file above with SHA-256 and size, run facts
    manifest.dsse.json     DSSE envelope (Ed25519) over manifest.json — if signed

Determinism: the zip is canonical (``zipcanon``: sorted, stored, fixed
timestamp and mode) and Ed25519 signatures are deterministic, so the same run
and key give the same bytes, and the verifier can rebuild the archive from
its contents to prove no byte outside them was touched.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlcheck.engine import Run
from controlcheck.evidence.manifest import ENVELOPE, MANIFEST, build_manifest, dump_manifest
from controlcheck.evidence.signing import keyid, sign_envelope
from controlcheck.evidence.zipcanon import canonical_zip
from controlcheck.model import Severity
from controlcheck.reporters import html, json_report
from controlcheck.reporters.evidence_paths import evidence_path

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    files: int
    signed_by: str | None  # key id, None when unsigned


def bundle_files(run: Run, fail_on: Severity = Severity.LOW) -> dict[str, bytes]:
    """Every file of the bundle except the manifest and its signature."""
    report = json_report.build_report(run, fail_on)
    files: dict[str, bytes] = {
        "report.json": json_report.dumps(report).encode("utf-8"),
        "report.html": html.render(run, fail_on, in_bundle=True).encode("utf-8"),
    }
    used = {e for r in run.results for e in r.evidence}
    for ev in run.evidence.all():
        if ev.id not in used:
            continue
        if not _SAFE_ID.match(ev.id):
            raise ValueError(f"evidence id {ev.id!r} is not a safe file name")
        files[evidence_path(ev)] = ev.content
    return files


def bundle_bytes_map(run: Run, fail_on: Severity = Severity.LOW,
                     signing_key: Ed25519PrivateKey | None = None) -> dict[str, bytes]:
    files = bundle_files(run, fail_on)
    manifest = dump_manifest(build_manifest(run, files))
    files[MANIFEST] = manifest
    if signing_key is not None:
        files[ENVELOPE] = sign_envelope(manifest, signing_key)
    return files


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    """Write atomically: a crash never leaves a half bundle under the final name."""
    data = canonical_zip(files)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(run: Run, path: Path, fail_on: Severity = Severity.LOW,
                 signing_key: Ed25519PrivateKey | None = None) -> BundleInfo:
    files = bundle_bytes_map(run, fail_on, signing_key)
    write_zip(path, files)
    return BundleInfo(path, len(files),
                      keyid(signing_key.public_key()) if signing_key is not None else None)
