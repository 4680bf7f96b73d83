"""Bundle round trip: write a real run, verify it, tamper every way, see it detected."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from bundle_fixtures import real_run

from controlcheck.cli import main
from controlcheck.evidence.bundle import bundle_bytes_map, write_bundle
from controlcheck.evidence.manifest import ENVELOPE, MANIFEST, dump_manifest, parse_manifest
from controlcheck.evidence.signing import (
    generate_keypair,
    keyid,
    load_private_key,
    load_public_key,
    pae,
    sign_envelope,
)
from controlcheck.evidence.verify import verify_bundle
from controlcheck.evidence.zipcanon import canonical_zip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bundle")
    run = real_run(tmp)
    priv, pub = generate_keypair(tmp / "signer")
    other_priv, other_pub = generate_keypair(tmp / "other")
    bundle = tmp / "evidence.zip"
    write_bundle(run, bundle, signing_key=load_private_key(priv))
    return {"tmp": tmp, "run": run, "priv": priv, "pub": pub, "other_priv": other_priv,
            "other_pub": other_pub, "bundle": bundle, "bytes": bundle.read_bytes()}


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _verify(tmp: Path, data: bytes, pub: Path, name: str = "t.zip") -> list[str]:
    path = tmp / name
    path.write_bytes(data)
    return verify_bundle(path, load_public_key(pub)).problems


def _evidence_name(files: dict[str, bytes]) -> str:
    return sorted(n for n in files if n.startswith("evidence/"))[0]


def test_written_bundle_verifies_and_holds_the_expected_files(world: dict) -> None:
    v = verify_bundle(world["bundle"], load_public_key(world["pub"]))
    assert v.problems == []
    assert v.signer == keyid(load_public_key(world["pub"]))
    files = _members(world["bytes"])
    used = {e for r in world["run"].results for e in r.evidence}
    assert {n for n in files if n.startswith("evidence/")} == {f"evidence/{e}.txt" for e in used}
    assert {"report.json", "report.html", MANIFEST, ENVELOPE} <= set(files)
    manifest = parse_manifest(files[MANIFEST])
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(files) - {MANIFEST, ENVELOPE}
    assert v.files_checked == len(listed)
    assert manifest["run"]["id"] == world["run"].id
    assert manifest["run"]["inventory_digest"] == world["run"].inventory.digest
    assert manifest["tool"]["name"] == "controlcheck"
    # Each evidence file is byte for byte what the engine recorded.
    for ev_id in used:
        assert files[f"evidence/{ev_id}.txt"] == world["run"].evidence.get(ev_id).content


def test_same_run_same_key_gives_identical_bytes(world: dict) -> None:
    again = world["tmp"] / "again.zip"
    write_bundle(world["run"], again, signing_key=load_private_key(world["priv"]))
    assert again.read_bytes() == world["bytes"]
    with zipfile.ZipFile(again) as zf:
        assert [i.filename for i in zf.infolist()] == sorted(i.filename for i in zf.infolist())
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_envelope_is_dsse_over_the_manifest(world: dict) -> None:
    files = _members(world["bytes"])
    env = json.loads(files[ENVELOPE])
    assert env["payloadType"] == "application/vnd.controlcheck.manifest+json"
    import base64

    assert base64.b64decode(env["payload"]) == files[MANIFEST]
    key = load_public_key(world["pub"])
    sig = base64.b64decode(env["signatures"][0]["sig"])
    key.verify(sig, pae(env["payloadType"], files[MANIFEST]))  # raises if not PAE-signed
    assert env["signatures"][0]["keyid"] == keyid(key)
    assert pae("a", b"xy") == b"DSSEv1 1 a 2 xy"  # the spec's encoding, lengths in bytes


def _rewrite(files: dict[str, bytes]) -> bytes:
    """Re-encode canonically so only the content-level change remains."""
    return canonical_zip(files)


@pytest.mark.parametrize("case", [
    "evidence-byte", "report-json-byte", "report-html-byte", "manifest-byte",
    "manifest-consistent-rewrite", "signature-byte", "envelope-garbage",
    "added-file", "removed-evidence", "removed-report", "removed-manifest",
    "removed-signature", "resigned-by-attacker",
])
def test_tampering_is_detected_and_named(world: dict, case: str) -> None:
    files = _members(world["bytes"])
    ev = _evidence_name(files)
    expect: str
    if case == "evidence-byte":
        files[ev] = b"X" + files[ev][1:]
        expect = f"changed: {ev}"
    elif case == "report-json-byte":
        files["report.json"] = files["report.json"].replace(b'"fail"', b'"pass"', 1)
        expect = "changed: report.json"
    elif case == "report-html-byte":
        files["report.html"] = files["report.html"][:-2] + b"X\n"
        expect = "changed: report.html"
    elif case == "manifest-byte":
        files[MANIFEST] = files[MANIFEST].replace(b'"partial": false', b'"partial": true ')
        expect = f"changed: {MANIFEST}"
    elif case == "manifest-consistent-rewrite":
        # The attacker edits evidence and updates manifest.json to match: still caught,
        # because hashes are checked against the signed payload.
        files[ev] = b"forged output\n"
        m = parse_manifest(files[MANIFEST])
        for f in m["files"]:
            if f["path"] == ev:
                f["size"], f["sha256"] = 14, __import__("hashlib").sha256(files[ev]).hexdigest()
        files[MANIFEST] = dump_manifest(m)
        expect = f"changed: {ev}"
    elif case == "signature-byte":
        env = json.loads(files[ENVELOPE])
        sig = env["signatures"][0]["sig"]
        env["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
        files[ENVELOPE] = json.dumps(env).encode()
        expect = "signature: does not verify"
    elif case == "envelope-garbage":
        files[ENVELOPE] = b"{not json"
        expect = f"changed: {ENVELOPE}"
    elif case == "added-file":
        files["evidence/extra.txt"] = b"planted later\n"
        expect = "added: evidence/extra.txt"
    elif case == "removed-evidence":
        del files[ev]
        expect = f"removed: {ev}"
    elif case == "removed-report":
        del files["report.json"]
        expect = "removed: report.json"
    elif case == "removed-manifest":
        del files[MANIFEST]
        expect = f"removed: {MANIFEST}"
    elif case == "removed-signature":
        del files[ENVELOPE]
        expect = "unsigned"
    elif case == "resigned-by-attacker":
        files[ev] = b"forged\n"
        m = parse_manifest(files[MANIFEST])
        m["files"] = [f if f["path"] != ev else {**f, "size": 7, "sha256": __import__(
            "hashlib").sha256(b"forged\n").hexdigest()} for f in m["files"]]
        files[MANIFEST] = dump_manifest(m)
        files[ENVELOPE] = sign_envelope(files[MANIFEST], load_private_key(world["other_priv"]))
        expect = "signature: not signed by the given key"
    problems = _verify(world["tmp"], _rewrite(files), world["pub"], f"{case}.zip")
    assert problems, f"{case}: tampering not detected"
    assert any(p.startswith(expect) for p in problems), problems


def test_removed_manifest_named_when_unsigned(world: dict) -> None:
    files = bundle_bytes_map(world["run"])
    del files[MANIFEST]
    path = world["tmp"] / "nomanifest.zip"
    path.write_bytes(canonical_zip(files))
    v = verify_bundle(path, None, allow_unsigned=True)
    assert any(p.startswith(f"removed: {MANIFEST}") for p in v.problems), v.problems


def test_different_key_is_rejected(world: dict) -> None:
    problems = _verify(world["tmp"], world["bytes"], world["other_pub"])
    assert len(problems) == 1 and problems[0].startswith("signature: not signed by the given key")


@pytest.mark.parametrize("name,why", [
    ("../x.txt", "path traversal"), ("evidence/../../etc/passwd", "path traversal"),
    ("/etc/cron.d/x", "absolute path"), ("evidence\\x.txt", "backslash"),
    ("evidence/", "directory entry"),
])
def test_unsafe_member_names_are_rejected(world: dict, name: str, why: str) -> None:
    files = _members(world["bytes"])
    files[name] = b"escape\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # zipfile would normalise names: write raw ones
        for n in sorted(files):
            info = zipfile.ZipInfo(n)
            info.filename = n  # bypass ZipInfo's own sanitising of the name
            zf.writestr(info, files[n])
    problems = _verify(world["tmp"], buf.getvalue(), world["pub"], "unsafe.zip")
    assert any(p.startswith(f"zip: unsafe entry name {name!r}") and why in p
               for p in problems), problems


def test_duplicate_member_names_are_rejected(world: dict) -> None:
    files = _members(world["bytes"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in sorted(files):
            zf.writestr(n, files[n])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
            zf.writestr("report.json", b'{"summary": "all good"}')
    problems = _verify(world["tmp"], buf.getvalue(), world["pub"], "dup.zip")
    assert any(p.startswith("zip: duplicate entry 'report.json'") for p in problems), problems


def test_symlink_member_is_rejected(world: dict) -> None:
    files = _members(world["bytes"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in sorted(files):
            zf.writestr(n, files[n])
        link = zipfile.ZipInfo("evidence/link.txt")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/shadow")
    problems = _verify(world["tmp"], buf.getvalue(), world["pub"], "link.zip")
    assert any("is a symbolic link" in p for p in problems), problems


@pytest.mark.parametrize("how", ["append", "prepend", "comment", "recompress"])
def test_container_changes_outside_the_files_are_detected(world: dict, how: str) -> None:
    data = world["bytes"]
    if how == "append":
        data = data + b"trailing"
    elif how == "prepend":
        data = b"#!/bin/sh\necho hi\n" + data  # a zip still opens with bytes in front
    elif how == "comment":
        buf = io.BytesIO(data)
        with zipfile.ZipFile(buf, "a") as zf:
            zf.comment = b"reviewed and approved"
        data = buf.getvalue()
    elif how == "recompress":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, content in sorted(_members(data).items()):
                zf.writestr(n, content)
        data = buf.getvalue()
    problems = _verify(world["tmp"], data, world["pub"], f"{how}.zip")
    assert problems, f"{how} not detected"


def test_every_single_byte_change_is_detected(world: dict) -> None:
    """Flip bytes across the whole archive: headers densely, file data by stride."""
    data = world["bytes"]
    files = _members(data)
    # Offsets of the data of each member: everything else is header/directory.
    header_offsets = set(range(len(data)))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            start = info.header_offset + 30 + len(info.filename)
            header_offsets -= set(range(start, start + info.file_size))
    data_offsets = sorted(set(range(len(data))) - header_offsets)
    offsets = sorted(header_offsets) + data_offsets[::97]
    assert len(files) > 5 and len(offsets) > 500
    path = world["tmp"] / "flip.zip"
    pub = load_public_key(world["pub"])
    missed = []
    for off in offsets:
        flipped = bytearray(data)
        flipped[off] ^= 0x01
        path.write_bytes(bytes(flipped))
        if verify_bundle(path, pub).ok:
            missed.append(off)
    assert missed == []


def test_cli_verify_exit_codes_and_messages(world: dict, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    bundle, pub = str(world["bundle"]), str(world["pub"])
    assert main(["bundle", "verify", bundle, "--key", pub]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and keyid(load_public_key(world["pub"])) in out

    files = _members(world["bytes"])
    ev = _evidence_name(files)
    files[ev] += b"x"
    bad = world["tmp"] / "bad.zip"
    bad.write_bytes(canonical_zip(files))
    assert main(["bundle", "verify", str(bad), "--key", pub]) == 1
    out = capsys.readouterr().out
    assert f"FAILED: changed: {ev}" in out and "verification FAILED" in out

    assert main(["bundle", "verify", str(world["tmp"] / "nope.zip"), "--key", pub]) == 2
    assert main(["bundle", "verify", bundle, "--key", str(world["tmp"] / "nope.pub")]) == 2
    assert main(["bundle", "verify", bundle, "--key", str(world["priv"])]) == 2
    assert main(["bundle", "verify", bundle]) == 2  # no key, no --allow-unsigned
    err = capsys.readouterr().err
    assert "NAME.pub" in err and "not found" in err

    notzip = world["tmp"] / "notzip.zip"
    notzip.write_bytes(b"hello")
    assert main(["bundle", "verify", str(notzip), "--key", pub]) == 1
    assert "not a readable zip" in capsys.readouterr().out


def test_unsigned_bundle_needs_allow_unsigned(world: dict, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    path = world["tmp"] / "unsigned.zip"
    info = write_bundle(world["run"], path)
    assert info.signed_by is None
    assert main(["bundle", "verify", str(path), "--key", str(world["pub"])]) == 1
    assert "unsigned" in capsys.readouterr().out
    assert main(["bundle", "verify", str(path), "--allow-unsigned"]) == 0
    out = capsys.readouterr().out
    assert "UNSIGNED" in out and "note: unsigned" in out


def test_keygen_writes_private_0600_and_refuses_to_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = tmp_path / "k"
    assert main(["keygen", "--output", str(name)]) == 0
    assert (name.stat().st_mode & 0o777) == 0o600
    assert b"BEGIN PRIVATE KEY" in name.read_bytes()
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    kid = keyid(load_public_key(tmp_path / "k.pub"))
    assert kid in capsys.readouterr().out
    assert main(["keygen", "--output", str(name)]) == 2
    assert main(["keygen", "--output", str(name), "--force"]) == 0
    assert keyid(load_public_key(tmp_path / "k.pub")) != kid


def test_openssh_ed25519_keys_are_accepted(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "s")],
                   check=True)
    priv = load_private_key(tmp_path / "s")
    pub = load_public_key(tmp_path / "s.pub")
    assert keyid(priv.public_key()) == keyid(pub)
