"""The linear-Gaussian problem instance: drawing, the .npz format and its validation, the fast
Σ_Y products, the dataset's samples and the factory's validation."""
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from lg_test_helpers import dense_sigma_y, instance_arrays

from dlbench import ConfigError, DataError
from dlbench_linear_gaussian.instance import Instance, linear_gaussian


def test_draw_is_deterministic_per_seed_and_follows_the_recipe():
    first, again, other = (Instance.draw(12, 3, 0.05, seed) for seed in (7, 7, 8))
    assert torch.equal(first.gamma, again.gamma) and torch.equal(first.sigma_v, again.sigma_v)
    assert not torch.equal(first.gamma, other.gamma)
    assert first.gamma.shape == (12, 3) and first.sigma_v.shape == (3, 3)
    assert first.gamma.dtype == first.sigma_v.dtype == torch.float64
    assert first.noise_var == 0.05 and (first.n, first.s) == (12, 3)
    variances = torch.diagonal(first.sigma_v)
    assert torch.equal(first.sigma_v, torch.diag(variances))  # Σ_V diagonal
    assert bool(((variances >= 0.1) & (variances < 1.0)).all())
    # The documented recipe, from the seed: Γ ~ N(0, 1) first, then u ~ Uniform(0.1, 1).
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(first.gamma.numpy(), rng.standard_normal((12, 3)))
    np.testing.assert_array_equal(variances.numpy(), rng.uniform(0.1, 1.0, size=3))


def test_save_load_round_trip_is_exact(tmp_path):
    instance = Instance.draw(9, 4, 0.037, 3)
    path = tmp_path / "instance.npz"
    instance.save(path)
    with np.load(path, allow_pickle=False) as arrays:  # the published format, no pickles
        assert sorted(arrays.files) == ["Gamma", "Sigma_V", "noise_var"]
        assert arrays["noise_var"].shape == ()
    loaded = Instance.load(path)
    assert torch.equal(loaded.gamma, instance.gamma)
    assert torch.equal(loaded.sigma_v, instance.sigma_v)
    assert loaded.noise_var == instance.noise_var
    assert loaded.entropy_y() == instance.entropy_y()


def _good_arrays():
    gamma = np.random.default_rng(0).standard_normal((5, 2))
    return {"Gamma": gamma, "Sigma_V": np.diag([0.5, 0.8]), "noise_var": np.float64(0.05)}


def _with(**changes):
    arrays = _good_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


