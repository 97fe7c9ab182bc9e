"""The closed-form objective, its gradients and the exact metrics against independent
computations: dense numpy with explicit inverses, torch autograd, finite differences, Python
loops and exhaustive search."""
import numpy as np
import pytest
import torch
from lg_test_helpers import (
    autograd_gradients,
    brute_force_matching,
    brute_force_scores,
    dense_loss_np,
    dense_loss_torch,
    instance_arrays,
    random_spd_np,
)

from dlbench import matched_information
from dlbench_linear_gaussian import objective, solvers
from dlbench_linear_gaussian.instance import Instance

N, M, S = 9, 4, 3
BETAS = [1.0, 4.0, 2.5, 16.0]
LAMBDAS = [0.0, 2.0, 0.5, 8.0]


@pytest.fixture(scope="module")
def instance():
    return Instance.draw(N, S, 0.05, 11)


@pytest.fixture(scope="module")
def solutions():
    """Four arbitrary (not stationary) solutions with SPD covariances, and their (β, λ)."""
    rng = np.random.default_rng(2)
    P = len(BETAS)
    A = rng.standard_normal((P, N, M)) / 2
    B = rng.standard_normal((P, M, N)) / 2
    sigma_z = np.stack([random_spd_np(rng, N) for _ in range(P)])
    sigma_w = np.stack([random_spd_np(rng, M) for _ in range(P)])
    as_tensors = [torch.from_numpy(a) for a in (A, B, sigma_z, sigma_w)]
    return as_tensors, torch.tensor(BETAS, dtype=torch.float64), torch.tensor(
        LAMBDAS, dtype=torch.float64)


def test_loss_terms_equal_dense_numpy(instance, solutions):
    (A, B, sigma_z, sigma_w), beta, lam = solutions
    sigma_y = instance.sigma_y
    terms = objective.loss_terms(A, B, sigma_z, sigma_w, sigma_y, beta, lam)
    for p in range(len(BETAS)):
        expected = dense_loss_np(A[p].numpy(), B[p].numpy(), sigma_z[p].numpy(),
                                 sigma_w[p].numpy(), sigma_y.numpy(), BETAS[p], LAMBDAS[p])
        for key in ("nll", "kl", "trace_r", "loss"):
            assert terms[key][p].item() == pytest.approx(expected[key], rel=1e-11, abs=1e-11)


def test_closed_form_gradients_equal_autograd(instance, solutions):
    """The spec's gradients are those of L as a function of independent matrix entries; at a
    symmetric Σ that gradient is symmetric, so it is exactly what autograd gives for Σ passed
    as a plain tensor (through linalg.inv and slogdet, no Cholesky)."""
    (A, B, sigma_z, sigma_w), beta, lam = solutions
    sigma_y = instance.sigma_y
    _, grads = objective.loss_and_gradients(A, B, sigma_z, sigma_w, sigma_y, beta, lam)
    for p in range(len(BETAS)):
        reference = autograd_gradients(A[p], B[p], sigma_z[p], sigma_w[p], sigma_y,
                                       BETAS[p], LAMBDAS[p])
        for key, value in reference.items():
            scale = value.abs().max().item()
            assert scale > 1e-3  # not a vacuous comparison at a stationary point
            torch.testing.assert_close(grads[key][p], value, rtol=0, atol=1e-10 * scale)
            if key.startswith("sigma"):
                torch.testing.assert_close(value, value.T, rtol=0, atol=1e-12 * scale)


