"""The linear plugin runs dlbench's conformance kit on its model and dataset, as any plugin would."""
from dlbench.testing import DatasetUnderTest, ModelUnderTest, parametrize_with_checks
from dlbench_linear_gaussian.instance import linear_gaussian
from dlbench_linear_gaussian.model import linear_gaussian_vae


def small_model():
    return linear_gaussian_vae(betas=[4], lambdas=[0, 2], solvers=["fixed_point", "adamw"], num_starts=2,
                               num_latent=3, max_half_steps=400, adamw_iterations=30)


def small_dataset():
    return linear_gaussian(n=8, s=2, seed=1)


@parametrize_with_checks([ModelUnderTest(small_model, small_dataset), DatasetUnderTest(small_dataset)])
def test_linear_plugin_conforms(subject, check, tmp_path):
    check(subject, tmp_path)
