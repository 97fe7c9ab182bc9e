"""Built-in ground-truth datasets: dSprites, Shapes3D and MPI3D, from the official files or from
procedural stand-ins; registered through the same hooks as third-party plugins."""
from dlbench.hookspecs import hookimpl


@hookimpl
def register_datasets():
    from dlbench.datasets.dsprites import dsprites
    from dlbench.datasets.mpi3d import FACTORIES
    from dlbench.datasets.shapes3d import shapes3d

    return {"dsprites": dsprites, "shapes3d": shapes3d, **FACTORIES}


@hookimpl
def register_benchmarks():
    from dlbench.datasets.bench import bench_dataset_sampling, bench_shapes3d_full_grid

    return {"dataset_sampling": bench_dataset_sampling,
            "shapes3d_full_grid": bench_shapes3d_full_grid}


@hookimpl
def register_commands(subparsers):
    from dlbench.datasets.commands import add_commands

    add_commands(subparsers)
