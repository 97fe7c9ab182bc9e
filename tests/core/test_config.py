import pytest

import gin
from dlbench import config
from dlbench.cli import main
from dlbench.errors import ConfigError
from dlbench.plugins import get_plugins


@pytest.fixture(autouse=True)
def registered():
    get_plugins()  # plugin configurables exist before gin parses
    yield
    gin.clear_config()


def error_line(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_files_stack_and_bindings_override_in_order(tmp_path, tiny_linear_gin):
    overlay = tmp_path / "overlay.gin"
    overlay.write_text("linear_gaussian_vae.num_starts = 7\nmodel.random_seed = 5\n")
    config.parse([tiny_linear_gin, overlay], ["model.random_seed = 9"])
    experiment = config.read_experiment()
    assert experiment.random_seed == 9
    assert experiment.model_name == "linear_gaussian_vae"
    assert "linear_gaussian_vae.num_starts = 7" in gin.config_str()


@pytest.mark.parametrize("text, expected", [
    ("model.name = [1, 2\nmodel.random_seed = 1\n", "bad.gin, line 2"),
    ("dataset.name = 'x'\nmodel.name = [\n", "bad.gin, line 3: EOF in multi-line statement"),
    ("dataset.name = 'x'\nnot_a_configurable.value = 3\n", "line 2: No configurable matching 'not_a_configurable'"),
    ("model.name = 'x'\nmodel.no_such_param = 3\n",
     "line 2: Configurable 'model' doesn't have a parameter named 'no_such_param'"),
])
def test_gin_errors_are_one_line_with_file_and_line(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.gin"
    path.write_text(text)
    code, err = error_line(capsys, ["run", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("dlbench: error: ")
    assert expected in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_binding_is_named(tmp_path, capsys, tiny_linear_gin):
    code, err = error_line(capsys, ["run", str(tiny_linear_gin), "-p", "model.random_seed = )"])
    assert code == 2
    assert "binding 'model.random_seed = )'" in err and err.count("\n") == 0


def test_missing_config_file(tmp_path, capsys):
    code, err = error_line(capsys, ["run", str(tmp_path / "nope.gin")])
    assert code == 2 and "nope.gin' not found" in err


def test_missing_required_binding(tmp_path, capsys):
    path = tmp_path / "empty.gin"
    path.write_text("model.name = 'linear_gaussian_vae'\n")
    code, err = error_line(capsys, ["run", str(path), "--out", str(tmp_path)])
    assert code == 2 and "dataset.name must be set" in err


@pytest.mark.parametrize("binding, named", [
    ("model.random_seed = -1", "model.random_seed = -1"),
    ("evaluation.metrics = 'mig'", "evaluation.metrics = 'mig'"),
    ("linear_gaussian_vae.betas = [0, 4]", "linear_gaussian_vae.betas = [0, 4]"),
    ("linear_gaussian_vae.lambdas = [-1]", "linear_gaussian_vae.lambdas = [-1]"),
    ("linear_gaussian_vae.solvers = ['newton']", "linear_gaussian_vae.solvers"),
    ("linear_gaussian.n = 2", "linear_gaussian.n = 2 < linear_gaussian.s = 3"),
    ("linear_gaussian.noise_var = 0.0", "linear_gaussian.noise_var = 0.0"),
])
def test_wrong_values_name_the_binding_and_write_nothing(tmp_path, capsys, tiny_linear_gin,
                                                        binding, named):
    out = tmp_path / "runs"
    code, err = error_line(capsys, ["run", str(tiny_linear_gin), "-p", binding, "--out", str(out)])
    assert code == 2, err
    assert named in err and err.count("\n") == 0
    assert not out.exists() or not any(out.iterdir())


def test_check_binding_message_names_value_and_accepted():
    with pytest.raises(ConfigError, match=r"vae.beta = -2 is not accepted; expected a number > 0"):
        config.check_binding(False, "vae.beta", -2, "a number > 0")


def test_configurables_table_lists_every_kind_with_defaults(capsys):
    assert main(["list", "configurables"]) == 0
    table = capsys.readouterr().out
    for binding, default in [("dataset.source", "'auto'"), ("model.name", "REQUIRED"),
                             ("mig.num_bins", "20"), ("sap_score.mode", "'reference'"),
                             ("linear_gaussian.n", "100"),
                             ("linear_gaussian_vae.num_starts", "50")]:
        row = next(line for line in table.splitlines() if line.split()[0] == binding)
        assert row.split()[-1] == default, row


def test_configurables_table_describes_parameters(capsys):
    assert main(["list", "configurables"]) == 0
    table = capsys.readouterr().out
    for binding, words in [("dataset.name", "registered dataset name"), ("mig.num_train", "train split"),
                           ("sap_score.mode", "scikit-learn"), ("dsprites.factors", "exposed factor names"),
                           ("linear_gaussian_vae.num_starts", "random starts"),
                           ("factor_vae_score.prune_threshold", "inactive")]:
        row = next(line for line in table.splitlines() if line.split()[0] == binding)
        assert words in row, row
