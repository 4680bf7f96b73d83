"""``controlcheck run --bundle`` options: key from flag or environment, errors before the run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlcheck.cli import main
from controlcheck.evidence.signing import ENV_SIGNING_KEY, generate_keypair, keyid, load_public_key
from controlcheck.evidence.verify import verify_bundle

FAST = ["--only", "PHYS", "-q"]  # an organisation-level control: no host commands, quick


def test_signing_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = generate_keypair(tmp_path / "signer")
    monkeypatch.setenv(ENV_SIGNING_KEY, str(priv))
    bundle = tmp_path / "ev.zip"
    code = main(["run", "-o", str(tmp_path / "r.json"), "--bundle", str(bundle), *FAST])
    assert code in (0, 1, 3)
    v = verify_bundle(bundle, load_public_key(pub))
    assert v.ok and v.signer == keyid(load_public_key(pub))


def test_flag_overrides_environment_and_unsigned_without_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_priv, _ = generate_keypair(tmp_path / "env")
    flag_priv, flag_pub = generate_keypair(tmp_path / "flag")
    monkeypatch.setenv(ENV_SIGNING_KEY, str(env_priv))
    bundle = tmp_path / "ev.zip"
    main(["run", "-o", str(tmp_path / "r.json"), "--bundle", str(bundle),
          "--signing-key", str(flag_priv), *FAST])
    assert verify_bundle(bundle, load_public_key(flag_pub)).ok
    monkeypatch.delenv(ENV_SIGNING_KEY)
    main(["run", "-o", str(tmp_path / "r.json"), "--bundle", str(bundle), *FAST])
    v = verify_bundle(bundle, None, allow_unsigned=True)
    assert v.ok and not v.signed


@pytest.mark.parametrize("problem", ["missing", "public-not-private", "not-a-key",
                                     "without-bundle", "same-as-output"])
def test_key_problems_are_usage_errors_before_any_check(
        tmp_path: Path, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = generate_keypair(tmp_path / "signer")
    bundle = tmp_path / "ev.zip"
    args = ["run", "-o", str(tmp_path / "r.json"), "--bundle", str(bundle)]
    if problem == "missing":
        args += ["--signing-key", str(tmp_path / "nope")]
    elif problem == "public-not-private":
        args += ["--signing-key", str(pub)]
    elif problem == "not-a-key":
        (tmp_path / "junk").write_text("hello\n")
        args += ["--signing-key", str(tmp_path / "junk")]
    elif problem == "without-bundle":
        args = ["run", "-o", str(tmp_path / "r.json"), "--signing-key", str(priv)]
    elif problem == "same-as-output":
        args = ["run", "-o", str(bundle), "--bundle", str(bundle)]
    t0 = time.monotonic()
    assert main(args) == 2  # the full catalogue would take seconds: nothing ran
    assert time.monotonic() - t0 < 2
    assert not bundle.exists() and not (tmp_path / "r.json").exists()
    assert "controlcheck: error:" in capsys.readouterr().err
