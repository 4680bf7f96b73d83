"""Test lab for controlcheck: real hosts (namespaces + overlays + sshd) and nginx TLS
endpoints on one machine, usable from pytest and from bench scripts. Needs root."""

from .hosts import (
    AUDITOR,
    OVERLAY_DIRS,
    RUN_DIR,
    Host,
    Lab,
    LabCommandError,
    LabError,
    Zone,
    cleanup_stale,
    sshd_lab_lines,
)
from .nginx import NginxError, NginxLab, NginxServer

__all__ = [
    "AUDITOR",
    "OVERLAY_DIRS",
    "RUN_DIR",
    "Host",
    "Lab",
    "LabCommandError",
    "LabError",
    "NginxError",
    "NginxLab",
    "NginxServer",
    "Zone",
    "cleanup_stale",
    "sshd_lab_lines",
]
