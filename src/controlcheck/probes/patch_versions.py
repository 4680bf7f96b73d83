"""Version ordering for Debian (dpkg) and RPM packages, in pure Python.

Used to find the newest installed kernel and to compare it with the running one.
Both algorithms follow the package managers' own definitions (dpkg's
``verrevcmp`` in lib/dpkg/version.c, rpm's ``rpmvercmp`` in rpmio/rpmvercmp.c);
``tests/test_patch_versions.py`` checks them against ``dpkg --compare-versions``
on this machine.  Running a command per comparison would cost one round trip per
pair over SSH, hence the re-implementation.
"""

from __future__ import annotations

import re
from functools import cmp_to_key

__all__ = ["dpkg_compare", "rpm_compare", "newest"]


# --------------------------------------------------------------------------- dpkg


def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) else 0
            bc = _dpkg_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _dpkg_split(v: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in v:
        e, v = v.split(":", 1)
        epoch = int(e) if e.isdigit() else 0
    if "-" in v:
        upstream, revision = v.rsplit("-", 1)
    else:
        upstream, revision = v, ""
    return epoch, upstream, revision


def dpkg_compare(a: str, b: str) -> int:
    """<0, 0, >0 like ``dpkg --compare-versions a lt/eq/gt b``."""
    ea, ua, ra = _dpkg_split(a)
    eb, ub, rb = _dpkg_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    r = _dpkg_verrevcmp(ua, ub)
    if r:
        return -1 if r < 0 else 1
    r = _dpkg_verrevcmp(ra, rb)
    return -1 if r < 0 else (1 if r > 0 else 0)


# --------------------------------------------------------------------------- rpm

_RPM_SEG = re.compile(r"(\d+|[a-zA-Z]+|~|\^)")


def _rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    ia = ib = 0
    while ia < len(a) or ib < len(b):
        # Skip separators (anything not alnum, ~ or ^).
        while ia < len(a) and not (a[ia].isalnum() or a[ia] in "~^"):
            ia += 1
        while ib < len(b) and not (b[ib].isalnum() or b[ib] in "~^"):
            ib += 1
        ta = a[ia] if ia < len(a) else ""
        tb = b[ib] if ib < len(b) else ""
        if ta == "~" or tb == "~":  # tilde sorts before everything, even the end
            if ta != "~":
                return 1
            if tb != "~":
                return -1
            ia += 1
            ib += 1
            continue
        if ta == "^" or tb == "^":  # caret sorts after the end but before anything else
            if not ta:
                return -1
            if not tb:
                return 1
            if ta != "^":
                return 1
            if tb != "^":
                return -1
            ia += 1
            ib += 1
            continue
        if not ta or not tb:
            break
        ma = _RPM_SEG.match(a, ia)
        mb = _RPM_SEG.match(b, ib)
        assert ma is not None and mb is not None
        sa, sb = ma.group(0), mb.group(0)
        ia, ib = ma.end(), mb.end()
        if sa.isdigit() != sb.isdigit():
            return 1 if sa.isdigit() else -1  # numeric segments are newer than alpha
        if sa.isdigit():
            na, nb = int(sa), int(sb)
            if na != nb:
                return 1 if na > nb else -1
        elif sa != sb:
            return 1 if sa > sb else -1
    rest_a = ia < len(a)
    rest_b = ib < len(b)
    if rest_a == rest_b:
        return 0
    return 1 if rest_a else -1


def _rpm_split(evr: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in evr:
        e, evr = evr.split(":", 1)
        epoch = int(e) if e.isdigit() else 0
    version, _, release = evr.partition("-")
    return epoch, version, release


def rpm_compare(a: str, b: str) -> int:
    """Compare ``[epoch:]version[-release]`` strings the way rpm does."""
    ea, va, ra = _rpm_split(a)
    eb, vb, rb = _rpm_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    r = _rpmvercmp(va, vb)
    if r or not (ra and rb):
        return r
    return _rpmvercmp(ra, rb)


def newest(versions: list[str], compare: str) -> str | None:
    """The highest of ``versions`` under ``compare`` ("dpkg" or "rpm")."""
    if not versions:
        return None
    cmp = dpkg_compare if compare == "dpkg" else rpm_compare
    return sorted(versions, key=cmp_to_key(cmp))[-1]

