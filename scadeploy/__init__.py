"""scadeploy: strip SCA-pruned spiking networks into smaller dense ones and deploy them.

`scadeploy.compile(model, masks, example_input, timesteps)` traces a spikingjelly model, checks the
trace against the model, removes its provably silent masked channels and measures the stripped
model against the masked one; `scadeploy.write_artifacts(result, out_dir, targets)` lowers the
result to deployment targets and writes a self-contained directory (the inputs included).
"""

__version__ = "0.1.0"


def compile(model, masks, example_input, timesteps, encoding="direct"):  # noqa: A001 - the public name users expect
    """See `scadeploy.compiler.compile_model`; masks None infers them from zeroed weights, `encoding`
    is "direct" (example_input holds frames [N, ...]) or "sequence" ([T, N, ...], e.g. events)."""
    from scadeploy.compiler import compile_model

    return compile_model(model, masks, example_input, timesteps, encoding)


def write_artifacts(result, out_dir, targets=(), force=False):
    """See `scadeploy.compiler.write_artifacts`."""
    from scadeploy.compiler import write_artifacts as write

    return write(result, out_dir, tuple(targets), force)
