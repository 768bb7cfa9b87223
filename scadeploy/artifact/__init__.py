"""The compiled directory: what is in DIR, how each file is written, and how it is read back and checked.

- `serialize`: IR graphs as JSON plus safetensors, verified on load (no pickle);
- `manifest`: `manifest.json`, the directory's table of contents;
- `directory`: opening a compiled DIR for inspect, benchmark and simulate;
- `files`: atomic writes and content hashes.
The artifact layer imports no frontend (an import-linter contract in pyproject.toml).
"""
