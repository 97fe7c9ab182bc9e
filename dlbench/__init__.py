"""dlbench: a benchmark harness for disentangled representation learning on PyTorch.

Plugin authors need only the names exported here and the hooks in `dlbench.hookspecs`.
"""
from importlib.metadata import PackageNotFoundError, version

from dlbench.config import check_binding
from dlbench.errors import ConfigError, DataError, DlbenchError, DuplicateNameError, RecordError, UnknownNameError
from dlbench.hookspecs import hookimpl
from dlbench.interfaces import (
    DiscreteGroundTruthDataset,
    ExactMetricsModel,
    GroundTruthDataset,
    Metric,
    Model,
    PosteriorModel,
)
from dlbench.metrics.mi_matching import matched_information
from dlbench.records import atomic_write, load_state, save_state

try:
    __version__ = version("dlbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "ConfigError", "DataError", "DiscreteGroundTruthDataset", "DlbenchError",
    "DuplicateNameError", "ExactMetricsModel", "GroundTruthDataset", "Metric", "Model", "PosteriorModel",
    "RecordError", "UnknownNameError", "atomic_write", "check_binding", "hookimpl", "load_state",
    "matched_information", "save_state", "__version__",
]
