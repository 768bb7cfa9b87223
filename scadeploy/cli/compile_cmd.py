"""`scadeploy compile`: strip a checkpoint (or a user's own model) and lower it to deployment targets."""

from __future__ import annotations

import click

from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.cli.inspect_cmd import channel_table
from scadeploy.targets import available_targets


def parse_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """'C,H,W' -> (C, H, W) of positive integers."""
    if value is None:
        return None
    try:
        shape = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not comma-separated integers, e.g. 2,34,34") from None
    if not shape or any(d < 1 or d > 1 << 16 for d in shape):
        raise click.BadParameter(f"'{value}': every dimension must be between 1 and 65536")
    return shape


@click.command("compile")
@click.argument("checkpoint", metavar="CHECKPOINT|WEIGHTS|NIR", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to create (written atomically).")
@click.option("-t", "--target", "targets", multiple=True, metavar="NAME",
              help=f"Deployment target, repeatable: {', '.join(available_targets())} or a .toml file.")
@click.option("--model", "model_spec", metavar="MODULE:FACTORY",
              help="Your own model: an import path (pkg.mod:build) or file (nets/my.py:build) of a function "
                   "returning the multi-step spikingjelly nn.Module; then WEIGHTS is its plain state_dict.")
@click.option("--masks", default="auto", show_default=True, metavar="auto|FILE",
              help="With --model: 'auto' reads masks off zeroed filters (and BN gamma/beta), or a .pt/.npz "
                   "dict of layer name -> 0/1 vector (1 = kept).")
@click.option("--data", metavar="NAME|FILE",
              help="Inputs for parity (and later benchmark/simulate): digits, digits-events, cifar10 (with "
                   "--data-dir), or a .npz/.pt holding x (frames [N,C,H,W] or a sequence [T,N,C,H,W]) and "
                   "optionally labels y.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of CIFAR batch files.")
@click.option("-T", "--timesteps", type=click.IntRange(1, 10_000), default=None,
              help="With --model: time steps (default: the sequence length of the data, else 4).")
@click.option("--input-shape", callback=parse_shape, metavar="C,H,W",
              help="With --model and no --data: the input shape; parity then runs on random frames.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@json_option
@handles_errors
def command(checkpoint: str, out_dir: str, targets: tuple[str, ...], model_spec: str | None, masks: str,
            data: str | None, data_dir: str | None, timesteps: int | None, input_shape: tuple[int, ...] | None,
            force: bool, as_json: bool) -> None:
    """Strip the masked channels of a model and write DIR: manifest, graphs and each target's files.

    CHECKPOINT is a scadeploy checkpoint (from `scadeploy train`); or, with --model, WEIGHTS is a
    plain state_dict of your own spikingjelly model; or a NIR graph file (`.nir`) from any framework,
    whose all-zero output channels are the masks. A masked channel is removed only when it
    provably never spikes; the traced graph is checked against your model, and the stripped model
    against the masked one, on real inputs; the agreement is recorded in DIR/manifest.json. DIR is
    self-contained: inspect, benchmark and simulate need nothing else, not your code.

    \b
    Examples:
      scadeploy compile digits.pt -o out --target onnx-cpu --target loihi2-sim
      scadeploy compile weights.pt --model mynets.dvs:build --data events.npz -o out -t onnx-cpu
      scadeploy compile weights.pt --model nets/my_net.py:build --input-shape 2,34,34 -T 8 -o out
      scadeploy compile exported.nir -T 4 --data digits -o out -t onnx-cpu -t loihi2-sim -t nir
    """
    from scadeploy.compiler import compile_checkpoint, compile_nir, compile_user_model

    if checkpoint.endswith(".nir"):
        if model_spec is not None or input_shape is not None or masks != "auto":
            raise click.UsageError("a NIR file carries its model, input shape and zeroed channels: drop --model, "
                                   "--input-shape and --masks")
        result, manifest = compile_nir(checkpoint, out_dir, targets, force, data, data_dir, timesteps)
    elif model_spec is None:
        if timesteps is not None or input_shape is not None or masks != "auto":
            raise click.UsageError("-T, --input-shape and --masks apply to --model; a checkpoint carries them")
        result, manifest = compile_checkpoint(checkpoint, out_dir, targets, force, data, data_dir)
    else:
        result, manifest = compile_user_model(checkpoint, model_spec, out_dir, targets, force, masks, data,
                                              data_dir, input_shape, timesteps)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if as_json:
        echo_json(manifest)
        return
    _print(result, manifest, out_dir)


def _print(result, manifest: dict, out_dir: str) -> None:
    out = console()
    out.print(channel_table(manifest, len(result.report.kept)))
    if result.inferred_masks:
        masked = {row["layer"]: row["masked"] for row in manifest["layers"] if row["masked"]}
        listed = ", ".join(f"{k} {v}" for k, v in masked.items()) or "none"
        out.print(f"masks inferred from zeroed weights: {listed}")
    peer = (manifest.get("source") or {}).get("nir_vs_spikingjelly")
    if peer is not None:
        out.print(f"the NIR file read by scadeploy vs spikingjelly's NIR importer: {_peer_line(peer)}")
    f = result.fidelity
    if f is not None:
        out.print(f"traced graph vs your model on {f.samples} inputs: [green]agrees[/] ({f.spike_mismatches} of "
                  f"{f.spikes_compared:,} spikes at {f.neurons_compared} neuron layers differ, max |logit diff| "
                  f"{f.max_logit_diff:.2g} in float64)")
    p = result.parity
    verdict = "[green]exact[/]" if p.exact else "[red]MISMATCH[/]"
    out.print(f"stripped vs masked on {p.samples} inputs ({manifest['data'].get('label', 'given')}): {verdict} "
              f"({p.spike_mismatches} of {p.spikes_compared:,} spikes differ in float64, "
              f"{p.spike_mismatches_f32} in float32, max |logit diff| "
              f"{p.max_logit_diff_f64:.2g} in float64, {p.max_logit_diff_f32:.2g} in float32)")
    for name, section in manifest["targets"].items():
        out.print(f"target {name}: {', '.join(section.get('files', []))}; {target_summary(section)}")
    out.print(f"wrote {out_dir}/")


def target_summary(section: dict) -> str:
    """One line of measured parity (and resources) for a target's manifest section."""
    parity = section.get("parity", {})
    if section.get("backend") in ("onnx", "openvino"):
        verdict = "ok" if parity.get("passed") else "ABOVE TOLERANCE"
        runtime = "ONNX" if section["backend"] == "onnx" else f"OpenVINO ({parity.get('precision', '?')})"
        return (f"{runtime} vs torch reference: max |logit diff| {parity.get('max_logit_diff', float('nan')):.2g} "
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
    if section.get("backend") == "nir":
        return f"dt {section.get('dt')} s; spikingjelly's NIR importer vs torch reference: " + _peer_line(parity)
    return ""


def _peer_line(parity: dict) -> str:
    if "skipped" in parity:
        return f"not checked ({parity['skipped']})"
    verdict = "[green]spike-exact[/]" if parity.get("spike_mismatches") == 0 else "[red]MISMATCH[/]"
    return (f"{verdict} ({parity.get('spike_mismatches')} of {parity.get('spikes_compared', 0):,} spikes at "
            f"{parity.get('neuron_layers_compared')} neuron layers differ, max |logit diff| "
            f"{parity.get('max_logit_diff', float('nan')):.2g})")
