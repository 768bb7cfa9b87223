"""Frontends: everything a user brings, each turned into the same thing (an IR graph, masks, provenance).

- `checkpoint` (+ `checkpoint_schema`): a scadeploy checkpoint, validated field by field;
- `user_model`: `--model MODULE:FACTORY` and a plain state_dict;
- `masks`: SCA masks, given or inferred from zeroed weights;
- `trace`: a spikingjelly model traced by torch.fx into the IR;
- `nir`: a NIR file read back into the IR.
Frontends import no backend (an import-linter contract in pyproject.toml).
"""
