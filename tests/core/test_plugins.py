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
