"""A compiled directory (`scadeploy compile -o DIR`) read back: manifest, graphs and the inputs it was checked on.

Everything comes from DIR alone: the graphs from their safe serialized form (`artifact/serialize.py`),
the inputs from the data source recorded in the manifest (a built-in dataset or the user's file,
checked against its recorded sha256), or from `--data` when the user gives other inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from scadeploy.artifact.layout import Layout
from scadeploy.artifact.manifest import Manifest, read_manifest
from scadeploy.artifact.manifest_parts import DataSource
from scadeploy.artifact.serialize import load_graph
from scadeploy.data.samples import FRAMES, SEQUENCE, Samples, load_samples, random_samples
from scadeploy.errors import ArtifactError, DataError
from scadeploy.ir.graph import Encoding, Graph

RANDOM_SAMPLES = 16  # inputs drawn for a `random` data source that does not say how many


@dataclass(frozen=True)
class CompiledDir:
    path: Path
    manifest: Manifest

    @property
    def layout(self) -> Layout:
        return Layout(self.path)

    def graph(self, key: str) -> Graph:
        """'stripped' (BN folded, what the backends consumed) or 'masked' (as traced from the model)."""
        return load_graph(self.layout.file(self.manifest.graphs[key]))

    def target_files(self, backend: str) -> list[Path]:
        """The files of the target of `backend` ('onnx', 'lava'), or [] when it was not asked for.

        A target that was asked for but refused the model at compile is an error saying so and why:
        its files are absent because the model cannot run there, not because they were forgotten.
        """
        found = self.manifest.target_of(backend)
        if found is not None:
            return [self.layout.file(name) for name in found[1].files]
        refused = self.manifest.refused_of(backend)
        if refused:
            name, refusal = next(iter(refused.items()))
            raise ArtifactError(f"target '{name}' was refused at compile, so '{self.path}' has no {backend} "
                                f"files: {refusal.reason}")
        return []

    def samples(self, graph: Graph, data: str | None = None, data_dir: str | None = None) -> Samples:
        """`data` when given, else the inputs recorded at compile; checked to fit `graph`.

        Event recordings given as `data` are binned for the sensor the graph takes: (W, H, P) from its
        input (P, H, W), and T from the graph.
        """
        if data:
            samples = load_samples(data, data_dir, graph.timesteps, sensor_of(graph))
        else:
            samples = self._recorded_samples(graph)
        check_fits(samples, graph)
        return samples

    def _recorded_samples(self, graph: Graph) -> Samples:
        source = self.manifest.data
        if source is None:
            raise ArtifactError(f"'{self.layout.manifest}' records no data source", "pass --data")
        if source.kind == "builtin":
            return load_samples(str(source.name), source.data_dir, graph.timesteps)
        if source.kind == "file":
            return self._recorded_file(source, graph)
        if source.kind == "compiled":
            return load_samples(str(self.layout.file(str(source.file))), None, graph.timesteps)
        return random_samples(tuple(graph.input.shape), RANDOM_SAMPLES if source.samples is None else source.samples)

    def _recorded_file(self, source: DataSource, graph: Graph) -> Samples:
        """The user's data file recorded at compile, if it is still there and unchanged."""
        path = Path(str(source.path))
        if not path.is_file():
            raise DataError(f"the data file '{path}' recorded at compile is missing", "pass --data FILE")
        if hashlib.sha256(path.read_bytes()).hexdigest() != source.sha256:
            raise DataError(f"the data file '{path}' changed since compile (sha256 differs)",
                            "pass it explicitly with --data to use it anyway")
        return load_samples(str(path), None, graph.timesteps, source.sensor_size)


def sensor_of(graph: Graph) -> tuple[int, int, int] | None:
    """The event sensor (W, H, P) a graph's [P, H, W] input takes; None for other input shapes."""
    shape = tuple(graph.input.shape)
    return (shape[2], shape[1], shape[0]) if len(shape) == 3 else None


def check_fits(samples: Samples, graph: Graph) -> None:
    """The samples' layout and per-sample shape must be what the graph's input takes."""
    want = FRAMES if graph.input.attrs.encoding is Encoding.DIRECT else SEQUENCE
    if samples.layout != want:
        raise DataError(f"the model takes {want} but the data holds {samples.layout}",
                        "frames are [N, C, H, W]; sequences [T, N, C, H, W]")
    if samples.sample_shape != tuple(graph.input.shape):
        raise DataError(f"the data's samples have shape {list(samples.sample_shape)}, the model takes "
                        f"{list(graph.input.shape)}")
    if samples.layout == SEQUENCE and samples.x.shape[0] != graph.timesteps:
        raise DataError(f"the data has {samples.x.shape[0]} steps, the model runs T={graph.timesteps}")


def open_compiled(path: str | Path) -> CompiledDir:
    """Open DIR through its manifest, every field checked (`manifest.read_manifest`)."""
    return CompiledDir(Path(path), read_manifest(path))
