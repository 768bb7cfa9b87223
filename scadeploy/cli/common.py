"""Shared CLI pieces: the --json flag, JSON output, and the error boundary of every command."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from scadeploy.errors import ScadeployError

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")


def console() -> Console:
    """A rich console that stays readable (120 columns) when output is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 120)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def fail(error: ScadeployError) -> None:
    """Print one readable line (two with a hint) to stderr and exit with the error's code."""
    click.secho(f"error: {error.message}", fg="red", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(error.exit_code)


def handles_errors(fn: Callable) -> Callable:
    """Turn ScadeployError into one line and an exit code; `-v` (on the group) shows the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScadeployError as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and ctx.find_root().params.get("verbose"):
                raise
            fail(exc)

    return wrapper
