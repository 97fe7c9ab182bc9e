"""BetaVAE score (Higgins et al. 2017), as disentanglement_lib's `compute_beta_vae_sklearn`.

Each point picks a factor k and two batches of batch_size factor vectors whose pairs share the
value of k; the feature is mean |z1 - z2| over the batch, the label k. A logistic regression
(scikit-learn's `LogisticRegression()` in `reference` mode, the torch solver of the same objective
in `fast` mode; see classifiers.py) is fitted on num_train points; its train and eval accuracy
are the score.
"""
from __future__ import annotations

from typing import Any

import torch

from dlbench.interfaces import GroundTruthDataset, Model
from dlbench.metrics.base import (
    MODES,
    check_choice,
    check_count,
    check_metric_seed,
    finite_codes,
    json_scores,
    metric_generator,
    provenance,
    require_sample_memory,
)
from dlbench.metrics.classifiers import accuracy, logistic_regression_logits
from dlbench.metrics.discretize import labels_against
from dlbench.metrics.sampling import SUPERVISED_ALTERNATIVE, check_protocol, encode_factors, require_discrete_dataset


def beta_vae_features(first_codes: torch.Tensor, second_codes: torch.Tensor) -> torch.Tensor:
    """Mean absolute code difference (..., V, d) of paired batches (..., V, B, d)."""
    # abs_ on the fresh difference: one batch-sized temporary fewer.
    return (finite_codes(first_codes) - finite_codes(second_codes)).abs_().mean(-2)


def beta_vae_accuracy(features: torch.Tensor, labels: torch.Tensor, eval_features: torch.Tensor,
                      eval_labels: torch.Tensor, *, mode: str = "reference", seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, eval) accuracy (...) of a logistic regression predicting the fixed factor (V,)
    from features (..., V, d)."""
    features, eval_features = finite_codes(features), finite_codes(eval_features)
    classes, labels, eval_labels = labels_against(labels.to(features.device), eval_labels.to(features.device))
    train_logits, eval_logits = logistic_regression_logits(features, labels.unsqueeze(0), [len(classes)],
                                                           [features, eval_features], mode=mode, seed=seed)
    return accuracy(train_logits, labels).squeeze(-1), accuracy(eval_logits, eval_labels).squeeze(-1)


class BetaVAEScore:
    """BetaVAE score: accuracy of a linear classifier naming the shared factor from code differences.

    Args:
        protocol: how factors are sampled ("dlib": per factor).
        batch_size: pairs of codes averaged into one training point.
        num_train: training points of the classifier.
        num_eval: evaluation points.
        mode: "reference" (scikit-learn's LogisticRegression) or "fast" (the same objective in torch).
        random_seed: the metric's own sampling seed (default: the run's evaluation.random_seed).
    """

    name = "beta_vae_score"

    def __init__(self, protocol: str = "dlib", batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                 mode: str = "reference", random_seed: int | None = None):
        self.protocol = check_protocol("beta_vae_score.protocol", protocol, ("dlib",))
        self.batch_size = check_count("beta_vae_score.batch_size", batch_size)
        self.num_train = check_count("beta_vae_score.num_train", num_train, minimum=2)
        self.num_eval = check_count("beta_vae_score.num_eval", num_eval)
        self.mode = check_choice("beta_vae_score.mode", mode, MODES)
        self.random_seed = check_metric_seed("beta_vae_score.random_seed", random_seed)

    def _points(self, model, dataset, num_points, generator) -> tuple[torch.Tensor, torch.Tensor]:
        num_factors = len(dataset.factor_sizes)
        fixed_factor = torch.randint(num_factors, (num_points,), generator=generator, device=generator.device)
        first = dataset.sample_factors(num_points * self.batch_size, generator).view(num_points, self.batch_size, -1)
        second = dataset.sample_factors(num_points * self.batch_size, generator).view(num_points, self.batch_size, -1)
        fixed = torch.nn.functional.one_hot(fixed_factor, num_factors).bool().to(first.device).unsqueeze(1)
        second = torch.where(fixed, first, second)
        first_codes, second_codes = (encode_factors(model.representation, dataset, factors.flatten(0, 1))
                                     .unflatten(-2, (num_points, self.batch_size)) for factors in (first, second))
        return beta_vae_features(first_codes, second_codes), fixed_factor

    def __call__(self, model: Model, dataset: GroundTruthDataset, *, generator: torch.Generator) -> dict[str, Any]:
        grid = require_discrete_dataset(dataset, self.name, SUPERVISED_ALTERNATIVE)
        require_sample_memory(model, grid, 2 * (self.num_train + self.num_eval) * self.batch_size, self.name)
        generator, seed = metric_generator(self.random_seed, generator, dataset.device)
        features, labels = self._points(model, grid, self.num_train, generator)
        eval_features, eval_labels = self._points(model, grid, self.num_eval, generator)
        train_accuracy, eval_accuracy = beta_vae_accuracy(features, labels, eval_features, eval_labels,
                                                          mode=self.mode, seed=seed)
        return {**json_scores({"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}),
                "provenance": provenance(metric=self.name, protocol=self.protocol, seed=seed, mode=self.mode,
                                         batch_size=self.batch_size, num_train=self.num_train, num_eval=self.num_eval)}
