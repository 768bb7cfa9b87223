"""`scadeploy compile`: strip a checkpoint and lower it to deployment targets."""

from __future__ import annotations

import click

from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.cli.inspect_cmd import channel_table
from scadeploy.targets import available_targets


@click.command("compile")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to create (written atomically).")
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME",
              help=f"Deployment target, repeatable: {', '.join(available_targets())} or a .toml file.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@json_option
@handles_errors
def command(checkpoint: str, out_dir: str, targets: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Strip the masked channels of CHECKPOINT and write DIR/stripped.pt, DIR/manifest.json and target files.

    A masked channel is removed only when it provably never spikes; the stripped model is then run
    against the masked one on real inputs and the agreement is recorded in the manifest.

    \b
    Example:
      scadeploy compile digits.pt -o out
      scadeploy compile digits.pt -o out --target onnx-cpu --target loihi2-sim --force
    """
    from scadeploy.compiler import compile_checkpoint

    result, manifest = compile_checkpoint(checkpoint, out_dir, targets, force)
    if as_json:
        echo_json(manifest)
        return
    out = console()
    out.print(channel_table(manifest, len(result.report.kept)))
    p = result.parity
    verdict = "[green]exact[/]" if p.exact else "[red]MISMATCH[/]"
    out.print(f"stripped vs masked on {p.samples} inputs: {verdict} "
                  f"({p.spike_mismatches} of {p.spikes_compared:,} spikes differ in float64, "
                  f"{p.spike_mismatches_f32} in float32, max |logit diff| "
                  f"{p.max_logit_diff_f64:.2g} in float64, {p.max_logit_diff_f32:.2g} in float32)")
    for name, section in manifest["targets"].items():
        out.print(f"target {name}: {', '.join(section.get('files', []))}; {target_summary(section)}")
    out.print(f"wrote {out_dir}/")


def target_summary(section: dict) -> str:
    """One line of measured parity (and resources) for a target's manifest section."""
    parity = section.get("parity", {})
    if section.get("backend") == "onnx":
        verdict = "ok" if parity.get("passed") else "ABOVE TOLERANCE"
        return (f"ONNX vs torch reference: max |logit diff| {parity.get('max_logit_diff', float('nan')):.2g} "
                f"({verdict}), class agreement {parity.get('class_agreement', 0):.0%}, "
                f"{parity.get('spike_flips', 0)} spike flips")
    if section.get("backend") == "lava":
        measured = parity.get("emulator_vs_quantized_ir", {})
        vs_float = parity.get("emulator_vs_float", {})
        cores = section.get("resources", {}).get("cores")
        verdict = "exact" if parity.get("exact") is True else "NOT exact"
        approximate = parity.get("approximate_layers") or []
        why = f" (approximate layers: {', '.join(approximate)})" if approximate else ""
        return (f"fixed point {verdict}{why}: {measured.get('spike_mismatches', '?')} of "
                f"{measured.get('spikes_compared', '?')} spikes differ from the integer graph, "
                f"class agreement with float {vs_float.get('class_agreement', 0):.0%}, {cores} neuro cores "
                "(planning estimate)")
    return ""
