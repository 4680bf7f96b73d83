"""The registry, the catalogue and DESIGN.md's stable check ids agree."""

from __future__ import annotations

from controlcheck.catalogue import FRAMEWORKS, load_catalogue
from controlcheck.probes import registry

# DESIGN.md, "CI gate" and "Check ids beyond TLS": these names are a contract.
STABLE_IDS = {
    "tls.protocol-versions", "tls.cipher-suites", "tls.certificate-trust",
    "tls.certificate-hostname", "tls.certificate-expiry", "tls.certificate-key",
    "tls.certificate-signature", "http.hsts", "http.https-redirect",
    "host.patch.security-updates", "host.patch.auto-updates", "host.patch.reboot-required",
    "host.patch.os-supported", "host.firewall.default-deny", "host.firewall.listening-allowed",
    "net.firewall.reachability", "host.access.ssh-config", "host.access.admins-approved",
    "host.access.uid0", "net.access.management-exposure", "app.access.anonymous-refused",
    "app.access.tenant-isolation", "ssh.algorithms", "host.av.engine",
    "host.av.signatures-fresh", "host.av.detects-eicar", "device.av.coverage",
    "host.backup.recent", "host.backup.copies", "host.backup.integrity",
    "host.backup.restore-test", "org.aware.training", "org.aware.confidentiality",
    "org.phys.access-review",
}

FAMILIES = {"AWARE", "PHYS", "PATCH", "FW", "ACCESS", "TLS", "AV", "BACKUP"}


def test_every_stable_check_id_is_registered() -> None:
    assert STABLE_IDS <= set(registry())


def test_every_registered_check_is_used_by_the_packaged_catalogue() -> None:
    used = {ch.id for c in load_catalogue().controls for ch in c.checks}
    assert set(registry()) == used


def test_every_family_is_covered_with_real_framework_references() -> None:
    catalogue = load_catalogue()
    assert {c.family for c in catalogue.controls} == FAMILIES
    for control in catalogue.controls:
        assert set(control.frameworks) == set(FRAMEWORKS)
        for framework, refs in control.frameworks.items():
            assert refs, f"{control.id} has no {framework} reference"
        assert control.promise_nl and control.promise_en


def test_dutch_promises_are_quoted_from_the_statement() -> None:
    from pathlib import Path

    import pytest

    seed = (Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_02bc568b999ea78c.txt")
    if not seed.exists():
        pytest.skip(f"the privacy statement is not beside the repository ({seed})")
    seed_text = " ".join(seed.read_text(encoding="utf-8").split())
    for control in load_catalogue().controls:
        quote = " ".join(control.promise_nl.split())
        assert quote in seed_text, f"{control.id}: promise not found verbatim in the statement"


def test_check_params_have_defaults_so_a_catalogue_may_omit_them() -> None:
    for spec in registry().values():
        for name, schema in spec.params.items():
            assert "default" in schema, f"{spec.id}.{name} has no default"