def test_autograd_of_the_plugin_loss_agrees_too(instance, solutions):
    """Autograd through the plugin's own Cholesky-based loss_terms gives the same gradients for plain tensors at
    symmetric Σ."""
    (A, B, sigma_z, sigma_w), beta, lam = solutions
    leaves = [t.clone().requires_grad_(True) for t in (A, B, sigma_z, sigma_w)]
    loss = objective.loss_terms(*leaves, instance.sigma_y, beta, lam)["loss"].sum()
    autograd = torch.autograd.grad(loss, leaves)
    _, grads = objective.loss_and_gradients(A, B, sigma_z, sigma_w, instance.sigma_y, beta, lam)
    for key, value in zip(("A", "B", "sigma_z", "sigma_w"), autograd):
        scale = value.abs().max().item()
        torch.testing.assert_close(grads[key], value, rtol=0, atol=1e-10 * scale)


def test_covariance_gradients_under_a_symmetric_parametrisation(instance, solutions):
    """Σ = ½(S + Sᵀ): autograd w.r.t. S is the symmetric part of ∂L/∂Σ, which must be ∂L/∂Σ
    itself; and a central finite difference along a symmetric direction E equals <∂L/∂Σ, E>."""
    (A, B, sigma_z, sigma_w), beta, lam = solutions
    sigma_y = instance.sigma_y
    _, grads = objective.loss_and_gradients(A, B, sigma_z, sigma_w, sigma_y, beta, lam)
    rng = np.random.default_rng(5)
    p = 1
    for key in ("sigma_z", "sigma_w"):
        base = {"sigma_z": sigma_z[p], "sigma_w": sigma_w[p]}
        S = base[key].clone().requires_grad_(True)

        def loss_with(matrix):
            values = dict(base, **{key: matrix})
            return dense_loss_torch(A[p], B[p], values["sigma_z"], values["sigma_w"], sigma_y,
                                    BETAS[p], LAMBDAS[p])

        (through_s,) = torch.autograd.grad(loss_with(0.5 * (S + S.T)), [S])
        scale = through_s.abs().max().item()
        torch.testing.assert_close(grads[key][p], through_s, rtol=0, atol=1e-10 * scale)

        direction = rng.standard_normal(base[key].shape)
        direction = torch.from_numpy(direction + direction.T)
        h = 1e-5
        with torch.no_grad():
            difference = (loss_with(base[key] + h * direction)
                          - loss_with(base[key] - h * direction)).item() / (2 * h)
        predicted = (grads[key][p] * direction).sum().item()
        assert difference == pytest.approx(predicted, rel=1e-6, abs=1e-8)


def test_exact_metrics_equal_brute_force(instance, solutions):
    (A, B, sigma_z, sigma_w), beta, lam = solutions
    metrics = objective.exact_metrics(A, B, sigma_z, sigma_w, instance, beta, lam)
    rho2 = objective.factor_correlations(B, sigma_w, instance)
    gamma, sigma_v, noise_var = instance_arrays(instance)
    for p in range(len(BETAS)):
        expected = brute_force_scores(B[p].numpy(), sigma_w[p].numpy(), gamma, sigma_v, noise_var)
        np.testing.assert_allclose(rho2[p].numpy(), expected["rho2"], rtol=1e-11, atol=1e-14)
        assert metrics["sap"][p].item() == pytest.approx(expected["sap"], rel=1e-10, abs=1e-14)
        assert metrics["i_m"][p].item() == pytest.approx(expected["i_m"], rel=1e-10, abs=1e-14)
        assert metrics["mutual_info_xy"][p].item() == pytest.approx(expected["mutual_info_xy"],
                                                                    rel=1e-10)
        dense = dense_loss_np(A[p].numpy(), B[p].numpy(), sigma_z[p].numpy(),
                              sigma_w[p].numpy(), instance.sigma_y.numpy(), BETAS[p], LAMBDAS[p])
        for key in ("nll", "kl", "loss"):
            assert metrics[key][p].item() == pytest.approx(dense[key], rel=1e-11, abs=1e-11)
        assert metrics["b_norm"][p].item() == pytest.approx(np.linalg.norm(B[p].numpy(), 2),
                                                            rel=1e-10)
        assert metrics["min_eig_sigma_w"][p].item() == pytest.approx(
            np.linalg.eigvalsh(sigma_w[p].numpy())[0], rel=1e-10)
        assert expected["sap"] > 1e-3 and expected["i_m"] > 1e-3  # informative encoders
    for key, value in metrics.items():
        assert value.shape == (len(BETAS),), key


