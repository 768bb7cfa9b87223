"""Run a fixed-point network on Lava's CPU simulator (Loihi2SimCfg, fixed_pt) and read everything back.

Samples are fed back to back, T steps each, from a `RingBuffer`: a direct-encoded frame as the same
graded input message at each of its T steps, a sequence input (events) step by step, as binary
spike events when it is 0/1 (`message_bits` 0) and as graded messages otherwise. Every
layer resets u and v at the step the first frame of a sample reaches it (`reset_interval = T`,
offset `1 + depth`: Lava counts steps from 1 and a layer of depth d sees the frame sent at step s
at step s + d), so no state leaks between samples and a whole batch needs only N*T + latency steps.
Spikes are recorded by a sink on every layer; frame t of sample n of a layer with depth d is at
buffer index n*T + t + d. The readout's current u is read with a `Monitor` at index n*T + T - 1 + d.

Chains run through lava-dl's own `netx.hdf5.Network` loading `model.net`; anything else (residual
networks) through the process graph of `lava_graph`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scadeploy.backends.lava import process_graph as lava_graph
from scadeploy.backends.lava.compat import import_lava
from scadeploy.backends.lava.emulator import SimResult, decode_logits
from scadeploy.backends.lava.net import FixedNet
from scadeploy.errors import UnsupportedError

BUILDERS = ("auto", "netx", "graph")


def message_bits(net: FixedNet) -> int:
    """Bits of an input message: 0 for binary spike events, else the magnitude bits of x_int plus a sign."""
    if net.binary_input:
        return 0
    return int(net.input_max).bit_length() + 1


def run_lava(net: FixedNet, x: torch.Tensor, *, net_path: str | Path | None = None, builder: str = "auto",
             chunk_samples: int = 1, progress: Callable[[int], None] | None = None) -> SimResult:
    """Simulate `x` (frames `[N, ...]`, or `[T, N, ...]` for a sequence input); 'auto' uses netx for chains."""
    if builder not in BUILDERS:
        raise UnsupportedError(f"unknown Lava builder '{builder}'", f"choose one of {', '.join(BUILDERS)}")
    if builder == "auto":
        builder = "netx" if net.is_chain and net_path is not None else "graph"
    if builder == "netx" and (not net.is_chain or net_path is None):
        raise UnsupportedError("netx can only run a chain network loaded from model.net",
                               "use builder 'graph' for residual networks")
    io = import_lava("lava.proc.io")
    RunSteps = import_lava("lava.magma.core.run_conditions").RunSteps
    Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg
    Monitor = import_lava("lava.proc.monitor.process").Monitor

    x_int = net.quantize_input(x.detach().cpu().numpy())
    samples, t_steps = net.samples_in(x_int), net.timesteps
    steps = samples * t_steps + net.latency
    graph = _netx_graph(net, Path(net_path)) if builder == "netx" else lava_graph.build(net, message_bits(net))
    flat = builder == "graph"
    for port, delay in graph.inputs:
        data = _input_data(x_int, t_steps, steps, delay, flat or len(port.shape) == 1, net.sequence_input)
        io.source.RingBuffer(data=data).s_out.connect(port)
    sinks = {}
    for layer in net.layers:
        if layer.spiking:
            sinks[layer.name] = io.sink.RingBuffer(shape=graph.outputs[layer.name].shape, buffer=steps)
            graph.outputs[layer.name].connect(sinks[layer.name].a_in)
    monitor = None
    if net.has_readout:
        monitor = Monitor()
        monitor.probe(graph.neurons[net.output].u, steps)
    anchor = next(iter(graph.neurons.values()))
    config = Loihi2SimCfg(select_tag="fixed_pt")
    start = time.perf_counter()
    try:
        done = 0
        while done < steps:
            count = min(chunk_samples * t_steps, steps - done)
            anchor.run(condition=RunSteps(num_steps=count), run_cfg=config)
            done += count
            if progress is not None:
                progress(min(done // t_steps, samples) - min((done - count) // t_steps, samples))
        spikes = {name: _spikes(sink.data.get(), net[name], samples, t_steps, flat) for name, sink in sinks.items()}
        u_out = None
        if monitor is not None:
            u = monitor.get_data()[graph.neurons[net.output].name]["u"]  # (steps, neurons)
            index = np.arange(samples) * t_steps + t_steps - 1 + net[net.output].depth
            u_out = torch.from_numpy(u[index].astype(np.int64)).reshape(samples, *net[net.output].shape)
    finally:
        anchor.stop()
    seconds = time.perf_counter() - start
    logits = decode_logits(net, u_out, spikes.get(net.output))
    return SimResult(logits, spikes, torch.from_numpy(x_int), seconds, steps)


def _netx_graph(net: FixedNet, path: Path) -> lava_graph.ProcessGraph:
    netx = import_lava("lava.lib.dl.netx")
    network = netx.hdf5.Network(net_config=str(path), input_message_bits=message_bits(net),
                                reset_interval=net.timesteps, reset_offset=1)
    graph = lava_graph.ProcessGraph(inputs=[(network.inp, 0)])
    for layer, block in zip(net.layers, network.layers, strict=True):
        graph.outputs[layer.name] = block.out
        graph.neurons[layer.name] = block.neuron
    graph.neurons = {"network": network} | graph.neurons  # run and stop through the Network process
    return graph


def _input_data(x_int: np.ndarray, t_steps: int, steps: int, delay: int, flat: bool,
                sequence: bool = False) -> np.ndarray:
    """(*port shape, steps) int32: each sample's T inputs, then zeros (the RingBuffer loops).

    A frame is repeated T times; a sequence `[T, N, ...]` is laid out sample after sample.
    """
    if sequence:
        per_step = np.swapaxes(x_int, 0, 1).reshape(-1, *x_int.shape[2:])  # (N*T, *shape), sample-major
    else:
        per_step = np.repeat(x_int, t_steps, axis=0)
    # NOTE: netx ports are (x, y, f) = (W, H, C); flat ports are CHW order.
    repeated = per_step.reshape(per_step.shape[0], -1) if flat else per_step.transpose(
        0, *range(per_step.ndim - 1, 0, -1))
    data = np.zeros((*repeated.shape[1:], steps), dtype=np.int32)
    data[..., delay:delay + repeated.shape[0]] = np.moveaxis(repeated, 0, -1)[..., : steps - delay]
    return data


def _spikes(data: np.ndarray, layer, samples: int, t_steps: int, flat: bool) -> torch.Tensor:
    """Sink buffer (*port shape, steps) -> [T, N, *layer shape] uint8, aligned by the layer's depth."""
    index = np.arange(samples)[None, :] * t_steps + np.arange(t_steps)[:, None] + layer.depth
    picked = np.moveaxis(data[..., index], (-2, -1), (0, 1))  # (T, N, *port shape)
    if not flat and len(layer.shape) == 3:
        picked = picked.transpose(0, 1, 4, 3, 2)  # WHC -> CHW
    return torch.from_numpy(np.ascontiguousarray(picked).astype(np.uint8)).reshape(t_steps, samples, *layer.shape)
