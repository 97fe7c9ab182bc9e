"""The linear_gaussian_vae model: factory validation, the solution grid's shapes and order,
state round trips, resuming from solver checkpoints and seeding."""
import numpy as np
import pytest
import torch
from lg_test_helpers import dense_loss_np

from dlbench import ConfigError, FitContext, load_state, save_state
from dlbench_linear_gaussian import solvers
from dlbench_linear_gaussian.instance import linear_gaussian
from dlbench_linear_gaussian.model import linear_gaussian_vae

CPU = torch.device("cpu")
CONFIG = dict(betas=[1, 4], lambdas=[0, 2], solvers=["fixed_point", "adamw"], num_starts=2,
              num_latent=3, max_half_steps=300, adamw_iterations=20)
SHAPE = (2, 2, 2, 2)  # (solvers, betas, lambdas, starts)


@pytest.mark.parametrize("binding, value", [
    ("betas", [0]), ("betas", [1, 0]), ("betas", [-4]), ("betas", []), ("betas", [True]),
    ("lambdas", [-1]), ("lambdas", [0, -0.5]),
    ("solvers", ["sgd"]), ("solvers", ["fixed_point", "fixed_point"]), ("solvers", []),
    ("num_starts", 0), ("num_starts", -1), ("num_starts", 2.5),
    ("clip_norms", [1.0]), ("clip_norms", [1.0, 2.0, 3.0]), ("clip_norms", [1.0, 0.0]),
    ("num_latent", 0), ("tol", 0.0), ("max_half_steps", 0), ("learning_rate", -1e-3),
    ("weight_decay", -0.01),
])
def test_factory_validation_names_the_binding(binding, value):
    with pytest.raises(ConfigError) as raised:
        linear_gaussian_vae(**{binding: value})
    message = str(raised.value)
    assert f"linear_gaussian_vae.{binding}" in message and "\n" not in message


def test_fit_rejects_a_single_latent_and_other_datasets(tmp_path):
    dataset = linear_gaussian(n=6, s=2, seed=0)
    with pytest.raises(ConfigError, match="num_latent"):
        linear_gaussian_vae(**dict(CONFIG, num_latent=1)).fit(
            dataset, FitContext(CPU, 0, tmp_path, progress=False))

    class Other:
        name = "dsprites"

    with pytest.raises(ConfigError, match="linear_gaussian"):
        linear_gaussian_vae(**CONFIG).fit(Other(), FitContext(CPU, 0, tmp_path, progress=False))


def _fit(workdir, seed=0, **overrides):
    dataset = linear_gaussian(n=8, s=2, seed=3)
    model = linear_gaussian_vae(**dict(CONFIG, **overrides))
    model.fit(dataset, FitContext(CPU, seed, workdir, progress=False))
    return model, dataset


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("fit"))


def _states_equal(first, second) -> bool:
    return first.keys() == second.keys() and all(
        np.array_equal(first[k].numpy(), second[k].numpy(), equal_nan=True) for k in first)


def test_exact_metrics_have_the_solution_shape_and_grid_order(fitted):
    model, dataset = fitted
    assert model.solution_shape == SHAPE
    assert model.solution_axes == {"solver": ["fixed_point", "adamw"], "beta": [1.0, 4.0],
                                   "lambda": [0.0, 2.0], "start": [0, 1]}
    metrics = model.exact_metrics()
    for key in ("nll", "kl", "loss", "sap", "i_m", "mutual_info_xy", "b_norm",
                "min_eig_sigma_w", "iterations", "stopped", "no_minimiser", "converged"):
        assert metrics[key].shape == SHAPE, key
    # Each entry is the loss of its own (β, λ): recomputed densely per index.
    sigma_y = dataset.instance.sigma_y.numpy()
    for index in np.ndindex(*SHAPE):
        _, b, lam, _ = index
        dense = dense_loss_np(*(model.solution[k][index].numpy()
                                for k in ("A", "B", "sigma_z", "sigma_w")),
                              sigma_y, CONFIG["betas"][b], CONFIG["lambdas"][lam])
        assert metrics["loss"][index].item() == pytest.approx(dense["loss"], rel=1e-10)
    # The fixed-point β = 4, λ = 0 cell collapsed; β = 4, λ = 2 did not.
    assert bool((metrics["i_m"][0, 1, 0] < 1e-8).all())
    assert bool((metrics["i_m"][0, 1, 1] > 1e-2).all())
    assert bool(metrics["converged"][0, 1].all())
    # β = 1: λ = 0 stops on its continuum of optima; λ = 2 has no minimiser and is flagged.
    assert bool(metrics["converged"][0, 0, 0].all())
    assert bool(metrics["no_minimiser"][0, 0, 1].all())
    assert not bool(metrics["converged"][0, 0, 1].any())
    assert bool((metrics["iterations"][1] == 20).all())
    assert metrics["converged"].dtype == torch.bool


