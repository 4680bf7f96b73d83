"""Load YAML and JSON-Schema-validate it, keeping file:line for every error.

PyYAML's composed node tree knows each value's line; we walk it once while
constructing plain Python data and remember the line of every path
(``("controls", 3, "checks", 0, "id") -> 42``).  A jsonschema error then maps
back through its ``absolute_path`` to the line a user must edit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PathKey = tuple[str | int, ...]


class ConfigError(Exception):
    """A user-supplied file is wrong; the message names file:line and the fix."""

    def __init__(self, file: str | Path, line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class Document:
    """Parsed data plus where each part of it came from."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, key: Iterable[str | int]) -> int | None:
        """Line of the deepest known prefix of ``key`` (1-based)."""
        parts = tuple(key)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)

    def error(self, key: Iterable[str | int], message: str) -> ConfigError:
        return ConfigError(self.path, self.line_of(key), message)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (YAML silently keeps the last).

    Timestamps stay strings: schemas check them with ``format: date``, an
    impossible date like 2026-02-30 becomes a schema error with its line
    instead of a crash, and an unquoted date validates like a quoted one.
    """


_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct(node: yaml.Node, loader: yaml.SafeLoader, path: PathKey,
               lines: dict[PathKey, int], file: Path) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, str | int | bool | float) and key is not None:
                raise ConfigError(file, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            if key in out:
                raise ConfigError(file, key_node.start_mark.line + 1,
                                  f"duplicate key {key!r}; remove one of the two")
            skey = key if isinstance(key, str) else str(key)
            out[skey] = _construct(value_node, loader, path + (skey,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, path + (i,), lines, file) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a malformed !!binary or !!float
        raise ConfigError(file, node.start_mark.line + 1, f"cannot read value: {exc}") from None


def load_yaml(path: Path, text: str | None = None) -> Document:
    """Parse one YAML file; syntax errors become ``ConfigError`` with the line."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(path, None, "file not found") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(path, None, f"not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise ConfigError(path, None, f"cannot read: {exc.strerror}") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[PathKey, int] = {}
        data = None if node is None else _construct(node, loader, (), lines, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or str(exc)
        raise ConfigError(path, line, f"invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Document(path=path, data=data, lines=lines)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped inside the package (``controlcheck/data/schemas``)."""
    ref = resources.files("controlcheck") / "data" / "schemas" / name
    loaded: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return loaded


def validate(doc: Document, schema_name: str) -> None:
    """Raise the first schema violation (in file order) as a ``ConfigError``."""
    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return

    def sort_key(err: jsonschema.ValidationError) -> tuple[int, int]:
        return (doc.line_of(err.absolute_path) or 0, -len(err.absolute_path))

    err = min(errors, key=sort_key)
    # Descend into "anyOf/oneOf" to the most specific reason.
    best = jsonschema.exceptions.best_match([err] + list(err.context or []))
    path = list(best.absolute_path)
    if best.validator == "additionalProperties" and isinstance(best.instance, dict):
        extra = sorted(set(best.instance) - set(best.schema.get("properties", {})))
        if extra:  # point at the offending key, not at its parent mapping
            path.append(extra[0])
    where = "/".join(str(p) for p in best.absolute_path) or "(top level)"
    raise doc.error(path, f"{where}: {_explain(best)}")


def _explain(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        known = ", ".join(sorted(err.schema.get("properties", {})))
        return f"unknown key {', '.join(map(repr, extra))}; allowed keys: {known}"
    if err.validator == "required":
        return f"{err.message}; add it"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    if err.validator == "type":
        return f"{err.instance!r} should be of type {err.validator_value}"
    return err.message
