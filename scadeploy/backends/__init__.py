"""Backends: IR -> artifact, artifact -> runner. `torch_ref` is the oracle."""
