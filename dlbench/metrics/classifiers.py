"""Logistic regression as scikit-learn's `LogisticRegression()` defines it, in two modes.

`reference` fits scikit-learn's estimator with its default settings (lbfgs, C = 1, at most 100
iterations, tolerance 1e-4). `fast` minimises the same objective in torch on the data's device:
mean cross-entropy + ||W||² / (2 C N), intercept unpenalised, binomial for two classes and
multinomial otherwise, by L-BFGS in float64 with analytic gradients until the gradient is below
1e-10, so it differs from `reference` only where lbfgs stops early.
"""
from __future__ import annotations

import torch
from sklearn.linear_model import LogisticRegression

from dlbench.metrics.base import estimator_seed, per_solution

INVERSE_REGULARISATION = 1.0  # scikit-learn's C


def _full_logits(logits: torch.Tensor) -> torch.Tensor:
    """Binary models have one logit column (class 1 against class 0): give class 0 a zero logit,
    so argmax and softmax work alike for all class counts."""
    return torch.cat([torch.zeros_like(logits), logits], -1) if logits.shape[-1] == 1 else logits


def _loss_and_gradient(features, one_hot, weight, bias):
    logits = _full_logits(features @ weight + bias)
    num = features.shape[0]
    loss = (torch.logsumexp(logits, -1) - (logits * one_hot).sum(-1)).mean()
    loss = loss + weight.square().sum() / (2 * INVERSE_REGULARISATION * num)
    residual = (torch.softmax(logits, -1) - one_hot)[:, -weight.shape[1]:] / num
    return loss, features.T @ residual + weight / (INVERSE_REGULARISATION * num), residual.sum(0)


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, num_classes: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (p, C'), bias (C')) with C' = 1 for two classes, else num_classes."""
    features = features.to(torch.float64)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(features)
    columns = 1 if num_classes == 2 else num_classes
    weight = torch.zeros(features.shape[1], columns, dtype=torch.float64, device=features.device)
    bias = torch.zeros(columns, dtype=torch.float64, device=features.device)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1, max_iter=500, tolerance_grad=1e-6,
                                  tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        # Analytic gradients: no autograd graph, so this also works inside torch.inference_mode().
        loss, weight.grad, bias.grad = _loss_and_gradient(features, one_hot, weight, bias)
        return loss

    optimiser.step(closure)
    return weight, bias


def _reference_logits(features, labels, num_classes, evaluated, seed):
    model = LogisticRegression(random_state=estimator_seed(seed)).fit(features.cpu().numpy(), labels.cpu().numpy())
    decisions = [torch.from_numpy(model.decision_function(other.cpu().numpy())).to(features)
                 for other in evaluated]
    return tuple(_full_logits(decision.reshape(len(decision), -1)) for decision in decisions)


def _fast_logits(features, labels, num_classes, evaluated, seed):
    weight, bias = fit_logistic_regression(features, labels, num_classes)
    return tuple(_full_logits(other.to(torch.float64) @ weight + bias) for other in evaluated)


def logistic_regression_logits(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                               evaluated: list[torch.Tensor], *, mode: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Fit on features (..., N, p) with labels (N,) in [0, num_classes); return the logits
    (..., n, num_classes) of each tensor in `evaluated` (..., n, p). One fit per solution."""
    compute = _fast_logits if mode == "fast" else _reference_logits
    return per_solution(lambda solution_features, *solution_evaluated:
                        compute(solution_features, labels, num_classes, solution_evaluated, seed),
                        (features, *evaluated))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of argmax predictions equal to labels (..., n); a label of -1 is never predicted."""
    return (logits.argmax(-1) == labels).to(torch.float64).mean(-1)
