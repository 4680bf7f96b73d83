"""``controlcheck bundle verify BUNDLE --key PUB``: check an evidence bundle offline.

Exit codes: 0 verified; 1 verification failed (one line per problem, naming
the file); 2 usage (bundle or key file missing, not a key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from controlcheck.cli.common import usage_error


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bundle", help="work with evidence bundles")
    bsub = p.add_subparsers(dest="bundle_command", metavar="SUBCOMMAND")
    v = bsub.add_parser("verify", help="check a bundle's signature, every file hash and its "
                                       "file list")
    v.add_argument("bundle", type=Path, metavar="BUNDLE", help="the evidence zip")
    v.add_argument("--key", "-k", type=Path, metavar="PUB",
                   help="the signer's public key (NAME.pub from 'controlcheck keygen')")
    v.add_argument("--allow-unsigned", action="store_true",
                   help="accept a bundle without a signature (checks hashes only)")
    v.set_defaults(func=verify)
    p.set_defaults(func=lambda _a: usage_error("bundle: missing subcommand; try "
                                                "'controlcheck bundle verify BUNDLE --key PUB'"))


def verify(args: argparse.Namespace) -> int:
    from controlcheck.evidence.signing import KeyFileError, load_public_key
    from controlcheck.evidence.verify import verify_bundle

    if not args.bundle.is_file():
        return usage_error(f"bundle {args.bundle} not found")
    if args.key is None and not args.allow_unsigned:
        return usage_error("pass --key NAME.pub (the signer's public key), or --allow-unsigned "
                           "to check hashes only")
    try:
        key = load_public_key(args.key) if args.key is not None else None
    except KeyFileError as exc:
        return usage_error(str(exc))
    try:
        result = verify_bundle(args.bundle, key, allow_unsigned=args.allow_unsigned)
    except OSError as exc:
        return usage_error(f"bundle {args.bundle}: cannot read ({exc.strerror or exc})")
    for note in result.notes:
        print(f"note: {note}")
    for problem in result.problems:
        print(f"FAILED: {problem}")
    if result.problems:
        print(f"{args.bundle}: verification FAILED ({len(result.problems)} problem(s))")
        return 1
    run = (result.manifest or {}).get("run", {})
    signer = f"signed by key id {result.signer}" if result.signer else "UNSIGNED"
    print(f"{args.bundle}: verified: {result.files_checked} files match the manifest, {signer}; "
          f"run {run.get('id', '?')} {run.get('started', '?')} — {run.get('finished', '?')}")
    return 0


# --- the ``run --bundle FILE --signing-key KEY`` options (used by cmd_run) -----------------


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", type=Path, metavar="FILE",
                   help="also write an evidence bundle (zip: reports, evidence files, "
                        "manifest, signature)")
    p.add_argument("--signing-key", type=Path, metavar="FILE",
                   help="Ed25519 private key that signs the bundle's manifest (default: "
                        "$CONTROLCHECK_SIGNING_KEY; without a key the bundle is unsigned)")


def load_run_signing_key(args: argparse.Namespace) -> tuple[object | None, str | None]:
    """(key, None) or (None, usage error message); checked before any probe runs."""
    import os

    from controlcheck.evidence.signing import ENV_SIGNING_KEY, KeyFileError, load_private_key

    path = args.signing_key
    if path is None and os.environ.get(ENV_SIGNING_KEY):
        path = Path(os.environ[ENV_SIGNING_KEY])
    if args.bundle is None:
        if args.signing_key is not None:
            return None, "--signing-key signs an evidence bundle: add --bundle FILE"
        return None, None
    if args.output not in ("-", None) and Path(args.output).resolve() == args.bundle.resolve():
        return None, f"--bundle {args.bundle} is the same file as --output"
    if path is None:
        return None, None
    try:
        return load_private_key(path), None
    except KeyFileError as exc:
        return None, str(exc)


def write_run_bundle(args: argparse.Namespace, run: object, fail_on: object, key: object,
                     console: object) -> None:
    from controlcheck.evidence.bundle import write_bundle

    if args.bundle is None:
        return
    info = write_bundle(run, args.bundle, fail_on, key)  # type: ignore[arg-type]
    how = (f"signed by key id {info.signed_by}" if info.signed_by else
           "UNSIGNED (pass --signing-key or set CONTROLCHECK_SIGNING_KEY)")
    if not args.quiet:
        console.print(f"evidence bundle written to {info.path}: "  # type: ignore[attr-defined]
                      f"{info.files} files, {how}")
