"""Tabular registers (staff, training, NDA, assets, AV exports) with file:line errors.

A register is a CSV file with a header line, a JSON list of objects (or an
object whose ``value`` is that list, as Microsoft Graph/Defender APIs answer),
or a YAML list of mappings.  What each register must contain is data:
``data/schemas/registers.schema.json`` names the columns, their types and the
other names an export may use for them.  Columns we do not know are ignored,
so a vendor export can be used unchanged.

Every row keeps its line number, and every problem — a missing column, a
date that is not a date, a CSV row with too many fields — is a
``ConfigError`` naming ``file:line`` and the fix, raised while loading (the
preflight loads every register before any probe runs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlcheck.yamlio import ConfigError, load_schema, load_yaml

if TYPE_CHECKING:
    from controlcheck.catalogue import Catalogue
    from controlcheck.inventory import Inventory

# organisation.registers keys this module validates, and the register kind of each.
ORG_REGISTERS = {"staff": "staff", "training": "training", "confidentiality": "confidentiality"}
DEVICE_AV_KINDS = ("defender_deviceavinfo", "device_av")  # detection order; ours last

_TRUE = {"true", "yes", "y", "1", "healthy", "ok", "on"}
_FALSE = {"false", "no", "n", "0", "unhealthy", "off", "not healthy"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Row:
    """One record: canonical column name → typed value (``None`` when empty)."""

    values: Mapping[str, Any]
    line: int | None

    def __getitem__(self, key: str) -> Any:
        return self.values.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value


@dataclass(frozen=True)
class Register:
    path: Path
    kind: str
    rows: tuple[Row, ...]
    sha256: str
    content: bytes = field(repr=False)

    def where(self, row: Row) -> str:
        return f"{self.path}:{row.line}" if row.line else str(self.path)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str  # "string", "date", "date-time", "boolean"
    required: bool
    names: tuple[str, ...]  # normalised header names that mean this column


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip().lower())


def columns_of(kind: str) -> list[_Column]:
    defs = load_schema("registers.schema.json")["$defs"]
    if kind not in defs:
        raise KeyError(f"unknown register kind {kind!r}")
    spec = defs[kind]
    cols = []
    for name, prop in spec["properties"].items():
        typ = prop.get("format", prop.get("type", "string"))
        names = (normalise_header(name), *(normalise_header(a) for a in prop.get("x-aliases", [])))
        cols.append(_Column(name, typ, name in spec.get("required", []), names))
    return cols


# (record, line of the record, line of the header, line of each field — YAML/JSON only)
_Rec = tuple[dict[str, Any], int | None, int | None, dict[str, int]]


def load_register(path: Path, kind: str) -> Register:
    """Load and type-check one register; any problem is a ``ConfigError`` with file:line."""
    content = _read_bytes(path)
    records = list(_records(path, content))
    header_line = records[0][2] if records else 1
    headers = _all_headers(records)
    cols = columns_of(kind)
    mapping = _map_headers(path, header_line, headers, cols, kind)
    rows = []
    for number, (raw, line, _, field_lines) in enumerate(records, start=1):
        if all(v is None or str(v).strip() == "" for v in raw.values()):
            continue  # blank line or an empty spreadsheet row
        values: dict[str, Any] = {}
        for col in cols:
            header = mapping.get(col.name)
            value = raw.get(header) if header is not None else None
            where = field_lines.get(header, line) if header is not None else line
            values[col.name] = _convert(path, where, number, col, value)
        rows.append(Row(values, line))
    return Register(path, kind, tuple(rows), hashlib.sha256(content).hexdigest(), content)


def detect_kind(path: Path, kinds: Sequence[str]) -> str:
    """The first register kind in ``kinds`` whose required columns the file has."""
    content = _read_bytes(path)
    records = list(_records(path, content))
    headers = {normalise_header(h) for h in _all_headers(records)}
    for kind in kinds:
        if all(set(c.names) & headers for c in columns_of(kind) if c.required):
            return kind
    return kinds[-1]  # the last (our own format) reports the missing columns


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "register file not found; fix the path in the inventory") \
            from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read register: {exc.strerror}") from None


def _all_headers(records: list[_Rec]) -> list[str]:
    seen: dict[str, None] = {}
    for raw, _, _, _ in records:
        for key in raw:
            seen.setdefault(key, None)
    return list(seen)


def _map_headers(path: Path, line: int | None, headers: Sequence[str],
                 cols: Sequence[_Column], kind: str) -> dict[str, str]:
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    mapping: dict[str, str] = {}
    for col in cols:
        found = next((by_norm[n] for n in col.names if n in by_norm), None)
        if found is not None:
            mapping[col.name] = found
        elif col.required:
            has = ", ".join(headers) or "none"
            raise ConfigError(path, line, f"{kind} register: missing column {col.name!r} "
                                          f"(columns found: {has}); add it")
    return mapping


def _records(path: Path, content: bytes) -> Iterator[_Rec]:
    """(record, line of the record, line of the header) for each record."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text ({exc.reason}); save the register as "
                                      f"UTF-8") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        yield from _json_records(path, text)
    elif suffix in (".yaml", ".yml"):
        yield from _yaml_records(path, text)
    else:
        yield from _csv_records(path, text)


