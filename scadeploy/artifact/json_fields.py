"""Typed reads of the JSON values of a manifest, each failure naming the field and what it must be.

A compiled directory is user input once it is on disk, so every value is checked before a dataclass
holds it. The readers raise `Malformed`, whose text is the dotted field and the rule ("targets.x.files
must list file names inside the directory"); `Manifest.from_dict` turns it into one ArtifactError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from scadeploy.artifact.layout import is_file_name

T = TypeVar("T")


class Malformed(ValueError):
    """One field of a manifest is missing or of the wrong type; the text names it."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Malformed(what)


def an_object(value: object, where: str, what: str = "must be an object") -> dict[str, Any]:
    expect(isinstance(value, dict), f"{where} {what}")
    return value  # type: ignore[return-value]


def a_string(value: object, where: str) -> str:
    expect(isinstance(value, str), f"{where} must be a string")
    return value  # type: ignore[return-value]


def an_int(value: object, where: str, low: int = 0, high: int | None = None) -> int:
    """An integer in [low, high] (JSON's true and false are not integers)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    expect(ok, f"{where} must be an integer >= {low}" + (f" and <= {high}" if high is not None else ""))
    return value  # type: ignore[return-value]


def a_shape(value: object, where: str) -> tuple[int, ...]:
    ok = isinstance(value, list) and bool(value) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)
    expect(ok, f"{where} must be a non-empty list of positive integers")
    return tuple(value)  # type: ignore[arg-type]


def a_file_name(value: object, where: str) -> str:
    expect(is_file_name(value), f"{where} must be a file name inside the directory")
    return value  # type: ignore[return-value]


def optional(read: Callable[[object, str], T], value: object, where: str) -> T | None:
    """`read(value)`, or None when the field is absent or null."""
    return None if value is None else read(value, where)


def objects_by_name(value: object, where: str, read: Callable[[object, str], T]) -> dict[str, T]:
    """An object of named entries (`targets`, `refused`), each read by `read` as `where.name`."""
    return {name: read(entry, f"{where}.{name}") for name, entry in an_object(value, where).items()}


# Annotation of a flat record's field -> its reader. A field typed `X | None` may be absent.
_SCALARS: dict[str, Callable[[object, str], object]] = {"str": a_string, "int": an_int}


def a_record(cls: type[T], value: object, where: str, what: str | None = None) -> T:
    """A flat frozen dataclass of str and int fields read from an object with exactly those keys.

    `what` replaces the rule in the message ("must be an object with a backend and a reason").
    """
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    required = {name for name, kind in fields.items() if not kind.endswith("| None")}
    rule = what or f"must be an object with the fields {', '.join(fields)}"
    raw = an_object(value, where, rule)
    expect(required <= set(raw) <= set(fields), f"{where} {rule}")
    try:
        return cls(**{key: _SCALARS[fields[key].removesuffix(" | None")](item, f"{where}.{key}")
                      for key, item in raw.items()})
    except Malformed as exc:
        raise Malformed(f"{where} {what}" if what else str(exc)) from exc


def plain(value: object) -> Any:
    """A JSON-ready copy of a record's value: tuples as lists, nested records as objects, mappings as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value