def test_representation_is_the_encoder_mean_of_every_solution(fitted):
    model, dataset = fitted
    _, observations = dataset.sample(5, torch.Generator().manual_seed(0))
    representation = model.representation(observations)
    assert representation.shape == (*SHAPE, 5, 3)
    for index in [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 1, 0)]:
        expected = observations.numpy() @ model.solution["B"][index].numpy().T
        np.testing.assert_allclose(representation[index].numpy(), expected, rtol=1e-12)


def test_state_dict_round_trip(fitted, tmp_path):
    model, dataset = fitted
    state = model.state_dict()
    path = tmp_path / "state.npz"
    save_state(path, state)  # the runner's file round trip
    restored = linear_gaussian_vae(**CONFIG)
    restored.load_state_dict(load_state(path))
    assert _states_equal(restored.state_dict(), state)
    observations = dataset.sample(4, torch.Generator().manual_seed(1))[1]
    assert torch.equal(restored.representation(observations), model.representation(observations))
    with pytest.raises(ConfigError, match="solution shape"):
        linear_gaussian_vae(**dict(CONFIG, num_starts=3)).load_state_dict(state)
    with pytest.raises(ConfigError, match="sigma_w"):
        linear_gaussian_vae(**CONFIG).load_state_dict(
            {k: v for k, v in state.items() if k != "sigma_w"})


def test_fit_resumes_from_solver_checkpoints(tmp_path, monkeypatch):
    original, _ = _fit(tmp_path)
    store = FitContext(CPU, 0, tmp_path)
    checkpoints = {name: store.checkpoint_path(f"solver_{name}") for name in ("fixed_point", "adamw")}
    assert all(path.is_file() for path in checkpoints.values())
    # Mark the fixed-point checkpoint, so that reuse is visible, and drop the AdamW one.
    marked = store.load_checkpoint("solver_fixed_point")
    marked["B"] = marked["B"] + 1.0
    store.save_checkpoint("solver_fixed_point", marked)
    checkpoints["adamw"].unlink()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the fixed-point solver ran again despite its checkpoint")

    monkeypatch.setattr(solvers, "fixed_point", must_not_run)
    resumed, _ = _fit(tmp_path)
    assert torch.equal(resumed.solution["B"][0], marked["B"].reshape(SHAPE[1:] + (3, 8)))
    # AdamW was solved again, from the same seed: identical to the first fit.
    for key in ("A", "B", "sigma_z", "sigma_w"):
        assert torch.equal(resumed.solution[key][1], original.solution[key][1]), key
    assert checkpoints["adamw"].is_file()


def test_same_seed_is_bit_identical_and_other_seeds_differ(fitted, tmp_path):
    model, _ = fitted
    again, _ = _fit(tmp_path / "again", seed=0)
    assert _states_equal(again.state_dict(), model.state_dict())
    other, _ = _fit(tmp_path / "other", seed=1)
    for solver in range(2):
        assert not torch.equal(other.solution["B"][solver], model.solution["B"][solver])


def test_b_norm_ratio_reports_the_contraction(tmp_path):
    """The record's b_norm_ratio is the last fixed-point step's ‖B‖₂ ratio: 1/β in collapsed
    (λ = 0) cells, about 1 in informative ones, NaN for AdamW."""
    from dlbench_linear_gaussian.instance import linear_gaussian
    from dlbench_linear_gaussian.model import linear_gaussian_vae

    dataset = linear_gaussian(n=10, s=2, seed=3)
    model = linear_gaussian_vae(betas=[4, 16], lambdas=[0, 2], solvers=["fixed_point", "adamw"],
                                num_starts=2, num_latent=3, max_half_steps=4000,
                                adamw_iterations=20)
    model.fit(dataset, FitContext("cpu", 0, tmp_path, progress=False))
    ratio = model.exact_metrics()["b_norm_ratio"]
    assert ratio.shape == (2, 2, 2, 2)
    for b, beta in enumerate([4.0, 16.0]):
        trajectory = model.solution["b_norm_trajectory"][0, b, 0].double()
        for start in range(2):
            finite = trajectory[start][~trajectory[start].isnan()]
            assert ratio[0, b, 0, start].item() == finite[-1].item() / finite[-2].item()
        torch.testing.assert_close(ratio[0, b, 0], torch.full((2,), 1 / beta, dtype=torch.float64),
                                   rtol=1e-3, atol=0)
        assert ((ratio[0, b, 1] - 1).abs() < 1e-3).all()
    assert ratio[1].isnan().all()
