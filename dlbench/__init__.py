"""dlbench: a benchmark harness for disentangled representation learning on PyTorch.

Plugin authors need only the names exported here and the hooks in `dlbench.hookspecs`. Names are
loaded on first use (PEP 562), so `import dlbench` and the command line stay fast: neither torch nor
scikit-learn is imported until something needs it.
"""
from __future__ import annotations

import importlib

from dlbench.errors import (
    ConfigError,
    DataError,
    DlbenchError,
    DuplicateNameError,
    PluginFailure,
    RecordError,
    ResourceError,
    RunLockedError,
    UnknownNameError,
)
from dlbench.hookspecs import hookimpl

_LAZY_NAMES = {
    "atomic_write": "dlbench.atomic", "atomic_write_json": "dlbench.atomic", "atomic_write_text": "dlbench.atomic",
    "check_binding": "dlbench.config",
    "DiscreteGroundTruthDataset": "dlbench.interfaces", "ExactMetricsModel": "dlbench.interfaces",
    "GroundTruthDataset": "dlbench.interfaces", "Metric": "dlbench.interfaces", "Model": "dlbench.interfaces",
    "PosteriorModel": "dlbench.interfaces",
    "FitContext": "dlbench.fitting", "FitInterrupted": "dlbench.fitting",
    "axis_grid": "dlbench.solutions", "require_memory": "dlbench.resources",
    "check_number": "dlbench.config", "check_seed": "dlbench.config", "TrainingSettings": "dlbench.config",
    "matched_information": "dlbench.metrics.mi_matching", "top_two_gap": "dlbench.metrics.base",
    "create_dataset": "dlbench.plugins", "create_metric": "dlbench.plugins", "create_model": "dlbench.plugins",
    "load_state": "dlbench.records", "read_record": "dlbench.records", "save_state": "dlbench.records",
    "load_run_state": "dlbench.records",
    "check_state_entry": "dlbench.records", "StateMismatchError": "dlbench.records",
    "load_run": "dlbench.evaluation", "PLUGIN_API": "dlbench.contract",
}

__all__ = ["ConfigError", "DataError", "DlbenchError", "DuplicateNameError", "PluginFailure", "RecordError",
           "ResourceError", "RunLockedError", "UnknownNameError", "hookimpl", "__version__", *_LAZY_NAMES]


def __getattr__(name: str):
    if name == "__version__":
        from dlbench.version import distribution_version
        return distribution_version()
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'dlbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
