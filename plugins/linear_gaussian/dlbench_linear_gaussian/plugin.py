"""Registers the linear-Gaussian dataset, model, figures and benchmarks with dlbench."""
from dlbench import hookimpl

DLBENCH_PLUGIN_API = 2  # written for dlbench's plugin API 2


@hookimpl
def register_datasets():
    from dlbench_linear_gaussian.instance import linear_gaussian
    return {"linear_gaussian": linear_gaussian}


@hookimpl
def register_models():
    from dlbench_linear_gaussian.model import linear_gaussian_vae
    return {"linear_gaussian_vae": linear_gaussian_vae}


@hookimpl
def register_plots():
    from dlbench_linear_gaussian.plots import plot_run
    return {"linear_gaussian_vae": plot_run}


@hookimpl
def register_benchmarks():
    from dlbench_linear_gaussian.bench import bench_adamw, bench_fixed_point
    return {"linear_gaussian_fixed_point": bench_fixed_point,
            "linear_gaussian_adamw": bench_adamw}
