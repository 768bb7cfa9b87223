"""`scadeploy inspect`: what a checkpoint holds and what stripping it would give."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from scadeploy.cli.common import console, echo_json, handles_errors, json_option

if TYPE_CHECKING:
    from scadeploy.artifact.manifest_parts import CostSummary


def _fmt(n: int) -> str:
    return f"{n:,}"


def refused_line(name: str, reason: str) -> str:
    """A refused target as one line (print it with soft_wrap=True): its name and why; the reason is not markup."""
    return f"target {name}: [yellow]refused[/] at compile, no files: {escape(reason)}"


def channel_table(summary: CostSummary, kept_masked: int) -> Table:
    table = Table(title="channels, parameters and dense MACs (per sample and time step)")
    for col in ("layer", "channels kept/total", "masked", "params before", "params after", "MACs before",
                "MACs after"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for row in summary.layers:
        table.add_row(row.layer, f"{row.channels_after}/{row.channels_before}", str(row.masked),
                      _fmt(row.params_before), _fmt(row.params_after), _fmt(row.dense_macs_before),
                      _fmt(row.dense_macs_after))
    p, m = summary.params, summary.dense_macs_per_step
    table.add_row("total", "", "", _fmt(p.before), _fmt(p.after), _fmt(m.before), _fmt(m.after), style="bold")
    if kept_masked:
        table.caption = f"{kept_masked} masked channels are kept because they are not provably silent"
    return table


@click.command("inspect")
@click.argument("path", metavar="CHECKPOINT|DIR", type=click.Path())
@click.option("--graph", "show_graph", is_flag=True, help="Also print the IR, one line per node.")
@json_option
@handles_errors
def command(path: str, show_graph: bool, as_json: bool) -> None:
    """Show per layer the channels a checkpoint keeps, and parameters and dense MACs before/after stripping.

    Given a compiled directory (from `scadeploy compile`), show what it holds instead: the same table,
    the data and parity it was compiled with, and its targets, read from DIR alone.

    \b
    Example:
      scadeploy inspect digits.pt
      scadeploy inspect digits.pt --json | jq .params
      scadeploy inspect out --graph
    """
    if Path(path).is_dir():
        _inspect_compiled(Path(path), show_graph, as_json)
        return
    from scadeploy.compiler import cost_summary
    from scadeploy.frontends.checkpoint import load_checkpoint
    from scadeploy.frontends.trace import trace_model
    from scadeploy.ir.format import format_graph
    from scadeploy.ir.passes.strip_channels import strip_channels

    ckpt = load_checkpoint(path)
    masked = trace_model(ckpt.build(), ckpt.input_shape, ckpt.timesteps)
    stripped, report = strip_channels(masked, ckpt.masks)
    summary = cost_summary(masked, stripped, report)
    info = {"checkpoint": path, "arch": ckpt.arch, "timesteps": ckpt.timesteps,
            "input_shape": list(ckpt.input_shape), "num_classes": ckpt.num_classes, "meta": ckpt.meta}
    if as_json:
        echo_json(info | summary.to_dict() | {"kept_masked_channels": report.to_dict()["kept_masked_channels"]})
        return
    out = console()
    out.print(f"[bold]{path}[/]: {ckpt.arch['name']}, T={ckpt.timesteps}, input "
              f"{'x'.join(map(str, ckpt.input_shape))}, {ckpt.num_classes} classes")
    out.print(channel_table(summary, len(report.kept)))
    for kept in report.kept[:10]:
        out.print(f"kept {kept.layer}[{kept.channel}]: {kept.reason}")
    if show_graph:
        out.print(format_graph(masked), markup=False, highlight=False)


def _inspect_compiled(path: Path, show_graph: bool, as_json: bool) -> None:
    from scadeploy.artifact.directory import open_compiled
    from scadeploy.ir.format import format_graph

    compiled = open_compiled(path)
    graph = compiled.graph("stripped")  # validates the graph files even when only the table is shown
    manifest = compiled.manifest
    if as_json:
        echo_json(manifest.to_dict() | ({"graph": format_graph(graph).splitlines()} if show_graph else {}))
        return
    out = console()
    source = manifest.source.path if manifest.source else "?"
    out.print(f"[bold]{path}[/]: T={graph.timesteps}, {manifest.model.encoding.value} input "
              f"{'x'.join(map(str, graph.input.shape))}, output {'x'.join(map(str, graph.output.shape))}; "
              f"compiled from {source} on {manifest.data_label or '?'}")
    out.print(channel_table(manifest.costs, len(manifest.kept_masked_channels)))
    for key, record in manifest.parity.items():
        verdict = record.get("exact", record.get("passed"))  # a strip record, or an `Agreement`
        out.print(f"{key.replace('_', ' ')}: {'ok' if verdict else 'MISMATCH'}")
    for name, target in manifest.targets.items():
        out.print(f"target {name}: {', '.join(target.files)}")
    for name, refusal in manifest.refused.items():
        out.print(refused_line(name, refusal.reason), soft_wrap=True)
    if show_graph:
        out.print(format_graph(graph), markup=False, highlight=False)
