"""Registers the β-VAE and λβ-VAE models, their figures and their benchmarks with dlbench."""
from dlbench import hookimpl


@hookimpl
def register_models():
    from dlbench_deep_vae.model import beta_vae, lambda_beta_vae

    return {"beta_vae": beta_vae, "lambda_beta_vae": lambda_beta_vae}


@hookimpl
def register_plots():
    from dlbench_deep_vae.plots import plot_run

    return {"beta_vae": plot_run, "lambda_beta_vae": plot_run}


@hookimpl
def register_benchmarks():
    from dlbench_deep_vae.bench import bench_training
    from dlbench_deep_vae.stack_bench import bench_stacking

    return {"deep_vae_training": bench_training, "deep_vae_stacking": bench_stacking}
