"""Where each evidence item lives inside a bundle: ``evidence/<id>.<ext>``.

Shared by the bundle writer and the HTML/OSCAL reporters so a link in the
report and the file in the zip can never disagree.
"""

from __future__ import annotations

from controlcheck.model import Evidence

_EXT_BY_MEDIA = {
    "text/plain": "txt",
    "application/json": "json",
    "application/x-pem-file": "pem",
    "application/pem-certificate-chain": "pem",
    "text/csv": "csv",
    "application/yaml": "yaml",
    "text/yaml": "yaml",
    "application/pdf": "pdf",
}


def evidence_ext(ev: Evidence) -> str:
    media = ev.media_type.split(";", 1)[0].strip().lower()
    if media in _EXT_BY_MEDIA:
        return _EXT_BY_MEDIA[media]
    if ev.kind == "certificate-chain":
        return "pem"
    # Any other text (HTTP headers, HTML bodies) is stored as .txt so opening it
    # from the bundle never renders or runs it.
    return "txt" if media.startswith("text/") else "bin"


def evidence_path(ev: Evidence) -> str:
    return f"evidence/{ev.id}.{evidence_ext(ev)}"


def is_text(ev: Evidence) -> bool:
    if evidence_ext(ev) in ("bin", "pdf"):
        return False
    try:
        ev.content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
