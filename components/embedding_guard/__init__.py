"""embedding-guard: block a TFX Trainer before an embedding lookup fails.

The package imports TFX lazily, so `embedding-guard --help` and the pure core stay
fast; `from embedding_guard import EmbeddingIndexValidator` pulls TFX in.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "EmbeddingIndexValidator": "embedding_guard.component",
    "ValidatorOptions": "embedding_guard.run.options",
    "check": "embedding_guard.api",
    "embedding_input_dim": "embedding_guard.bounds.transform_graph",
    "embedding_input_dims": "embedding_guard.bounds.transform_graph",
    "display": "embedding_guard.reports.notebook",
    "warm_start_embeddings": "embedding_guard.bounds.warm_start",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'embedding_guard' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
