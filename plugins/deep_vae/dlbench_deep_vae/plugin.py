"""Registers the deep models (the paper's β-VAE and λβ-VAE, and disentanglement_lib's zoo), their figures and their
benchmarks with dlbench."""
from dlbench import hookimpl

DLBENCH_PLUGIN_API = 2  # written for dlbench's plugin API 2 (engine protocol 2: StepBatch, optimiser groups)


def _models() -> dict:
    from dlbench_deep_vae.models.annealed_vae import annealed_vae
    from dlbench_deep_vae.models.beta_tc_vae import beta_tc_vae
    from dlbench_deep_vae.models.beta_vae import beta_vae
    from dlbench_deep_vae.models.dip_vae import dip_vae_i, dip_vae_ii
    from dlbench_deep_vae.models.factor_vae import factor_vae
    from dlbench_deep_vae.models.lambda_beta_vae import lambda_beta_vae

    return {factory.__name__: factory for factory in (beta_vae, lambda_beta_vae, beta_tc_vae, factor_vae, dip_vae_i,
                                                      dip_vae_ii, annealed_vae)}


@hookimpl
def register_models():
    return _models()


@hookimpl
def register_plots():
    from dlbench_deep_vae.plots import plot_run

    return {name: plot_run for name in _models()}


@hookimpl
def register_benchmarks():
    from dlbench_deep_vae.bench import bench_engine_operations, bench_models, bench_modes, bench_training
    from dlbench_deep_vae.stack_bench import bench_stacking

    return {"deep_vae_training": bench_training, "deep_vae_stacking": bench_stacking, "deep_vae_models": bench_models,
            "deep_vae_modes": bench_modes, "engine_ops": bench_engine_operations}
