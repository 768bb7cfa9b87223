"""The `scadeploy` command: a thin shell over the Python API. Each command lives in its own module."""

from __future__ import annotations

import logging

import click

from scadeploy import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Show details and full tracebacks.")
@click.version_option(__version__, prog_name="scadeploy")
def main(verbose: bool) -> None:
    """Strip SCA-pruned spiking networks into smaller dense ones and deploy them.

    \b
    Typical flow:
      scadeploy train --model digits --keep 0.3 -o digits.pt
      scadeploy inspect digits.pt
      scadeploy compile digits.pt -o out --target onnx-cpu --target loihi2-sim
      scadeploy benchmark out
      scadeploy simulate out --backend emulator
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


def _register() -> None:
    from scadeploy.cli import benchmark, compile_cmd, inspect_cmd, targets_cmd

    for module in (inspect_cmd, compile_cmd, targets_cmd, benchmark):
        main.add_command(module.command)
    from scadeploy.cli.simulate import command as simulate_command
    main.add_command(simulate_command)
    from scadeploy.cli.train import command as train_command
    main.add_command(train_command)


_register()
