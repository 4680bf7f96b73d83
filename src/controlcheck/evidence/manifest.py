"""``manifest.json``: every file of a bundle with its SHA-256 and size, plus run facts.

The manifest is the one thing that is signed; every other file is trusted only
through its hash here.  It is serialised canonically (sorted keys, fixed
indentation, files sorted by path) so the same run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from controlcheck import __version__
from controlcheck.engine import Run
from controlcheck.model import count_by_status
from controlcheck.reporters.json_report import run_metadata

MANIFEST = "manifest.json"
ENVELOPE = "manifest.dsse.json"
MANIFEST_VERSION = 1


def file_entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def build_manifest(run: Run, files: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool": {"name": "controlcheck", "version": __version__},
        "run": run_metadata(run),
        "summary": count_by_status(run.results),
        "files": [file_entry(p, files[p]) for p in sorted(files)],
    }


def dump_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse and shape-check; raises ``ValueError`` naming what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"manifest is not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise ValueError("manifest has no 'files' list")
    if doc.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"manifest_version {doc.get('manifest_version')!r} is not supported "
                         f"(this controlcheck reads version {MANIFEST_VERSION})")
    for i, f in enumerate(doc["files"]):
        if not (isinstance(f, dict) and isinstance(f.get("path"), str)
                and isinstance(f.get("sha256"), str) and isinstance(f.get("size"), int)):
            raise ValueError(f"manifest files[{i}] needs path, sha256 and size")
    return doc
