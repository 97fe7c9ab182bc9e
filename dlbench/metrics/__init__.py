"""The built-in disentanglement metrics, registered through the same hooks as any plugin.

Each metric module holds pure functions on (codes, factors) tensors and a thin sampler class that
draws codes from a model and a dataset under a named protocol (see sampling.py).
"""
from dlbench.hookspecs import hookimpl
from dlbench.metrics.bench import bench
from dlbench.metrics.beta_vae import BetaVAEScore
from dlbench.metrics.dci import DCI
from dlbench.metrics.factor_vae import FactorVAEScore
from dlbench.metrics.mi_matching import MIMatching
from dlbench.metrics.mig import MIG
from dlbench.metrics.modularity import ModularityExplicitness
from dlbench.metrics.sap import SAPScore
from dlbench.metrics.unsupervised import Unsupervised

BUILTIN_METRICS = (MIG, SAPScore, MIMatching, DCI, FactorVAEScore, BetaVAEScore, ModularityExplicitness, Unsupervised)


@hookimpl
def register_metrics():
    return {metric.name: metric for metric in BUILTIN_METRICS}


@hookimpl
def register_benchmarks():
    return {"metrics": bench}
