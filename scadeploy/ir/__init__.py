"""The IR: ops, graphs, shape rules, the verifier, the frontend and the passes."""
