"""Models: the catalog of deploy prototxts, a prototxt reader/rewriter, and parameter/MAC counts."""
from .catalog import ModelSource, UnknownModel, catalog_names, describe, resolve
from .prototxt import InputDecl, PrototxtError, inputs, parse, set_batch
from .stats import NetStats, analyze

__all__ = [
    "ModelSource", "UnknownModel", "catalog_names", "describe", "resolve",
    "InputDecl", "PrototxtError", "inputs", "parse", "set_batch",
    "NetStats", "analyze",
]
