"""The NIR backend: IR <-> NIR (the Neuromorphic Intermediate Representation, package `nir`).

Modules: `rewrites` (exact IR rewrites into what NIR expresses), `export` (IR -> `model.nir`, the
`nir` target, parity measured through spikingjelly's own NIR importer), `importer` (a NIR file ->
IR, so `scadeploy compile model.nir` strips and deploys graphs from other frameworks), `peers`
(running a NIR graph through other frameworks' importers). `nir`, `nirtorch` are imported only here.
"""
