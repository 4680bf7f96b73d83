"""A canonical zip encoder: the one byte layout a bundle may have.

Entries are sorted by name, STORED (not compressed), with a fixed timestamp
(1980-01-01 00:00), mode 0644, no extra fields and no comments.  Because the
layout is a pure function of the file names and contents, the verifier can
rebuild it from what it read and compare byte for byte: a change to *any*
byte of the archive — data, a header field, a comment, stray bytes — is
detected.  Compression is deliberately off: a deflate stream can absorb
changes (padding bits) that leave the content intact, and re-compressing to
compare would depend on the zlib build.  We encode ourselves rather than
through ``zipfile`` so a new Python cannot change the bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

_VERSION = 20  # 2.0: the oldest version every reader handles
_MADE_BY = (3 << 8) | _VERSION  # 3 = unix, so the mode in external_attr is read
_DOS_TIME = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_MODE = 0o100644 << 16
_LIMIT = 0xFFFFFFFF  # no zip64: a bundle over 4 GiB is refused, not silently reshaped


def canonical_zip(files: Mapping[str, bytes]) -> bytes:
    if len(files) > 0xFFFF:
        raise ValueError(f"{len(files)} files: more than a zip without zip64 holds")
    out = bytearray()
    central = bytearray()
    for name in sorted(files):
        data = files[name]
        raw_name = name.encode("ascii")  # names are ours: ev ids and fixed names
        if len(data) > _LIMIT or len(out) > _LIMIT:
            raise ValueError(f"{name}: bundle larger than 4 GiB")
        crc = zlib.crc32(data)
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", _VERSION, 0, 0, _DOS_TIME, _DOS_DATE,
                           crc, len(data), len(data), len(raw_name), 0)
        out += raw_name + data
        central += struct.pack("<4s6H3L5HLL", b"PK\x01\x02", _MADE_BY, _VERSION, 0, 0,
                               _DOS_TIME, _DOS_DATE, crc, len(data), len(data), len(raw_name),
                               0, 0, 0, 0, _MODE, offset)
        central += raw_name
    cd_offset = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(files), len(files), len(central),
                       cd_offset, 0)
    return bytes(out)


def first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))
