"""``controlcheck keygen --output NAME``: an Ed25519 key pair for signing bundles."""

from __future__ import annotations

import argparse
from pathlib import Path

from controlcheck.cli.common import usage_error


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keygen", help="create an Ed25519 key pair for signing evidence bundles")
    p.add_argument("--output", "-o", required=True, type=Path, metavar="NAME",
                   help="writes NAME (private key, PKCS#8 PEM, mode 0600) and NAME.pub")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from controlcheck.evidence.signing import generate_keypair, keyid, load_public_key

    out: Path = args.output
    pub = out.with_name(out.name + ".pub")
    existing = [str(p) for p in (out, pub) if p.exists()]
    if existing and not args.force:
        return usage_error(f"{', '.join(existing)} already exist(s); pass --force to replace "
                           f"(bundles signed with the old key then need the old .pub to verify)")
    if not out.parent.is_dir():
        return usage_error(f"directory {out.parent} does not exist")
    for p in (out, pub):
        if args.force:
            p.unlink(missing_ok=True)
    private, public = generate_keypair(out)
    print(f"private key: {private} (keep it secret; mode 0600)")
    print(f"public key:  {public} (give it to auditors)")
    print(f"key id:      {keyid(load_public_key(public))}")
    return 0
