"""Pure parsers for what package managers print (no I/O; tested on captured output).

Formats and why each source was chosen:

* apt: ``apt-get -s dist-upgrade`` ``Inst`` lines.  ``apt-get`` is apt's stable CLI
  (``apt list`` warns it has none), ``dist-upgrade`` also lists upgrades that plain
  ``upgrade`` keeps back, and each line names the candidate's origins as
  ``Label:Version/Archive`` (apt's ``VerIterator::RelStr``), so a security origin is
  visible per package: ``Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2
  Debian-Security:12/oldstable-security [amd64])``.
* dnf/yum: ``updateinfo list --security`` (advisory, severity, NEVRA) plus
  ``updateinfo info --security`` for each advisory's ``Updated`` date.
* zypper: ``list-patches --category security`` table (no dates).
* apk: ``apk version -l '<'`` (Alpine has no security metadata per package).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# --------------------------------------------------------------------------- common


class UnrecognisedOutput(ValueError):
    """A non-empty line the parser does not know.  Skipping it could hide a pending update
    (a new output format parsed as "nothing pending"), so the collector reports an error."""

    def __init__(self, manager: str, line: str) -> None:
        super().__init__(f"unrecognised output from {manager}: {line.strip()[:200]}")
        self.manager = manager
        self.line = line


@dataclass(frozen=True)
class PendingUpdate:
    """One package that has a newer version available."""

    package: str
    installed: str | None
    available: str
    origin: str  # where the candidate comes from: "Debian-Security:12/bookworm-security", advisory
    security: bool
    issued: datetime | None = None  # when the fix was published, if the manager says


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict (shell-style ``KEY="value"`` lines)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value.replace('\\"', '"').replace("\\$", "$")
    return out


# --------------------------------------------------------------------------- apt

_INST = re.compile(
    r"^Inst (?P<pkg>\S+)(?: \[(?P<old>[^\]]+)\])? \((?P<new>\S+) (?P<files>.*) \[(?P<arch>[^\]]+)\]\)"
    r"(?: \[.*\])?$")


def _apt_origin_is_security(origin: str) -> bool:
    """``Label:Version/Archive``: Debian labels its archive ``Debian-Security``, Ubuntu and
    Debian name security suites ``*-security`` (also Ubuntu ESM: ``jammy-infra-security``)."""
    label, _, rest = origin.rpartition(":")
    archive = rest.rsplit("/", 1)[-1]
    return archive.endswith("-security") or "security" in label.lower()


def parse_apt_simulation(text: str) -> list[PendingUpdate]:
    """Upgrades (not new installs) in ``apt-get -s dist-upgrade`` output."""
    updates: list[PendingUpdate] = []
    for line in text.splitlines():
        m = _INST.match(line)
        if not m and line.startswith("Inst "):
            # The rest of apt's output is prose (counted by the summary line); an Inst
            # line is what this parser exists for, so one it cannot read is an error.
            raise UnrecognisedOutput("apt-get", line)
        if not m or m.group("old") is None:
            continue  # prose, or a new dependency, not an upgrade of something installed
        origins = [o.strip() for o in m.group("files").split(", ") if o.strip()]
        security = [o for o in origins if _apt_origin_is_security(o)]
        updates.append(PendingUpdate(
            package=m.group("pkg"), installed=m.group("old"), available=m.group("new"),
            origin=(security or origins or ["?"])[0], security=bool(security)))
    return updates


def apt_simulation_complete(text: str) -> bool:
    """apt prints the summary line only when it resolved the whole upgrade."""
    return re.search(r"^\d+ upgraded, \d+ newly installed, \d+ to remove", text, re.M) is not None


def apt_simulation_upgraded(text: str) -> int | None:
    """The ``N upgraded`` of apt's summary line (None when there is none)."""
    m = re.search(r"^(\d+) upgraded, \d+ newly installed, \d+ to remove", text, re.M)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class AptIndex:
    """One downloaded ``Release``/``InRelease`` file of ``/var/lib/apt/lists``."""

    path: str
    mtime: datetime
    fields: dict[str, str]

    @property
    def security(self) -> bool:
        suite = self.fields.get("Suite", "") + " " + self.fields.get("Codename", "")
        return ("-security" in suite or "security" in self.fields.get("Label", "").lower())

    @property
    def date(self) -> datetime | None:
        raw = self.fields.get("Date")
        if not raw:
            return None
        try:
            dt = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

    @property
    def freshness(self) -> datetime:
        """The newest sign that this index was current: its ``Date:`` or the file's mtime
        (apt sets it from the server's Last-Modified; a re-fetch refreshes it)."""
        return max(d for d in (self.date, self.mtime) if d is not None)


