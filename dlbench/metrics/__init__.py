"""The built-in disentanglement metrics, registered through the same hooks as any plugin.

Each metric module holds pure functions on (codes, factors) tensors and a thin sampler class that
draws codes from a model and a dataset under a named protocol (see sampling.py). The hooks import
them on first use, so loading the plugin costs nothing until a metric is asked for.
"""
from dlbench.hookspecs import hookimpl


@hookimpl
def register_metrics():
    from dlbench.metrics.beta_vae import BetaVAEScore
    from dlbench.metrics.dci import DCI
    from dlbench.metrics.factor_vae import FactorVAEScore
    from dlbench.metrics.mi_matching import MIMatching
    from dlbench.metrics.mig import MIG
    from dlbench.metrics.modularity import ModularityExplicitness
    from dlbench.metrics.sap import SAPScore
    from dlbench.metrics.unsupervised import Unsupervised

    metrics = (MIG, SAPScore, MIMatching, DCI, FactorVAEScore, BetaVAEScore, ModularityExplicitness, Unsupervised)
    return {metric.name: metric for metric in metrics}


def bench_metrics(quick: bool = False):
    """Every metric's fast path against its scikit-learn / numpy baseline (loaded only when it runs)."""
    from dlbench.metrics.bench import bench

    return bench(quick)


@hookimpl
def register_benchmarks():
    return {"metrics": bench_metrics}
