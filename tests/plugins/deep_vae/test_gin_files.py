"""Every deep gin file, alone and under gin/quick.gin, parses and builds its dataset's model and metrics as a run would
(before any fit): disentanglement_lib's grids, settings and metric suite for each zoo model."""
from __future__ import annotations

from pathlib import Path

import pytest

from dlbench import config, evaluation
from dlbench.plugins import get_plugins

GIN = Path(__file__).resolve().parents[3] / "gin"
DLIB_GRIDS = {"beta_vae": ("betas", [1, 2, 4, 6, 8, 16]), "beta_tc_vae": ("betas", [1, 2, 4, 6, 8, 10]),
              "factor_vae": ("gammas", [10, 20, 30, 40, 50, 100]), "dip_vae_i": ("lambda_ods", [1, 2, 5, 10, 20, 50]),
              "dip_vae_ii": ("lambda_ods", [1, 2, 5, 10, 20, 50]),
              "annealed_vae": ("c_maxes", [5, 10, 25, 50, 75, 100])}


@pytest.mark.parametrize("path", sorted((GIN / "dlib").glob("*.gin")), ids=lambda path: path.stem)
def test_a_dlib_study_file_builds_its_model_with_disentanglement_libs_settings(path):
    plugins = get_plugins()
    config.parse([path], [])
    experiment = config.read_experiment()
    model = evaluation.build_model(plugins, experiment)
    parameter, grid = DLIB_GRIDS[experiment.model_name]
    assert model.hyperparameters()[parameter] == grid
    assert model.architecture == "dlib_conv" and model.likelihood == "bernoulli" and model.adam.learning_rate == 1e-4
    assert experiment.training.training_steps == 300_000 and experiment.training.batch_size == 64
    assert len(evaluation.build_metrics(plugins, experiment.metric_names)) == 8
    config.parse([path, GIN / "quick.gin"], [])
    quick = evaluation.build_model(plugins, config.read_experiment())
    assert quick.num_solutions == 2 and config.read_experiment().training.training_steps == 300
