"""The compiled directory: what is in DIR, how each file is written, and how it is read back and checked.

- `layout`: the name of every file of DIR, for writers and readers alike;
- `serialize`: IR graphs as JSON plus safetensors, verified on load (no pickle);
- `manifest`: `manifest.json`, the directory's table of contents, a typed and versioned `Manifest`
  (its parts in `manifest_parts`, the field checks in `json_fields`);
- `directory`: opening a compiled DIR for inspect, benchmark and simulate;
- `files`: atomic writes and content hashes.
The artifact layer imports no frontend (an import-linter contract in pyproject.toml).
"""
