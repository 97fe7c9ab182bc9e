"""The plugin system, seen from outside: a third-party distribution on sys.path with an entry
point in the `dlbench` group, discovered by a fresh `python -m dlbench` process."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from dlbench.errors import DuplicateNameError, UnknownNameError
from dlbench.plugins import Plugins, get_plugins

TOY_MODEL = '''
"""A third-party model: the identity on the first two observed dimensions."""
import torch
from dlbench import hookimpl


class FirstTwo:
    """Codes are the first two observed dimensions, times a gin-configurable scale."""
    name = "toy_first_two"
    solution_axes = {}
    replicate_axes = ()

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, dataset, context):
        self.weight = torch.eye(2, dataset.observation_shape[0], dtype=torch.float64,
                                device=context.device) * self.scale

    def representation(self, observations):
        return observations.to(torch.float64) @ self.weight.T

    def hyperparameters(self):
        return {"scale": self.scale}

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        self.weight = state["weight"]


def toy_first_two(scale=1.0):
    """Identity codes on the first two observed dimensions (a plugin-system test model)."""
    return FirstTwo(scale)


@hookimpl
def register_models():
    return {"toy_first_two": toy_first_two}
'''


def install_fake_distribution(root, dist_name, module_name, source, entry_point_name=None):
    """What pip leaves behind for a one-module distribution: the module and its dist-info."""
    (root / f"{module_name}.py").write_text(source)
    info = root / f"{dist_name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        f"[dlbench]\n{entry_point_name or module_name} = {module_name}\n")


def dlbench(root, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True,
                          text=True, env=env, cwd=root, timeout=300)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    install_fake_distribution(root, "toy-dlbench-models", "toy_dlbench_models", TOY_MODEL)
    install_fake_distribution(root, "broken-dlbench-plugin", "broken_dlbench_plugin",
                              "import a_module_that_is_not_installed\n")
    return root


def test_third_party_plugin_is_discovered_listed_and_runs_from_gin(site, tmp_path):
    plugins = dlbench(site, "plugins")
    assert plugins.returncode == 0, plugins.stderr
    toy_line = next(line for line in plugins.stdout.splitlines() if "toy_dlbench_models" in line)
    assert "toy-dlbench-models" in toy_line and "0.3" in toy_line
    assert "register_models" in toy_line and "models: toy_first_two" in toy_line
    broken_line = next(line for line in plugins.stdout.splitlines() if "broken_dlbench_plugin" in line)
    assert "FAILED: ModuleNotFoundError" in broken_line and "a_module_that_is_not_installed" in broken_line

    listed = dlbench(site, "list", "models", "toy*")
    assert "toy_first_two" in listed.stdout and "Identity codes" in listed.stdout
    assert "linear_gaussian_vae" not in listed.stdout

    config = tmp_path / "toy.gin"
    config.write_text(textwrap.dedent("""
        dataset.name = "linear_gaussian"
        linear_gaussian.n = 6
        linear_gaussian.s = 2
        model.name = "toy_first_two"
        toy_first_two.scale = 3.0
    """))
    run = dlbench(site, "run", str(config), "--out", str(tmp_path / "runs"), "--quiet")
    assert run.returncode == 0, run.stderr
    (record_file,) = (tmp_path / "runs").glob("*/record.json")
    record = json.loads(record_file.read_text())
    assert record["model"] == {"name": "toy_first_two", "plugin": "toy_dlbench_models",
                               "distribution": "toy-dlbench-models", "version": "0.3",
                               "hyperparameters": {"scale": 3.0}}


def test_a_broken_plugin_only_fails_the_runs_that_need_it(site, tmp_path):
    config = tmp_path / "needs_missing.gin"
    config.write_text('dataset.name = "linear_gaussian"\nmodel.name = "broken_model"\n')
    run = dlbench(site, "run", str(config), "--out", str(tmp_path / "runs"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "unknown model 'broken_model'" in run.stderr
    assert "broken_dlbench_plugin (ModuleNotFoundError" in run.stderr


def test_two_distributions_may_choose_the_same_entry_point_name(site):
    install_fake_distribution(site, "other-models", "other_models",
                              TOY_MODEL.replace('"toy_first_two": toy_first_two',
                                                '"other_first_two": toy_first_two'),
                              entry_point_name="toy_dlbench_models")
    listed = dlbench(site, "list", "models")
    assert listed.returncode == 0, listed.stderr
    assert "toy_first_two" in listed.stdout and "other_first_two" in listed.stdout
    # whichever distribution is found second is registered under a qualified name
    qualified = [f"{dist}:toy_dlbench_models" in listed.stdout
                 for dist in ("other-models", "toy-dlbench-models")]
    assert sorted(qualified) == [False, True]


def test_two_providers_of_one_name_are_both_named(site):
    install_fake_distribution(site, "copycat-models", "copycat_models",
                              TOY_MODEL.replace('"toy_first_two": toy_first_two',
                                                '"linear_gaussian_vae": toy_first_two'))
    listed = dlbench(site, "list", "models")
    assert listed.returncode == 2
    assert "'linear_gaussian_vae' is provided by both plugin" in listed.stderr
    assert "copycat_models" in listed.stderr and "linear_gaussian" in listed.stderr


def test_builtins_come_through_the_same_hooks():
    plugins = get_plugins()
    by_name = {info.name: info for info in plugins.infos}
    assert by_name["dlbench.datasets"].hooks and "register_datasets" in by_name["dlbench.datasets"].hooks
    assert "mig" in plugins.metrics.names()
    assert plugins.models.get("linear_gaussian_vae").plugin == "linear_gaussian"
    assert plugins.models.names("linear*") == ["linear_gaussian_vae"]


def test_reserved_core_names_cannot_be_taken(monkeypatch):
    import types

    from dlbench import hookimpl

    sneaky = types.ModuleType("sneaky")
    sneaky.register_datasets = hookimpl(lambda: {"model": object})
    monkeypatch.setitem(sys.modules, "sneaky", sneaky)
    with pytest.raises(DuplicateNameError, match="'model' is provided by both plugin 'dlbench'"):
        Plugins(builtin_modules=("sneaky",)).require_no_conflicts()


def test_unknown_name_error_lists_choices():
    with pytest.raises(UnknownNameError, match=r"unknown metric 'nope'; available: .*mig"):
        get_plugins().metrics.get("nope")


MISSPELT = '''
from dlbench import hookimpl


@hookimpl
def register_model():
    return {"never_seen": object}
'''

SUBCOMMAND_AND_DATASET = '''
"""A third-party plugin adding a dataset, a metric and a CLI subcommand."""
import torch
from dlbench import hookimpl


class Dots:
    """Two binary factors observed as themselves."""
    name = "toy_dots"
    source = "synthetic"
    factor_names = ("a", "b")
    observation_shape = (2,)

    def __init__(self, device):
        self.device = device

    def sample(self, num, generator):
        factors = torch.randint(2, (num, 2), generator=generator, device=self.device)
        return factors, factors.double()

    def describe(self):
        return {"name": self.name, "source": self.source}


def toy_dots(source="auto", device="cpu"):
    """Two binary factors observed directly (a plugin-system test dataset)."""
    return Dots(device)


class MeanCode:
    """The mean absolute code: a plugin-system test metric."""
    name = "toy_mean_code"

    def __call__(self, model, dataset, *, generator):
        _, observations = dataset.sample(64, generator)
        codes = model.representation(observations)
        return {"mean_code": codes.abs().mean(-1).mean(-1), "provenance": {"num": 64}}


def toy_mean_code():
    """The mean absolute code (a plugin-system test metric)."""
    return MeanCode()


def hello(args):
    print(f"hello {args.who}")
    return 0


@hookimpl
def register_datasets():
    return {"toy_dots": toy_dots}


@hookimpl
def register_metrics():
    return {"toy_mean_code": toy_mean_code}


@hookimpl
def register_commands(subparsers):
    parser = subparsers.add_parser("hello", help="a plugin's own command")
    parser.add_argument("who")
    parser.set_defaults(handler=hello)
'''


def test_a_misspelt_hook_is_a_load_error_not_silence(site, tmp_path):
    install_fake_distribution(site, "misspelt-plugin", "misspelt_plugin", MISSPELT)
    listed = dlbench(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.split() and line.split()[0] == "misspelt_plugin")
    assert "FAILED: unknown hook 'register_model'" in line and "register_models" in line
    config = tmp_path / "needs_it.gin"
    config.write_text('dataset.name = "linear_gaussian"\nmodel.name = "never_seen"\n')
    run = dlbench(site, "run", str(config), "--out", str(tmp_path / "runs"))
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "misspelt_plugin (unknown hook 'register_model'" in run.stderr


def test_plugins_add_datasets_metrics_and_subcommands(site, tmp_path):
    install_fake_distribution(site, "toy-extras", "toy_extras", SUBCOMMAND_AND_DATASET)
    hello = dlbench(site, "hello", "world")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello world", hello.stderr
    assert "hello" in dlbench(site, "--help").stdout
    data = dlbench(site, "data", "list")
    row = next(line for line in data.stdout.splitlines() if line.strip().startswith("toy_dots"))
    assert "toy_extras" in row and "no published files" in row and "Two binary factors" in row
    info = dlbench(site, "data", "info", "toy_dots")
    assert info.returncode == 0 and '"name": "toy_dots"' in info.stdout
    config = tmp_path / "toy.gin"
    config.write_text('dataset.name = "toy_dots"\nmodel.name = "toy_first_two"\n'
                      'evaluation.metrics = ["toy_mean_code"]\n')
    run = dlbench(site, "run", str(config), "--out", str(tmp_path / "runs"), "--quiet")
    assert run.returncode == 0, run.stderr
    (record_file,) = (tmp_path / "runs").glob("*/record.json")
    entry = json.loads(record_file.read_text())["metrics"]["toy_mean_code"]
    assert entry["plugin"] == "toy_extras" and entry["plugin_version"] == "0.3" and entry["mean_code"] > 0


def test_a_plugin_can_be_disabled_without_uninstalling(site, tmp_path):
    by_flag = dlbench(site, "--disable-plugin", "broken_dlbench_plugin", "--disable-plugin", "toy_dlbench_models",
                      "plugins")
    assert by_flag.returncode == 0, by_flag.stderr
    rows = {line.split()[0]: line for line in by_flag.stdout.splitlines()[2:]}
    assert "DISABLED" in rows["toy_dlbench_models"] and "DISABLED" in rows["broken_dlbench_plugin"]
    assert "FAILED" not in by_flag.stdout
    env = dict(os.environ, DLBENCH_DISABLE_PLUGINS="toy-dlbench-models",
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    listed = subprocess.run([sys.executable, "-m", "dlbench", "list", "models"], capture_output=True, text=True,
                            env=env, cwd=site, timeout=300)
    assert listed.returncode == 0 and "toy_first_two" not in listed.stdout and "linear_gaussian_vae" in listed.stdout
    typo = dlbench(site, "--disable-plugin", "no_such_plugin", "plugins")
    assert typo.returncode == 2 and "disabled plugin 'no_such_plugin'" in typo.stderr
    assert "is not accepted" in typo.stderr


def test_a_duplicate_plot_name_is_a_conflict_that_plugins_still_shows(site, tmp_path):
    install_fake_distribution(site, "copy-plots", "copy_plots", "from dlbench import hookimpl\n\n\n@hookimpl\n"
                              "def register_plots():\n    return {'linear_gaussian_vae': lambda run_dir, out: []}\n")
    shown = dlbench(site, "plugins")
    assert shown.returncode == 0, shown.stderr
    assert "CONFLICT: plot name 'linear_gaussian_vae' is provided by both plugin" in shown.stdout
    assert "copy_plots" in shown.stdout
    config = tmp_path / "toy.gin"
    config.write_text('dataset.name = "linear_gaussian"\nlinear_gaussian.n = 6\nlinear_gaussian.s = 2\n'
                      'model.name = "toy_first_two"\n')
    run = dlbench(site, "run", str(config), "--out", str(tmp_path / "runs"), "--quiet")
    assert run.returncode == 2 and "plot name 'linear_gaussian_vae' is provided by both plugin" in run.stderr


def test_every_hook_is_documented_in_hookspecs_and_the_readme():
    import inspect
    import re
    from pathlib import Path

    from dlbench import hookspecs

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    hooks = [name for name, value in vars(hookspecs).items()
             if callable(value) and hasattr(value, "dlbench_spec")]
    assert hooks, "no hook specifications found"
    for name in hooks:
        assert (inspect.getdoc(getattr(hookspecs, name)) or "").strip(), f"hook {name} has no docstring"
        assert re.search(rf"`{name}\b", section), f"hook {name} is not described in the README's plugin section"


def test_create_dataset_builds_a_registered_dataset_outside_gin():
    from dlbench import ConfigError, create_dataset, create_model

    dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 2, 2, 2, 2))
    assert dataset.source == "procedural" and len(dataset) == 48
    assert create_model("linear_gaussian_vae", num_starts=2).num_starts == 2
    with pytest.raises(ConfigError, match="parameter 'colour' is not accepted; expected one of .*factors"):
        create_dataset("dsprites", colour="red")
