"""`scadeploy targets`: the deployment targets `compile --target` accepts."""

from __future__ import annotations

from dataclasses import asdict

import click
from rich.table import Table

from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.targets import available_targets, load_target


@click.command("targets")
@json_option
@handles_errors
def command(as_json: bool) -> None:
    """List the deployment targets in targets/*.toml (a .toml path also works wherever a name does).

    \b
    Example:
      scadeploy targets
    """
    targets = [load_target(name) for name in available_targets()]
    if as_json:
        echo_json([{"name": t.name, "backend": t.backend, "description": t.description, "file": str(t.path),
                    "options": asdict(t.options)} for t in targets])
        return
    table = Table(title="deployment targets")
    for col in ("name", "backend", "description"):
        table.add_column(col)
    for t in targets:
        table.add_row(t.name, t.backend, t.description)
    console().print(table)
