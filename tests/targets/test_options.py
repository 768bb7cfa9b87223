"""The one option parser: kinds, ranges and defaults declared on the field, every problem in one error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pytest

from scadeploy.errors import TargetError
from scadeploy.targets.options import choice, choices_of, declared, flag, integer, parse_table, real, table
from scadeploy.targets.registry import BACKENDS


@dataclass(frozen=True)
class Inner:
    count: int = integer(2, 1, 9)


@dataclass(frozen=True)
class Example:
    size: int = integer(4, 1, 8, why="eight lanes")
    mode: str = choice("fast", ("fast", "exact"))
    on: bool = flag(False)
    step: float = real(0.5, 0.0, 1.0)
    inner: Inner = table(Inner)


def _parse(raw: object) -> Example:
    return parse_table(Example, raw, "example", "target 't'")


def test_missing_keys_take_the_declared_defaults_and_integers_become_floats() -> None:
    assert _parse({}) == Example()
    parsed = _parse({"size": 8, "step": 1, "inner": {"count": 9}})
    assert parsed == Example(size=8, step=1.0, inner=Inner(9)) and isinstance(parsed.step, float)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"size": 9}, "[example] size must be an integer in 1..8, got 9"),
    ({"size": True}, "[example] size must be an integer in 1..8, got True"),
    ({"size": 4.0}, "[example] size must be an integer in 1..8, got 4.0"),
    ({"mode": "slow"}, "[example] mode must be one of fast, exact, got 'slow'"),
    ({"on": 1}, "[example] on must be true or false, got 1"),
    ({"step": float("nan")}, "[example] step must be a finite number in (0, 1], got nan"),
    ({"step": 0}, "[example] step must be a finite number in (0, 1], got 0"),
    ({"inner": {"count": 0}}, "[example.inner] count must be an integer in 1..9, got 0"),
    ({"inner": [1]}, "[example] inner must be a table, got [1]"),
    ({"sise": 4}, "unknown [example] options ['sise']"),
])
def test_each_bad_value_is_named_with_its_table(raw: dict, expected: str) -> None:
    with pytest.raises(TargetError) as info:
        _parse(raw)
    assert info.value.message == f"target 't': {expected}"


def test_problems_are_joined_and_hints_say_why() -> None:
    with pytest.raises(TargetError) as info:
        _parse({"sise": 4, "size": 0, "inner": {"count": 10}})
    assert info.value.message.count(";") == 2
    assert info.value.hint == "known [example] options: size, mode, on, step, inner; eight lanes"


def test_a_field_without_a_kind_is_a_declaration_error() -> None:
    @dataclass(frozen=True)
    class Undeclared:
        size: int = field(default=1)

    with pytest.raises(TypeError, match="option field 'size' has no kind"):
        declared(Undeclared)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backends_defaults_pass_its_own_declaration(backend: str) -> None:
    options = BACKENDS[backend].options
    assert parse_table(options, asdict(options()), backend, "defaults") == options()


def test_choices_are_read_from_the_declaration() -> None:
    assert choices_of(Example, "mode") == ("fast", "exact")
    with pytest.raises(TypeError, match="not a choice"):
        choices_of(Example, "size")