def test_matched_information_is_the_optimal_matching_not_greedy():
    # greedy takes the 10 and is left with 0 (total 10); the best matching is 9 + 9 = 18
    trap = np.array([[10.0, 9.0], [9.0, 0.0], [0.0, 0.0]])
    rng = np.random.default_rng(3)
    random = [rng.exponential(size=(5, 3)) for _ in range(6)] + [rng.exponential(size=(4, 4))]
    for matrix in [trap, *random]:
        result = matched_information(torch.from_numpy(matrix[None]))
        assert result.item() == pytest.approx(brute_force_matching(matrix), rel=1e-12)
    assert matched_information(torch.from_numpy(trap[None])).item() == 18.0


def test_sap_with_a_loop():
    rng = np.random.default_rng(4)
    rho2 = rng.uniform(size=(3, 5, 2))
    result = objective.sap_from_correlations(torch.from_numpy(rho2))
    for p in range(3):
        gaps = [sorted(rho2[p, :, j])[-1] - sorted(rho2[p, :, j])[-2] for j in range(2)]
        assert result[p].item() == pytest.approx(sum(gaps) / 2, rel=1e-14)


def test_mutual_information_matrix_is_the_gaussian_formula():
    """I = −½ log(1 − ρ²), checked against scipy's entropies of the bivariate Gaussian."""
    import scipy.stats

    rho = np.array([0.0, 0.3, 0.9, 0.999])
    result = objective.mutual_information_matrix(torch.from_numpy(rho**2))
    for r, value in zip(rho, result.tolist()):
        joint = scipy.stats.multivariate_normal(cov=[[1.0, r], [r, 1.0]]).entropy()
        marginal = scipy.stats.norm().entropy()
        assert value == pytest.approx(2 * marginal - joint, rel=1e-10, abs=1e-14)


def test_cholesky_factor_gradients_equal_autograd_through_the_factor(instance):
    """With Σ = LLᵀ + εI, the gradients for L_Z and L_W that AdamW steps on equal autograd of
    the dense loss through L (the loss terms are unchanged by asking for them)."""
    A, B, L_Z, L_W = solvers.adamw_starts(3, 3, instance.n, torch.Generator().manual_seed(5))
    beta = torch.tensor([1.0, 4.0, 8.0], dtype=torch.float64)
    lam = torch.tensor([0.0, 2.0, 6.0], dtype=torch.float64)

    def covariances(L_Z, L_W):
        return (L_Z @ L_Z.mT + solvers.JITTER * torch.eye(instance.n, dtype=torch.float64),
                L_W @ L_W.mT + solvers.JITTER * torch.eye(3, dtype=torch.float64))

    terms, grads = objective.loss_and_gradients(A, B, *covariances(L_Z, L_W), instance.sigma_y,
                                                beta, lam, cholesky_factors=(L_Z, L_W))
    plain_terms, _ = objective.loss_and_gradients(A, B, *covariances(L_Z, L_W),
                                                  instance.sigma_y, beta, lam)
    torch.testing.assert_close(terms["loss"], plain_terms["loss"], rtol=0, atol=0)
    for p in range(3):
        factors = [L_Z[p].clone().requires_grad_(True), L_W[p].clone().requires_grad_(True)]
        sigma_z, sigma_w = covariances(*factors)
        loss = dense_loss_torch(A[p], B[p], sigma_z, sigma_w, instance.sigma_y, beta[p].item(),
                                lam[p].item())
        expected = torch.autograd.grad(loss, factors)
        torch.testing.assert_close(grads["L_Z"][p], expected[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(grads["L_W"][p], expected[1], rtol=1e-9, atol=1e-9)
