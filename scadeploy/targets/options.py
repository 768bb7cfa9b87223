"""Typed target options: each field of a backend's options dataclass declares its kind, range and
default, and `parse_table` is the one reader of a target's [backend] table into that dataclass.

hls4ml's ConfigurableAttribute / ChoiceAttribute, carried on dataclass fields:

    @dataclass(frozen=True)
    class NirOptions:
        dt: float = real(1e-4, 0.0, 1.0, why="seconds per time step")

`parse_table` checks every key (unknown ones, each value's type and range) and raises one TargetError
listing every problem, so a bad target file fails when it is read and a backend gets typed values
that nothing checks again.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

from scadeploy.errors import TargetError

OPTION = "scadeploy.option"  # the field-metadata key of an Option
T = TypeVar("T")
Problem = tuple[str, str]  # (what is wrong, why the field holds what it holds; "" when nothing to add)


class Kind:
    """What values a field takes; `check` returns the typed value and the problems, if any."""

    def problem(self, value: object) -> str | None:
        raise NotImplementedError

    def check(self, value: object, table: str, name: str, why: str) -> tuple[object, list[Problem]]:
        problem = self.problem(value)
        return (None, [(f"[{table}] {name} {problem}", why)]) if problem else (value, [])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer(Kind):
    low: int
    high: int

    def problem(self, value: object) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
        return None if ok else f"must be an integer in {self.low}..{self.high}, got {value!r}"


@dataclass(frozen=True)
class Real(Kind):
    """A finite number in (low, high]; an integer is taken as a float."""

    low: float
    high: float

    def problem(self, value: object) -> str | None:
        ok = _is_number(value) and math.isfinite(value) and self.low < value <= self.high
        return None if ok else f"must be a finite number in ({self.low:g}, {self.high:g}], got {value!r}"

    def check(self, value: object, table: str, name: str, why: str) -> tuple[object, list[Problem]]:
        typed, problems = super().check(value, table, name, why)
        return (None if problems else float(typed)), problems


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...]

    def problem(self, value: object) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"


@dataclass(frozen=True)
class Flag(Kind):
    def problem(self, value: object) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


@dataclass(frozen=True)
class Table(Kind):
    """A nested table, read by the same parser into its own options dataclass."""

    options: type

    def problem(self, value: object) -> str | None:
        return None if isinstance(value, dict) else f"must be a table, got {value!r}"

    def check(self, value: object, table: str, name: str, why: str) -> tuple[object, list[Problem]]:
        problem = self.problem(value)
        if problem:
            return None, [(f"[{table}] {name} {problem}", why)]
        return read_table(self.options, value, f"{table}.{name}")


@dataclass(frozen=True)
class Option:
    kind: Kind
    why: str = ""  # the reason for the range, shown as the hint when a value is refused


def _field(default: object, kind: Kind, why: str) -> Any:
    return field(default=default, metadata={OPTION: Option(kind, why)})


def integer(default: int, low: int, high: int, why: str = "") -> Any:
    return _field(default, Integer(low, high), why)


def real(default: float, low: float, high: float, why: str = "") -> Any:
    return _field(default, Real(low, high), why)


def choice(default: str, choices: tuple[str, ...], why: str = "") -> Any:
    return _field(default, Choice(choices), why)


def flag(default: bool, why: str = "") -> Any:
    return _field(default, Flag(), why)


def table(options: type, why: str = "") -> Any:
    return field(default_factory=options, metadata={OPTION: Option(Table(options), why)})


def declared(options: type) -> dict[str, Option]:
    """Every field of an options dataclass with its Option, in declaration order."""
    return {f.name: _option(f) for f in fields(options)}


def choices_of(options: type, name: str) -> tuple[str, ...]:
    """The values a choice field declares, for the runtime code that maps each to its own setting."""
    kind = declared(options)[name].kind
    if not isinstance(kind, Choice):
        raise TypeError(f"option '{name}' of {options.__name__} is not a choice")
    return kind.choices


def _option(f: Field) -> Option:
    if OPTION not in f.metadata:
        raise TypeError(f"option field '{f.name}' has no kind: declare it with integer(), choice(), ...")
    return f.metadata[OPTION]


def read_table(options: type[T], raw: dict, table: str) -> tuple[T | None, list[Problem]]:
    """(the typed options, []) or (None, every problem), unknown keys first."""
    known = declared(options)
    unknown = sorted(set(raw) - set(known))
    problems: list[Problem] = []
    if unknown:
        problems.append((f"unknown [{table}] options {unknown}", f"known [{table}] options: {', '.join(known)}"))
    values = {}
    for name, value in raw.items():
        if name in known:
            values[name], found = known[name].kind.check(value, table, name, known[name].why)
            problems += found
    return (None, problems) if problems else (options(**values), [])


def parse_table(options: type[T], raw: object, table: str, where: str) -> T:
    """A target's [table] as `options`, or one TargetError (`where`: the target) naming every bad field."""
    if not isinstance(raw, dict):
        raise TargetError(f"{where}: [{table}] must be a table, got {raw!r}")
    parsed, problems = read_table(options, raw, table)
    if problems:
        hints = dict.fromkeys(why for _, why in problems if why)
        raise TargetError(f"{where}: " + "; ".join(text for text, _ in problems), "; ".join(hints) or None)
    return parsed
