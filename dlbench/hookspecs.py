"""Every hook a dlbench plugin can implement: the plugin author's whole contract.

A plugin is a module listed under the `dlbench` entry-point group of its distribution:

    [options.entry_points]
    dlbench =
        my_models = my_package.plugin

and in that module:

    from dlbench import hookimpl

    @hookimpl
    def register_models():
        return {"my_vae": MyVAE}

Each registered name becomes a gin configurable of the same name, so `my_vae.beta = 4.0` binds
the factory's `beta` argument. Names are unique across all plugins and kinds. The first line of a
factory's docstring is its one-line description in `dlbench list`.
"""
import pluggy

hookspec = pluggy.HookspecMarker("dlbench")
hookimpl = pluggy.HookimplMarker("dlbench")


@hookspec
def register_models():
    """Return {name: factory}; factory(**hyperparameters) builds an object satisfying
    `dlbench.interfaces.Model`."""


@hookspec
def register_datasets():
    """Return {name: factory}; factory(source=..., device=..., **parameters) builds an object
    satisfying `dlbench.interfaces.GroundTruthDataset`. `source` is "auto" unless the user set
    `dataset.source`; a factory refuses a source it does not have with a ConfigError."""


@hookspec
def register_metrics():
    """Return {name: factory}; factory(**parameters) builds an object satisfying
    `dlbench.interfaces.Metric`."""


@hookspec
def register_plots():
    """Return {model name: plot(run_dir, out_dir) -> list of written paths}: the figures
    `dlbench plot RUN_DIR` draws for runs of that model."""


@hookspec
def register_benchmarks():
    """Return {name: bench(quick: bool) -> list of result dicts}: speed checks that
    `dlbench bench` runs. Each result has `name`, `seconds`, `baseline_seconds` and `ratio`
    (baseline / ours, measured in the same call), plus any context worth printing."""
