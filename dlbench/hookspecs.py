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

Each registered model, dataset or metric name becomes a gin configurable of the same name, so
`my_vae.beta = 4.0` binds the factory's `beta` argument. Those names share one namespace across all
plugins; plot names and benchmark names are unique within their own kind. A hook whose name is not
one of these (a misspelt `register_model`) makes the plugin fail to load, and `dlbench plugins` says
why. The first line of a factory's docstring is its one-line description in `dlbench list`, and an
`Args:` section (`name: description` lines) describes its parameters in `dlbench list configurables`.
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
    `dataset.source`; a factory refuses a source it does not have with a ConfigError. A factory may
    carry an `official_files` attribute (`dlbench.interfaces.OfficialFiles`) so that `dlbench data`
    can find, verify and prepare its published files."""


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


@hookspec
def register_commands(subparsers):
    """Add subcommands to the `dlbench` command line: call `subparsers.add_parser(name, help=...)`
    and `set_defaults(handler=function)`, where handler(args) returns the exit status. Import heavy
    modules inside the handler, not at module level, so `dlbench --help` stays fast. Raise a
    `dlbench.DlbenchError` for a user mistake: it is printed as one line with exit status 2."""
