"""The Lava backend: IR -> Loihi fixed point -> netx file, an integer emulator, and the Lava simulator.

Modules: `rewrites` (IR rewrites Lava needs), `net` (lowering to a `FixedNet`), `netx` (the HDF5
network file), `emulator` (bit-exact integer simulation), `process_graph` and `runner` (Lava
processes and runs), `resources` (core planning), `spike_stats`, `evaluate` (accuracy and SynOps
over a dataset), `compat` (Lava on Python 3.11), `export` (the target: check, write, parity).
"""