def _csv_records(path: Path, text: str) -> Iterator[_Rec]:
    first = text.split("\n", 1)[0]
    # Spreadsheets in many locales export ';' or tab separated "CSV".
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ConfigError(path, 1, "empty register: the first line must name the columns")
        header = [h.strip().lstrip("\ufeff") for h in header]
        dupes = sorted({h for h in header if h and header.count(h) > 1})
        if dupes:
            raise ConfigError(path, 1, f"column {dupes[0]!r} appears twice in the header; "
                                       f"remove one")
        start = reader.line_num + 1
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise ConfigError(path, line, f"row has {len(cells)} fields but the header has "
                                              f"{len(header)}; quote values that contain "
                                              f"{delimiter!r}")
            yield dict(zip(header, cells, strict=False)), line, 1, {}
    except csv.Error as exc:
        raise ConfigError(path, reader.line_num or None, f"malformed CSV: {exc}") from None


def _json_records(path: Path, text: str) -> Iterator[_Rec]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    # JSON is (nearly) YAML: the YAML composer gives us each record's line.
    try:
        lines = load_yaml(path, text).lines
    except ConfigError:
        lines = {}
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        data, prefix = data["value"], ("value",)  # OData answer: {"@odata.context":..,"value":[..]}
    if not isinstance(data, list):
        raise ConfigError(path, 1, "expected a list of records (or an object whose 'value' is "
                                   "a list of records)")
    for i, rec in enumerate(data):
        line = lines.get(prefix + (i,))
        if not isinstance(rec, dict):
            raise ConfigError(path, line, f"record {i + 1} is not an object")
        yield ({str(k): v for k, v in rec.items()}, line, lines.get(prefix + (0,)),
               _field_lines(lines, prefix + (i,), rec))


def _yaml_records(path: Path, text: str) -> Iterator[_Rec]:
    doc = load_yaml(path, text)
    if not isinstance(doc.data, list):
        raise ConfigError(path, 1, "expected a YAML list of records (- person: ...)")
    for i, rec in enumerate(doc.data):
        line = doc.lines.get((i,))
        if not isinstance(rec, dict):
            raise ConfigError(path, line, f"record {i + 1} is not a mapping")
        yield rec, line, doc.lines.get((0,)), _field_lines(doc.lines, (i,), rec)


def _field_lines(lines: dict[tuple[str | int, ...], int], key: tuple[str | int, ...],
                 rec: dict[str, Any]) -> dict[str, int]:
    return {str(k): lines[key + (k,)] for k in rec if key + (k,) in lines}


def _convert(path: Path, line: int | None, number: int, col: _Column, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if col.required:
            raise ConfigError(path, line, f"record {number}: {col.name!r} is empty; fill it in")
        return None
    try:
        if col.type == "date":
            return parse_date(value)
        if col.type == "date-time":
            return parse_datetime(value)
        if col.type == "boolean":
            return parse_bool(value)
    except ValueError as exc:
        raise ConfigError(path, line, f"record {number}: {col.name!r}: {exc}") from None
    return str(value)


def parse_date(value: Any) -> date:
    """``2026-11-02`` (a date-time is cut to its date); a YAML date stays a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def parse_datetime(value: Any) -> datetime:
    """ISO 8601 date-time; no zone means UTC; a plain date means its midnight UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date-time; write it as ISO 8601, "
                             f"e.g. 2026-11-02T08:15:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true/false (yes/no, 1/0, healthy/unhealthy)")


def check_registers(catalogue: Catalogue, inventory: Inventory) -> None:
    """Preflight: load every organisation and device register the inventory names."""
    from controlcheck.model import TargetKind

    regs = inventory.organisation.get("registers", {})
    for key, kind in ORG_REGISTERS.items():
        if key in regs:
            load_register(inventory.resolve(regs[key]), kind)
    for target in inventory.of_kind(TargetKind.DEVICES):
        load_register(inventory.resolve(target.spec["assets"]), "assets")
        path = inventory.resolve(target.spec["register"])
        load_register(path, detect_kind(path, DEVICE_AV_KINDS))
