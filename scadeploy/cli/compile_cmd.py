"""`scadeploy compile`: strip a checkpoint (or a user's own model) and lower it to deployment targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.cli.inspect_cmd import channel_table, refused_line
from scadeploy.targets import available_targets

if TYPE_CHECKING:
    from scadeploy.artifact.manifest import Manifest


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


def parse_sensor_size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int, int] | None:
    """'W,H,P' (tonic's order: width, height, polarities) -> (W, H, P)."""
    size = parse_shape(ctx, param, value)
    if size is not None and len(size) != 3:
        raise click.BadParameter(f"'{value}' is not W,H,P (width, height, polarities), e.g. 34,34,2")
    return size


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
                   "optionally labels y; or event recordings as tonic gives them (structured x, y, t, p arrays: "
                   "one in a .npy, one per sample in a .npz, labels y), binned into T frames with --sensor-size.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of CIFAR batch files.")
@click.option("-T", "--timesteps", type=click.IntRange(1, 10_000), default=None,
              help="With --model: time steps (default: the sequence length of the data, else 4).")
@click.option("--input-shape", callback=parse_shape, metavar="C,H,W",
              help="With --model and no --data: the input shape; parity then runs on random frames.")
@click.option("--sensor-size", callback=parse_sensor_size, metavar="W,H,P",
              help="With event recordings as --data: the sensor's width, height and polarities (tonic's order); "
                   "they are binned like tonic's ToFrame(sensor_size, n_time_bins=T) into [T, N, P, H, W].")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@json_option
@handles_errors
def command(checkpoint: str, out_dir: str, targets: tuple[str, ...], model_spec: str | None, masks: str,
            data: str | None, data_dir: str | None, timesteps: int | None, input_shape: tuple[int, ...] | None,
            sensor_size: tuple[int, int, int] | None, force: bool, as_json: bool) -> None:
    """Strip the masked channels of a model and write DIR: manifest, graphs and each target's files.

    CHECKPOINT is a scadeploy checkpoint (from `scadeploy train`); or, with --model, WEIGHTS is a
    plain state_dict of your own spikingjelly model; or a NIR graph file (`.nir`) from any framework,
    whose all-zero output channels are the masks. A masked channel is removed only when it
    provably never spikes; the traced graph is checked against your model, and the stripped model
    against the masked one, on real inputs; the agreement is recorded in DIR/manifest.json. DIR is
    self-contained: inspect, benchmark and simulate need nothing else, not your code. A target that
    refuses the model is listed with its reason and the others are still written; the exit code is 2
    only when every requested target refuses (then nothing is written) or a parity check fails.

    \b
    Examples:
      scadeploy compile digits.pt -o out --target onnx-cpu --target loihi2-sim
      scadeploy compile weights.pt --model mynets.dvs:build --data events.npz -o out -t onnx-cpu
      scadeploy compile weights.pt --model nets/my_net.py:build --input-shape 2,34,34 -T 8 -o out
      scadeploy compile weights.pt --model mynets.dvs:build --data recordings.npz --sensor-size 34,34,2 -T 8 -o out
      scadeploy compile exported.nir -T 4 --data digits -o out -t onnx-cpu -t loihi2-sim -t nir
    """
    from scadeploy.compiler import compile_checkpoint, compile_nir, compile_user_model

    if checkpoint.endswith(".nir"):
        if model_spec is not None or input_shape is not None or masks != "auto":
            raise click.UsageError("a NIR file carries its model, input shape and zeroed channels: drop --model, "
                                   "--input-shape and --masks")
        result, manifest = compile_nir(checkpoint, out_dir, targets, force, data, data_dir, timesteps, sensor_size)
    elif model_spec is None:
        if timesteps is not None or input_shape is not None or masks != "auto":
            raise click.UsageError("-T, --input-shape and --masks apply to --model; a checkpoint carries them")
        result, manifest = compile_checkpoint(checkpoint, out_dir, targets, force, data, data_dir, sensor_size)
    else:
        result, manifest = compile_user_model(checkpoint, model_spec, out_dir, targets, force, masks, data,
                                              data_dir, input_shape, timesteps, sensor_size)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if as_json:
        echo_json(manifest.to_dict())
        return
    _print(result, manifest, out_dir)


def _print(result, manifest: Manifest, out_dir: str) -> None:
    out = console()
    out.print(channel_table(manifest.costs, len(result.report.kept)))
    if result.inferred_masks:
        listed = ", ".join(f"{row.layer} {row.masked}" for row in manifest.costs.layers if row.masked) or "none"
        out.print(f"masks inferred from zeroed weights: {listed}")
    peer = manifest.source.details.get("nir_vs_spikingjelly") if manifest.source else None
    if peer is not None:
        out.print(f"the NIR file read by scadeploy vs spikingjelly's NIR importer: {_peer_line(peer)}")
    f = result.fidelity
    if f is not None:
        out.print(f"traced graph vs your model on {f.samples} inputs: [green]agrees[/] ({f.spike_summary()} at "
                  f"{f.neuron_layers_compared} neuron layers, max |logit diff| {f.max_logit_diff:.2g} in float64)")
    p = result.parity
    verdict = "[green]exact[/]" if p.exact else "[red]MISMATCH[/]"
    f64, f32 = p.float64, p.float32
    out.print(f"stripped vs masked on {f64.samples} inputs ({manifest.data_label or 'given'}): {verdict} "
              f"(float64: {f64.spike_summary()}, max |logit diff| {f64.max_logit_diff:.2g}; "
              f"float32: {f32.spike_summary()}, max |logit diff| {f32.max_logit_diff:.2g})")
    for name, target in manifest.targets.items():
        out.print(f"target {name}: {', '.join(target.files)}; {target_summary(target.to_dict())}")
    for name, refusal in manifest.refused.items():
        out.print(refused_line(name, refusal.reason), soft_wrap=True)
    out.print(f"wrote {out_dir}/")


def target_summary(section: dict) -> str:
    """One line of measured parity (and resources) for a target's manifest section."""
    from scadeploy.ir.agreement import Agreement  # torch: imported when a summary is printed, not for --help

    parity = section.get("parity", {})
    if section.get("backend") in ("onnx", "openvino"):
        record = Agreement.from_dict(parity)
        verdict = "ok" if record.passed else "[red]MISMATCH[/]"
        runtime = "ONNX" if section["backend"] == "onnx" else f"OpenVINO ({record.arithmetic})"
        return (f"{runtime} vs torch reference: max |logit diff| {record.max_logit_diff:.2g} ({verdict}), "
                f"class agreement {record.class_agreement:.0%}, {record.spike_summary()}")
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
    from scadeploy.ir.agreement import Agreement

    record = Agreement.from_dict(parity)
    verdict = ("[red]MISMATCH[/]" if not record.passed else "[green]spike-exact[/]" if record.spike_mismatches == 0
               else "[green]ties only[/]")
    return (f"{verdict} ({record.spike_summary()} at {record.neuron_layers_compared} neuron layers, "
            f"max |logit diff| {record.max_logit_diff:.2g})")
