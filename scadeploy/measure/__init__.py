"""Backend-neutral measurement: runners behind one interface, the timing harness, SynOps and energy, reports.

Modules: `runners` (every way to execute a model), `harness` (interleaved timing of runners),
`synops` (NeuroBench SynOps, parameters, MACs, energy), `report` (tables and plots).
"""
