"""Evidence bundles: one zip an auditor can verify offline.

``bundle.write_bundle`` lays out a finished run as ``report.json``,
``report.html``, one file per evidence item under ``evidence/``, and a
``manifest.json`` listing every file with its SHA-256 and size.  ``signing``
wraps the manifest in a DSSE envelope (``manifest.dsse.json``) signed with
Ed25519.  ``verify.verify_bundle`` checks the signature, every hash and size,
and that the zip holds exactly the files the manifest names — nothing more.
"""