BAD_ARRAYS = {
    "missing Gamma": (_with(Gamma=None), "lacks the keys ['Gamma']"),
    "missing noise_var": (_with(noise_var=None), "lacks the keys ['noise_var']"),
    "Sigma_V not s x s": (_with(Sigma_V=np.eye(3)), "Sigma_V has shape (3, 3)"),
    "Sigma_V 1-D": (_with(Sigma_V=np.array([0.5, 0.8])), "Sigma_V has shape (2,)"),
    "Gamma 1-D": (_with(Gamma=np.ones(5)), "Gamma has shape (5,)"),
    "Gamma 3-D": (_with(Gamma=np.ones((5, 2, 1))), "Gamma has shape (5, 2, 1)"),
    "Gamma without factors": (_with(Gamma=np.ones((5, 0)), Sigma_V=np.ones((0, 0))),
                              "Gamma has shape (5, 0)"),
    "noise_var zero": (_with(noise_var=np.float64(0.0)), "noise_var = 0.0"),
    "noise_var negative": (_with(noise_var=np.float64(-0.1)), "noise_var = -0.1"),
    "noise_var not scalar": (_with(noise_var=np.array([0.05])), "noise_var has shape (1,)"),
    "n < s": (_with(Gamma=np.ones((1, 2))), "n = 1 < s = 2"),
    "NaN in Gamma": (_with(Gamma=np.full((5, 2), np.nan)), "NaN"),
    "NaN noise_var": (_with(noise_var=np.float64(np.nan)), "NaN"),
    "inf in Sigma_V": (_with(Sigma_V=np.diag([np.inf, 1.0])), "NaN or infinite"),
    "Sigma_V not positive definite": (_with(Sigma_V=np.diag([0.5, -0.1])),
                                      "not symmetric positive definite"),
    # The dataset samples the factors independently (Σ_V is diagonal in the spec): a
    # correlated Σ_V would be silently sampled as its diagonal.
    "Sigma_V not diagonal": (_with(Sigma_V=np.array([[1.0, 0.5], [0.5, 1.0]])), "diagonal"),
    "strings": (_with(Gamma=np.array([["a", "b"]] * 5)), "numeric"),
    # A complex Γ would lose its imaginary part in the float64 cast.
    "complex Gamma": (_with(Gamma=np.ones((5, 2), dtype=complex)), "real"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_instance_arrays_raise_one_line_data_errors(tmp_path, case):
    arrays, expected = BAD_ARRAYS[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as raised:
        Instance.load(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    assert expected in message


def _truncated(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated 10%", "truncated 50%",
                                  "truncated 99%", "garbage", "npy not npz", "a directory"])
def test_unreadable_instance_files_raise_one_line_data_errors(tmp_path, kind):
    path = tmp_path / "instance.npz"
    if kind == "missing":
        pass
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind.startswith("truncated"):
        Instance.draw(6, 2, 0.05, 0).save(path)
        _truncated(path, int(kind.split()[1].rstrip("%")) / 100)
    elif kind == "garbage":
        path.write_bytes(os.urandom(64) + b"not an npz at all" * 20)
    elif kind == "npy not npz":
        with open(path, "wb") as stream:  # a valid .npy under the .npz name
            np.save(stream, np.ones((5, 2)))
    else:
        path.mkdir()
    with pytest.raises(DataError) as raised:
        Instance.load(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message


class _MakesDirectoryWhenUnpickled:
    """Unpickling this object calls os.mkdir(path): the sentinel of a pickle being loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("container", ["object array in npz", "raw pickle"])
def test_pickled_instance_files_are_refused_and_never_unpickled(tmp_path, container):
    sentinel = tmp_path / "unpickled"
    payload = np.array([_MakesDirectoryWhenUnpickled(sentinel)] * 2, dtype=object)
    path = tmp_path / "instance.npz"
    if container == "raw pickle":
        path.write_bytes(pickle.dumps({"Gamma": payload}))
    else:
        np.savez(path, Gamma=payload, Sigma_V=np.eye(2), noise_var=np.float64(0.05))
    assert not sentinel.exists()
    with pytest.raises(DataError) as raised:
        Instance.load(path)
    assert "\n" not in str(raised.value)
    assert not sentinel.exists(), "the instance loader unpickled the file"
    # The sentinel works: what unpickling would call does create it (called here directly,
    # since nothing in the project ever unpickles a file).
    make_directory, arguments = payload[0].__reduce__()
    make_directory(*arguments)
    assert sentinel.is_dir()


def test_fast_sigma_y_products_equal_dense_matrices():
    instance = Instance.draw(11, 3, 0.05, 5)
    sigma_y = dense_sigma_y(*instance_arrays(instance))
    X = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 4, 11)))
    np.testing.assert_allclose(instance.sigma_y.numpy(), sigma_y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(instance.times_sigma_y(X).numpy(), X.numpy() @ sigma_y,
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(instance.times_precision_y(X).numpy(),
                               X.numpy() @ np.linalg.inv(sigma_y), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(instance.cov_y_v.numpy(),
                               instance.gamma.numpy() @ instance.sigma_v.numpy())
    # h(Y) against scipy's Gaussian entropy
    assert instance.entropy_y() == pytest.approx(
        scipy.stats.multivariate_normal(cov=sigma_y).entropy(), rel=1e-12)


def test_sample_moments_match_the_model():
    """E[YYᵀ] ≈ Σ_Y, E[YVᵀ] ≈ ΓΣ_V, E[VVᵀ] ≈ Σ_V, entry by entry within 5 standard errors of a
    second-moment estimate, Var(Z_a Z_b) = Σ_aa Σ_bb + Σ_ab² for zero-mean Gaussians."""
    dataset = linear_gaussian(n=6, s=3, noise_var=0.2, seed=4)
    gamma, sigma_v, noise_var = instance_arrays(dataset.instance)
    num = 200_000
    factors, observations = dataset.sample(num, torch.Generator().manual_seed(0))
    assert factors.shape == (num, 3) and observations.shape == (num, 6)
    assert factors.dtype == observations.dtype == torch.float64
    joint = np.concatenate([observations.numpy(), factors.numpy()], axis=1)
    cross = np.block([[dense_sigma_y(gamma, sigma_v, noise_var), gamma @ sigma_v],
                      [(gamma @ sigma_v).T, sigma_v]])
    estimate = joint.T @ joint / num
    standard_error = np.sqrt((np.outer(np.diag(cross), np.diag(cross)) + cross**2) / num)
    assert np.all(np.abs(estimate - cross) <= 5 * standard_error)
    mean_error = np.sqrt(np.diag(cross) / num)
    assert np.all(np.abs(joint.mean(0)) <= 5 * mean_error)
    # the estimate is informative: a wrong noise variance is detected
    wrong = dense_sigma_y(gamma, sigma_v, 2 * noise_var)
    assert np.any(np.abs(estimate[:6, :6] - wrong) > 5 * standard_error[:6, :6])
    again = dataset.sample(num, torch.Generator().manual_seed(0))
    assert torch.equal(again[1], observations)


@pytest.mark.parametrize("kwargs, binding", [
    ({"n": 2, "s": 3}, "linear_gaussian.n"),
    ({"noise_var": 0.0}, "linear_gaussian.noise_var"),
    ({"noise_var": -0.05}, "linear_gaussian.noise_var"),
    ({"source": "official"}, "dataset.source"),
    ({"source": "procedural"}, "dataset.source"),
])
def test_factory_validation(kwargs, binding):
    with pytest.raises(ConfigError) as raised:
        linear_gaussian(**{"n": 8, "s": 2, **kwargs})
    assert binding in str(raised.value) and "\n" not in str(raised.value)


def test_factory_reads_and_writes_instance_files(tmp_path):
    saved = tmp_path / "saved.npz"
    drawn = linear_gaussian(n=7, s=2, noise_var=0.1, seed=9, save_instance=str(saved))
    loaded = linear_gaussian(instance_file=str(saved), source="synthetic")
    assert torch.equal(loaded.instance.gamma, drawn.instance.gamma)
    assert torch.equal(loaded.instance.sigma_v, drawn.instance.sigma_v)
    assert loaded.describe()["instance_file"] == str(saved)
    assert loaded.describe()["instance_seed"] is None
    assert drawn.describe()["entropy_y"] == pytest.approx(
        scipy.stats.multivariate_normal(cov=drawn.instance.sigma_y.numpy()).entropy())
    assert loaded.factor_names == ("v0", "v1") and loaded.observation_shape == (7,)
    with pytest.raises(DataError):
        linear_gaussian(instance_file=str(tmp_path / "absent.npz"))
    assert math.isclose(loaded.instance.noise_var, 0.1)
