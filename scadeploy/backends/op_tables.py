"""Every backend's op table in one list, and the layer table of docs/layers.md generated from them."""

from __future__ import annotations

import importlib

from scadeploy.ir.ops import OPS, BackendOps, Lowering, registry_problems

# backend -> (module, table name); imported on demand (Lava changes process-wide settings at import).
TABLES = {
    "onnx": ("scadeploy.backends.onnx.ops", "ONNX_OPS"),
    "openvino": ("scadeploy.backends.openvino.export", "OPENVINO_OPS"),
    "lava": ("scadeploy.backends.lava.export", "LAVA_OPS"),
    "nir": ("scadeploy.backends.nir.export", "NIR_OPS"),
    "spikingjelly": ("scadeploy.backends.spikingjelly", "SPIKINGJELLY_OPS"),
}
BEGIN = "<!-- layer table: generated from the op registry -->"
END = "<!-- end layer table -->"


def backend_tables() -> list[BackendOps]:
    return [getattr(importlib.import_module(module), name) for module, name in TABLES.values()]


def problems() -> list[str]:
    """What the registry lacks (empty when every op is complete everywhere)."""
    return registry_problems(OPS, backend_tables())


def layer_table() -> str:
    """The markdown table of ops x backends: how each backend lowers each op, or why it refuses it."""
    tables = backend_tables()
    rows = ["| op | what it is | " + " | ".join(t.backend for t in tables) + " |",
            "|---|---|" + "---|" * len(tables)]
    for op, spec in OPS.items():
        cells = []
        for t in tables:
            entry = t.table.get(op)
            cells.append(entry.how if isinstance(entry, Lowering) else f"refused: {entry.reason}" if entry else "?")
        rows.append(f"| `{op.value}` | {spec.summary} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def with_layer_table(doc: str) -> str:
    """`doc` with the text between the BEGIN and END markers replaced by the current layer table."""
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{layer_table()}\n{END}{tail}"


if __name__ == "__main__":  # `make docs`: regenerate the layer table in docs/layers.md
    import sys
    from pathlib import Path

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/layers.md")
    path.write_text(with_layer_table(path.read_text()))
