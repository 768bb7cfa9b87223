"""`scadeploy simulate`: run a compiled model.net on its test set with the emulator or the Lava simulator."""

from __future__ import annotations

import click
from rich.table import Table
from tqdm import tqdm

from scadeploy.backends.lava.evaluate import SIM_BACKENDS, SimulationReport, simulate
from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.manifest import read_manifest


@click.command("simulate")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--backend", type=click.Choice(SIM_BACKENDS), default="emulator", show_default=True,
              help="emulator: bit-exact torch emulation of Lava's fixed point (fast); lava: the Lava CPU simulator.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Simulate only the first N test samples (default: the whole test split).")
@click.option("--device", default="cpu", show_default=True,
              help="Where the emulator runs: cpu or cuda[:i] (the Lava simulator always runs on the CPU).")
@json_option
@handles_errors
def command(out_dir: str, backend: str, samples: int | None, device: str, as_json: bool) -> None:
    """Simulate DIR/model.net (from `compile --target loihi2-sim`) on the checkpoint's test set.

    Reports accuracy, agreement with the float torch reference, per-layer firing rates, SynOps counted
    from the simulated spikes, and simulation speed.

    \b
    Example:
      scadeploy simulate out --backend emulator
      scadeploy simulate out --backend lava --samples 50 --json
    """
    read_manifest(out_dir)  # its fields checked here, before the simulator reads them
    with tqdm(total=samples, desc=f"simulate ({backend})", unit="sample", disable=None, leave=False,
              delay=0.5) as bar:
        report = simulate(out_dir, backend, samples, device, progress=bar.update)
    if as_json:
        echo_json(report.to_dict())
        return
    _print(report)


def _print(report: SimulationReport) -> None:
    out = console()
    out.print(f"{report.backend} on {report.samples} {report.dataset} test samples: accuracy "
              f"{report.accuracy:.2%} (float reference {report.float_accuracy:.2%}), same class as float "
              f"{report.agreement_with_float:.2%}")
    if report.emulator_spike_mismatches is not None:
        out.print(f"spikes differing from the emulator: {report.emulator_spike_mismatches}")
    table = Table("layer", "firing rate", "ACs / sample", "MACs / sample")
    for name, rate in report.firing_rates.items():
        ops = report.synops_per_sample.get(name, {})
        table.add_row(name, f"{rate:.4f}", f"{ops.get('acs', 0):,.0f}", f"{ops.get('macs', 0):,.0f}")
    for name, ops in report.synops_per_sample.items():
        if name not in report.firing_rates:
            table.add_row(f"{name} (readout)", "-", f"{ops['acs']:,.0f}", f"{ops['macs']:,.0f}")
    out.print(table)
    total = report.to_dict()["synops_total_per_sample"]
    out.print(f"SynOps per sample: {total['acs']:,.0f} ACs + {total['macs']:,.0f} MACs; "
              f"{report.steps} steps in {report.seconds:.2f} s = {report.steps_per_second:,.1f} steps/s")
