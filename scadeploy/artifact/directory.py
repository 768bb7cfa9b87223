"""A compiled directory (`scadeploy compile -o DIR`) read back: manifest, graphs and the inputs it was checked on.

Everything comes from DIR alone: the graphs from their safe serialized form (`ir/serialize.py`),
the inputs from the data source recorded in the manifest (a built-in dataset or the user's file,
checked against its recorded sha256), or from `--data` when the user gives other inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from scadeploy.artifact.manifest import MANIFEST, read_manifest, refused_targets
from scadeploy.artifact.serialize import load_graph
from scadeploy.data.samples import FRAMES, SEQUENCE, Samples, load_samples, random_samples
from scadeploy.errors import ArtifactError, DataError
from scadeploy.ir.graph import Encoding, Graph


@dataclass(frozen=True)
class CompiledDir:
    path: Path
    manifest: dict

    def graph(self, key: str) -> Graph:
        """'stripped' (BN folded, what the backends consumed) or 'masked' (as traced from the model)."""
        graphs = self.manifest.get("graphs")
        if not isinstance(graphs, dict) or not isinstance(graphs.get(key), str):
            raise ArtifactError(f"'{self.path / MANIFEST}' names no {key} graph",
                                "the directory predates self-contained compiles: re-run scadeploy compile")
        return load_graph(self.path / Path(graphs[key]).name)

    def target_files(self, backend: str) -> list[Path]:
        """The files of the target of `backend` ('onnx', 'lava'), or [] when it was not asked for.

        A target that was asked for but refused the model at compile is an error saying so and why:
        its files are absent because the model cannot run there, not because they were forgotten.
        """
        targets = self.manifest.get("targets")
        if not isinstance(targets, dict):
            raise ArtifactError(f"'{self.path / MANIFEST}': 'targets' must be an object")
        for section in targets.values():
            if isinstance(section, dict) and section.get("backend") == backend:
                files = section.get("files")
                if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
                    raise ArtifactError(f"'{self.path / MANIFEST}': the {backend} target lists no files")
                return [self.path / Path(f).name for f in files]
        refused = refused_targets(self.manifest, backend)
        if refused:
            name, reason = next(iter(refused.items()))
            raise ArtifactError(f"target '{name}' was refused at compile, so '{self.path}' has no {backend} "
                                f"files: {reason}")
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
        source = self.manifest.get("data")
        if not isinstance(source, dict):
            raise ArtifactError(f"'{self.path / MANIFEST}' records no data source", "pass --data")
        kind = source.get("kind")
        if kind == "builtin" and isinstance(source.get("name"), str):
            return load_samples(source["name"], source.get("data_dir"), graph.timesteps)
        if kind == "file" and isinstance(source.get("path"), str):
            path = Path(source["path"])
            if not path.is_file():
                raise DataError(f"the data file '{path}' recorded at compile is missing", "pass --data FILE")
            if hashlib.sha256(path.read_bytes()).hexdigest() != source.get("sha256"):
                raise DataError(f"the data file '{path}' changed since compile (sha256 differs)",
                                "pass it explicitly with --data to use it anyway")
            return load_samples(str(path), None, graph.timesteps, self._recorded_sensor(source))
        if kind == "compiled" and isinstance(source.get("file"), str):
            return load_samples(str(self.path / Path(source["file"]).name), None, graph.timesteps)
        if kind == "random":
            return random_samples(tuple(graph.input.shape), int(source.get("samples", 16)))
        raise ArtifactError(f"'{self.path / MANIFEST}' has an unknown data source {kind!r}", "pass --data")

    def _recorded_sensor(self, source: dict) -> tuple[int, int, int] | None:
        """The sensor size event recordings were binned for at compile (None for other data)."""
        events = source.get("events")
        if events is None:
            return None
        size = events.get("sensor_size") if isinstance(events, dict) else None
        if not (isinstance(size, list) and len(size) == 3 and
                all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in size)):
            raise ArtifactError(f"'{self.path / MANIFEST}': data.events.sensor_size must be [W, H, P]",
                                "re-run scadeploy compile, or pass --data")
        return (size[0], size[1], size[2])


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
    """Read DIR/manifest.json, its fields checked (`manifest.read_manifest`)."""
    return CompiledDir(Path(path), read_manifest(path))
