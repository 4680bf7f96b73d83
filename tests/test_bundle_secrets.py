"""Secrets never enter a bundle or a report: plant them, run for real, scan every byte."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from bundle_fixtures import KEY_SECRET, SECRET_ENV, SECRET_VALUE, real_run, write_inventory
from cryptography.hazmat.primitives import serialization

from controlcheck.cli import main
from controlcheck.evidence.bundle import write_bundle
from controlcheck.evidence.signing import generate_keypair, load_private_key
from controlcheck.reporters import html, json_report, oscal


def _forbidden(signing_key: Path) -> list[bytes]:
    key = load_private_key(signing_key)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    pem_body = b"".join(signing_key.read_bytes().splitlines()[1:-1])
    return [SECRET_VALUE.encode(), KEY_SECRET.encode(), raw, raw.hex().encode(),
            base64.b64encode(raw), pem_body,
            # the planted secret in the encodings a report could use
            base64.b64encode(SECRET_VALUE.encode()), SECRET_VALUE.encode("utf-16-le")]


def _scan(name: str, data: bytes, forbidden: list[bytes]) -> None:
    for secret in forbidden:
        assert secret not in data, f"{name} contains a planted secret"


def _scan_bundle(path: Path, forbidden: list[bytes]) -> int:
    data = path.read_bytes()
    _scan(str(path), data, forbidden)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            _scan(f"{path}:{info.filename}", zf.read(info), forbidden)
            _scan(f"{path}:{info.filename} (name)", info.filename.encode(), forbidden)
        return len(zf.infolist())


def test_engine_run_redacts_and_bundle_holds_no_secret(tmp_path: Path) -> None:
    run = real_run(tmp_path)
    priv, _pub = generate_keypair(tmp_path / "signer")
    bundle = tmp_path / "b.zip"
    write_bundle(run, bundle, signing_key=load_private_key(priv))
    forbidden = _forbidden(priv)
    assert _scan_bundle(bundle, forbidden) > 5
    for name, text in (("json", json_report.render(run)), ("html", html.render(run)),
                       ("oscal", oscal.render(run))):
        _scan(name, text.encode(), forbidden)
    # The probe really saw the secret: the store replaced it, the row still exists.
    printenv = [e for e in run.evidence.all() if "printenv" in e.title]
    assert printenv and b"[REDACTED]" in printenv[0].content


@pytest.mark.skipif(os.geteuid() != 0, reason="not root")
def test_cli_run_of_the_packaged_catalogue_leaks_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real catalogue and probes, a real restic repository opened with the password."""
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    inventory = write_inventory(tmp_path)
    subprocess.run(["restic", "init", "--repo", str(tmp_path / "repo")], check=True,
                   capture_output=True, env={**os.environ, "RESTIC_PASSWORD": SECRET_VALUE},
                   timeout=60)
    priv, pub = generate_keypair(tmp_path / "signer")
    bundle = tmp_path / "evidence.zip"
    # One run covers all three renderings: the bundle holds report.json and report.html.
    report = tmp_path / "report.oscal.json"
    # The families that touch secrets (repository passwords, shadow, sshd); PATCH would
    # add 17 s of apt and nothing secret.
    code = main(["run", "-i", str(inventory), "--format", "oscal", "-o", str(report),
                 "--bundle", str(bundle), "--signing-key", str(priv), "-q", "--timeout", "20",
                 "--only", "BACKUP", "--only", "ACCESS", "--only", "AWARE"])
    assert code in (0, 1, 3)
    _scan(str(report), report.read_bytes(), _forbidden(priv))
    assert _scan_bundle(bundle, _forbidden(priv)) > 5
    assert main(["bundle", "verify", str(bundle), "--key", str(pub)]) == 0
