"""The `scadeploy` command: a thin shell over the Python API. Each command lives in its own module.

Commands are imported only when run, so `scadeploy --help` answers at once without loading torch.
"""

from __future__ import annotations

import importlib
import logging

import click

from scadeploy import __version__

# name -> (module defining `command`, one-line summary shown by `scadeploy --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("scadeploy.cli.train", "Train an SNN with SCA channel pruning and write a checkpoint."),
    "sweep": ("scadeploy.cli.sweep_cmd", "Keep ratios against dense and from-scratch baselines: accuracy-cost plot."),
    "inspect": ("scadeploy.cli.inspect_cmd", "Channels kept per layer, params and MACs before/after stripping."),
    "compile": ("scadeploy.cli.compile_cmd", "Strip a checkpoint and lower it to deployment targets."),
    "benchmark": ("scadeploy.cli.benchmark", "Time the stripped model against the masked one on every runner."),
    "simulate": ("scadeploy.cli.simulate", "Run the fixed-point model on Lava or the bit-exact emulator."),
    "targets": ("scadeploy.cli.targets_cmd", "List the deployment targets."),
    "demo": ("scadeploy.cli.demo_cmd", "The whole pipeline on the built-in digits data, with a summary."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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

    \b
    Shell completion (bash; zsh and fish work the same way):
      eval "$(_SCADEPLOY_COMPLETE=bash_source scadeploy)"
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
