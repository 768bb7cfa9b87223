"""Every command teaches: `--help` works, shows an example, and the group lists every command."""

from __future__ import annotations

import pytest
from support import invoke

from scadeploy.cli import COMMANDS


def test_group_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert all(name in result.stdout for name in COMMANDS)
    assert "_SCADEPLOY_COMPLETE" in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_has_an_example(name: str) -> None:
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout and f"scadeploy {name}" in result.stdout
    if name != "targets":
        assert "--json" in result.stdout


def test_unknown_command_exits_2() -> None:
    result = invoke("deploy")
    assert result.exit_code == 2 and "No such command 'deploy'" in result.stderr
