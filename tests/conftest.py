import pytest

TINY_LINEAR_GIN = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 12
linear_gaussian.s = 3
linear_gaussian.seed = 3
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 4
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.solvers = ["fixed_point"]
linear_gaussian_vae.num_starts = 3
linear_gaussian_vae.max_half_steps = 600
"""


@pytest.fixture
def tiny_linear_gin(tmp_path):
    """A linear-Gaussian experiment small enough to run in a second or two."""
    path = tmp_path / "tiny.gin"
    path.write_text(TINY_LINEAR_GIN)
    return path