def parse_find_mtimes(text: str) -> dict[str, datetime]:
    """``find ... -printf '%T@ %p\\n'`` → {path: mtime}."""
    out: dict[str, datetime] = {}
    for line in text.splitlines():
        stamp, _, path = line.partition(" ")
        try:
            out[path] = datetime.fromtimestamp(float(stamp), UTC)
        except ValueError:
            continue
    return out


def parse_grep_fields(text: str) -> dict[str, dict[str, str]]:
    """``grep -H -E '^(Suite|...):' files`` → {path: {field: value}} (first value wins:
    an InRelease file lists fields once, in its signed header)."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        m = re.match(r"^(?P<path>/[^:]+):(?P<key>[A-Za-z-]+):\s*(?P<value>.*)$", line)
        if m:
            out.setdefault(m.group("path"), {}).setdefault(m.group("key"), m.group("value"))
    return out


def apt_indexes(find_text: str, grep_text: str) -> list[AptIndex]:
    mtimes = parse_find_mtimes(find_text)
    fields = parse_grep_fields(grep_text)
    return [AptIndex(p, t, fields.get(p, {})) for p, t in sorted(mtimes.items())]


def parse_apt_config(text: str) -> dict[str, list[str]]:
    """``apt-config dump`` → {key: [values]}; list entries (``Key:: "v";``) collect in order."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r'^(?P<key>\S+?)(?P<list>::)? "(?P<value>(?:[^"\\]|\\.)*)";$', line.strip())
        if m:
            out.setdefault(m.group("key"), []).append(m.group("value"))
    return out


# --------------------------------------------------------------------------- dnf / yum

_NEVRA = re.compile(r"^(?P<name>.+)-(?P<evr>(?:\d+:)?[^-]+-[^-]+)\.(?P<arch>[^.]+)$")


def split_nevra(nevra: str) -> tuple[str, str] | None:
    m = _NEVRA.match(nevra)
    return (m.group("name"), m.group("evr")) if m else None


_DNF_NOISE = re.compile(
    r"^(Last metadata expiration check:|Updating and loading repositories:|Repositories loaded"
    r"|Updating Subscription Management repositories|Unable to read consumer identity"
    r"|This system is not registered)")
# dnf5 (``dnf advisory list`` / its ``updateinfo`` alias): Name Type Severity Package Issued,
# the type and severity cut short on a narrow terminal ("secu", "Importan").
_DNF5_HEADER = re.compile(r"^Name\s+Type\s+Severity\s+Package\s+Issued$")
_DNF5_ROW = re.compile(r"^(?P<id>\S+)\s+(?P<type>[a-z]+)\s+(?P<sev>\S+)\s+(?P<nevra>\S+)\s+"
                       r"(?P<issued>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")
_DNF4_TYPES = ("bugfix", "enhancement", "newpackage", "security", "unknown")


def parse_dnf_security_list(list_text: str, info_text: str = "") -> list[PendingUpdate]:
    """``dnf updateinfo list --security`` rows, dnf4 (``RHSA-2024:1 Important/Sec.
    pkg-v-r.arch``, dated by the advisory's ``Updated`` in ``updateinfo info``) or dnf5
    (``FEDORA-2026-x security Important pkg-v-r.arch 2026-05-27 16:06:31``).

    Raises ``UnrecognisedOutput`` on any other non-empty line."""
    updated = parse_dnf_updateinfo_dates(info_text)
    updates: list[PendingUpdate] = []
    for line in list_text.splitlines():
        text = line.strip()
        if not text or _DNF_NOISE.match(text) or _DNF5_HEADER.match(text):
            continue
        parts = text.split()
        m5 = _DNF5_ROW.match(text)
        if m5:
            split = split_nevra(m5.group("nevra"))
            if split is None:
                raise UnrecognisedOutput("dnf", line)
            if not m5.group("type").startswith("sec"):
                continue  # bugfix / enhancement advisory
            issued = datetime.strptime(m5.group("issued"), "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=UTC)
            updates.append(PendingUpdate(
                package=split[0], installed=None, available=split[1],
                origin=f"{m5.group('id')} ({m5.group('sev')})", security=True,
                issued=updated.get(m5.group("id"), issued)))
            continue
        if len(parts) != 3 or split_nevra(parts[2]) is None:
            raise UnrecognisedOutput("dnf", line)
        if not parts[1].endswith("/Sec."):
            if parts[1].lower() in _DNF4_TYPES:
                continue  # a bugfix/enhancement row
            raise UnrecognisedOutput("dnf", line)
        split = split_nevra(parts[2])
        assert split is not None
        updates.append(PendingUpdate(package=split[0], installed=None, available=split[1],
                                     origin=f"{parts[0]} ({parts[1][:-5]})", security=True,
                                     issued=updated.get(parts[0])))
    return updates


def parse_dnf_updateinfo_dates(text: str) -> dict[str, datetime]:
    """{advisory id: Updated (or Issued)} from ``dnf updateinfo info`` blocks."""
    out: dict[str, datetime] = {}
    current: str | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Update ID":
            current = value
        elif key in ("Updated", "Issued") and current and current not in out:
            try:
                out[current] = datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(
                    tzinfo=UTC)
            except ValueError:
                continue
    return out


# --------------------------------------------------------------------------- zypper


_ZYPPER_PROSE = re.compile(
    r"^(Loading repository data|Reading installed packages|Considering \d+ out of \d+ "
    r"|\d+ patch(es)? needed|No updates found|Found \d+ applicable patch"
    r"|Repository '.*' is out-of-date|The following \d+ patch)")


def parse_zypper_patches(text: str) -> list[PendingUpdate]:
    """``zypper list-patches --category security`` rows whose status is ``needed``.

    Raises ``UnrecognisedOutput`` on a line that is neither the table nor known prose."""
    updates: list[PendingUpdate] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip() or set(line.strip()) <= {"-", "+"}:
            continue  # blank, or the ----+---- rule under the header
        if "|" not in line:
            if _ZYPPER_PROSE.match(line.strip()):
                continue
            raise UnrecognisedOutput("zypper", line)
        cells = [c.strip() for c in line.split("|")]
        if header is None:
            if "Name" in cells and "Category" in cells:
                header = [c.lower() for c in cells]
                continue
            raise UnrecognisedOutput("zypper", line)
        if len(cells) != len(header):
            raise UnrecognisedOutput("zypper", line)
        row = dict(zip(header, cells, strict=True))
        if row.get("category") != "security" or row.get("status") not in ("needed", "applicable"):
            continue
        updates.append(PendingUpdate(
            package=row.get("name", "?"), installed=None, available=row.get("name", "?"),
            origin=f"{row.get('repository', '?')} ({row.get('severity', '?')})", security=True))
    return updates


# --------------------------------------------------------------------------- apk


def parse_apk_version(text: str) -> list[PendingUpdate]:
    """``apk version -l '<'``: ``busybox-1.36.1-r5   < 1.36.1-r7``.

    Alpine's index does not mark security fixes and the ``main`` branch of a stable
    release only receives security and important bug fixes, so every pending upgrade
    is treated as a security update (said in the message).
    """
    updates: list[PendingUpdate] = []
    for line in text.splitlines():
        m = re.match(r"^(?P<pkgver>\S+)\s+<\s+(?P<new>\S+)", line)
        if not m:
            if not line.strip() or re.match(r"^Installed:\s+Available:\s*$", line):
                continue
            raise UnrecognisedOutput("apk", line)
        pkgver = m.group("pkgver")
        m2 = re.match(r"^(?P<name>.+)-(?P<ver>\d[^-]*-r\d+)$", pkgver)
        name, old = (m2.group("name"), m2.group("ver")) if m2 else (pkgver, None)
        updates.append(PendingUpdate(package=name, installed=old, available=m.group("new"),
                                     origin="apk repositories", security=True))
    return updates


def names(updates: Iterable[PendingUpdate], limit: int = 10) -> str:
    items = sorted({u.package for u in updates})
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
