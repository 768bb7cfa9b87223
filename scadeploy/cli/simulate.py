"""`scadeploy simulate`: run a compiled model.net on its test set with the emulator or the Lava simulator."""

from __future__ import annotations

import click
from rich.table import Table
from tqdm import tqdm

from scadeploy.backends.lava.evaluate import SIM_BACKENDS, SimulationReport, simulate
from scadeploy.cli.common import console, echo_json, handles_errors, json_option


@click.command("simulate")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--backend", type=click.Choice(SIM_BACKENDS), default="emulator", show_default=True,
              help="emulator: bit-exact torch emulation of Lava's fixed point (fast); lava: the Lava CPU simulator.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Simulate only the first N test samples (default: the whole test split).")
@click.option("--data", metavar="NAME|FILE",
              help="Other inputs than those DIR was compiled with: a built-in name, a .npz/.pt with x (and y), "
                   "or event recordings (.npy/.npz of x, y, t, p), binned for the sensor the model takes.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of CIFAR batch files.")
@click.option("--device", default="cpu", show_default=True,
              help="Where the emulator runs: cpu or cuda[:i] (the Lava simulator always runs on the CPU).")
@json_option
@handles_errors
def command(out_dir: str, backend: str, samples: int | None, data: str | None, data_dir: str | None, device: str,
            as_json: bool) -> None:
    """Simulate DIR/model.net (from `compile --target loihi2-sim`) on the data DIR was compiled with.

    Reports accuracy (when the data has labels), agreement with the float torch reference, per-layer
    firing rates, SynOps counted from the simulated spikes, and simulation speed. Needs nothing but DIR.

    \b
    Example:
      scadeploy simulate out --backend emulator
      scadeploy simulate out --backend lava --samples 50 --json
      scadeploy simulate out --data other_events.npz
    """
    with tqdm(total=samples, desc=f"simulate ({backend})", unit="sample", disable=None, leave=False,
              delay=0.5) as bar:
        report = simulate(out_dir, backend, samples, device, progress=bar.update, data=data, data_dir=data_dir)
    if as_json:
        echo_json(report.to_dict())
        return
    _print(report)


def _print(report: SimulationReport) -> None:
    out = console()
    accuracy = ("no labels, so no accuracy" if report.accuracy is None else
                f"accuracy {report.accuracy:.2%} (float reference {report.float_accuracy:.2%})")
    out.print(f"{report.backend} on {report.samples} samples of {report.inputs}: {accuracy}, same class as "
              f"float {report.agreement_with_float:.2%}")
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
