"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018), as
disentanglement_lib's `_compute_dci`.

Per factor a gradient-boosted tree classifier on all codes (train split) gives the importance
R_ij = |importance of code i for factor j| (each factor's column sums to 1) and a train / test
accuracy. Disentanglement = Σ_i (1 - H_K(P_i·)) ρ_i, P_i· = row i of R normalised, entropy in base
K, ρ_i = Σ_j R_ij / Σ R; completeness the same over columns in base d; informativeness the mean
train / test accuracy. Entropies add 1e-11 to R as the reference does.

`reference`: scikit-learn's `GradientBoostingClassifier()` with its defaults (100 stages, depth 3,
learning rate 0.1, exact split search) seeded with the metric's seed (the seed only breaks ties).
`fast`: the same boosting in torch on the codes' device: multinomial deviance (binomial for two
classes), one depth-3 least-squares regression tree per class and stage, Friedman's leaf update
((K-1)/K · Σ residual / Σ p(1-p)), learning rate 0.1, impurity-decrease importances; but splits
are searched on 255 quantile bins of each code (as histogram boosting does) instead of on every
distinct value. Importances and accuracies therefore differ slightly from `reference`; the
difference on realistic codes is measured in tests/metrics/test_dci.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from dlbench.metrics.base import (
    MODES,
    check_choice,
    check_count,
    estimator_seed,
    finite_codes,
    per_solution,
    require_discrete_factors,
    varying_factor_mask,
)
from dlbench.metrics.discretize import labels_against
from dlbench.metrics.sampling import SampledMetric, Split, factor_details

NUM_STAGES = 100
MAX_DEPTH = 3
LEARNING_RATE = 0.1
MAX_BINS = 255
ENTROPY_OFFSET = 1e-11


def _entropy_score(importance: torch.Tensor, dim: int) -> torch.Tensor:
    """Σ over the other axis of (1 - entropy along `dim`, base = its length) · its share of Σ R."""
    probabilities = importance + ENTROPY_OFFSET
    probabilities = probabilities / probabilities.sum(dim, keepdim=True)
    entropy = -torch.special.xlogy(probabilities, probabilities).sum(dim) / math.log(importance.shape[dim])
    total = importance.sum((-1, -2), keepdim=True)
    # The reference weighs uniformly when nothing is important at all.
    weights_source = torch.where(total == 0, torch.ones_like(importance), importance)
    weights = weights_source.sum(dim) / weights_source.sum((-1, -2)).unsqueeze(-1)
    return ((1 - entropy) * weights).sum(-1)


def disentanglement(importance: torch.Tensor) -> torch.Tensor:
    """Disentanglement (...) of an importance matrix (..., d codes, K factors)."""
    return _entropy_score(importance, -1)


def completeness(importance: torch.Tensor) -> torch.Tensor:
    """Completeness (...) of an importance matrix (..., d codes, K factors)."""
    return _entropy_score(importance, -2)


def reference_importance(codes, test_codes, factors, test_factors, seed):
    from sklearn.ensemble import GradientBoostingClassifier  # loaded only where the reference runs

    codes, test_codes = codes.cpu().numpy(), test_codes.cpu().numpy()
    factors, test_factors = factors.cpu().numpy(), test_factors.cpu().numpy()
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train_accuracy, test_accuracy = np.zeros(factors.shape[1]), np.zeros(factors.shape[1])
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(random_state=estimator_seed(seed)).fit(codes, factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_accuracy[j] = np.mean(model.predict(codes) == factors[:, j])
        test_accuracy[j] = np.mean(model.predict(test_codes) == test_factors[:, j])
    return tuple(map(torch.from_numpy, (importance, train_accuracy, test_accuracy)))


def _quantile_bins(codes: torch.Tensor, test_codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin indices (N, d) in [0, MAX_BINS) from the train codes' quantiles, for both splits."""
    levels = torch.arange(1, MAX_BINS, dtype=torch.float64, device=codes.device) / MAX_BINS
    edges = torch.quantile(codes, levels, dim=0).T.contiguous()  # (d, MAX_BINS - 1)
    return tuple(torch.searchsorted(edges, split.T.contiguous(), right=True).T for split in (codes, test_codes))


def _boost(bins: torch.Tensor, test_bins: torch.Tensor, labels: torch.Tensor, num_classes: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient boosting for one factor: (importance (d,), train logits, test logits)."""
    num, num_codes = bins.shape
    device = bins.device
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(torch.float64)
    prior = one_hot.mean(0)
    binary = num_classes == 2
    # One tree per class and stage; a single one (class 1 against class 0) for two classes.
    targets = one_hot[:, 1:] if binary else one_hot
    num_trees = targets.shape[1]
    logits = (prior[1:] / prior[:1]).log() if binary else prior.log()
    logits, test_logits = logits.expand(num, num_trees).clone(), logits.expand(len(test_bins), num_trees).clone()
    leaf_factor = 1.0 if binary else (num_classes - 1) / num_classes
    num_leaves = 2 ** MAX_DEPTH
    tree_offsets = torch.arange(num_trees, device=device).unsqueeze(-1)  # (T, 1)
    code_index = torch.arange(num_codes, device=device)
    importance = torch.zeros(num_codes, dtype=torch.float64, device=device)
    for _ in range(NUM_STAGES):
        probabilities = torch.sigmoid(logits) if binary else torch.softmax(logits, -1)
        residual = (targets - probabilities).T.contiguous()  # (T, N)
        hessian = (probabilities * (1 - probabilities)).T
        node = torch.zeros_like(residual, dtype=torch.long)
        test_node = torch.zeros(num_trees, len(test_bins), dtype=torch.long, device=device)
        for depth in range(MAX_DEPTH):
            num_nodes = 2 ** depth
            # Residual sums and counts per (tree, node, code, bin): one bincount each.
            cell = (((tree_offsets * num_nodes + node).unsqueeze(-1) * num_codes + code_index) * MAX_BINS
                    + bins).flatten()
            size = num_trees * num_nodes * num_codes * MAX_BINS
            sums = torch.bincount(cell, residual.unsqueeze(-1).expand(-1, -1, num_codes).flatten(), size)
            counts = torch.bincount(cell, minlength=size).to(torch.float64)
            cells = (num_trees, num_nodes, num_codes, MAX_BINS)
            sums, counts = sums.view(cells), counts.view(cells)
            left_sum, left_count = sums.cumsum(-1)[..., :-1], counts.cumsum(-1)[..., :-1]
            node_sum, node_count = sums.sum(-1, keepdim=True), counts.sum(-1, keepdim=True)
            right_sum, right_count = node_sum - left_sum, node_count - left_count
            # Squared-error decrease of each split (what sklearn's friedman_mse ranks splits by).
            gain = (left_sum.square() / left_count + right_sum.square() / right_count
                    - node_sum.square() / node_count)
            gain = torch.where((left_count > 0) & (right_count > 0), gain, -1.0)
            best_gain, best = gain.flatten(-2).max(-1)  # (T, nodes)
            split = best_gain > 1e-12
            split_code, split_bin = best // (MAX_BINS - 1), best % (MAX_BINS - 1)
            importance += torch.bincount(split_code[split], best_gain[split], num_codes)
            node = _descend(node, bins, split, split_code, split_bin)
            test_node = _descend(test_node, test_bins, split, split_code, split_bin)
        # Friedman's Newton step per leaf.
        leaf = (tree_offsets * num_leaves + node).flatten()
        numerator = torch.bincount(leaf, residual.flatten(), num_trees * num_leaves)
        denominator = torch.bincount(leaf, hessian.flatten(), num_trees * num_leaves)
        values = torch.where(denominator > 1e-150, leaf_factor * numerator / denominator, 0.0)
        values = values.view(num_trees, num_leaves)
        logits += LEARNING_RATE * values.gather(1, node).T
        test_logits += LEARNING_RATE * values.gather(1, test_node).T
    return importance, logits, test_logits


def _descend(node: torch.Tensor, bins: torch.Tensor, split: torch.Tensor, split_code: torch.Tensor,
             split_bin: torch.Tensor) -> torch.Tensor:
    """Child index (T, n) of every sample; an unsplit node sends all its samples left."""
    code = split_code.gather(1, node)
    values = bins.gather(1, code.T).T  # bins[sample, code of its node]
    goes_right = split.gather(1, node) & (values > split_bin.gather(1, node))
    return node * 2 + goes_right


def _fast_importance(codes, test_codes, factors, test_factors, seed):
    bins, test_bins = _quantile_bins(codes, test_codes)
    columns = []
    for factor, test_factor in zip(factors.unbind(-1), test_factors.unbind(-1)):
        classes, labels, test_labels = labels_against(factor, test_factor)
        importance, logits, test_logits = _boost(bins, test_bins, labels, len(classes))
        total = importance.sum()
        columns.append((torch.where(total > 0, importance / total, 0.0),
                        _boosted_accuracy(logits, labels), _boosted_accuracy(test_logits, test_labels)))
    return tuple(torch.stack(values, -1) for values in zip(*columns))


def _boosted_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    predictions = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(-1)
    return (predictions == labels).to(torch.float64).mean()


def importance_matrix(codes: torch.Tensor, factors: torch.Tensor, test_codes: torch.Tensor,
                      test_factors: torch.Tensor, *, mode: str = "reference", seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R (..., d, K), train accuracy (..., K), test accuracy (..., K)) of boosted trees."""
    compute = _fast_importance if mode == "fast" else reference_importance
    return per_solution(compute, (codes, test_codes), factors.to(codes.device), test_factors.to(codes.device), seed)


def dci(codes: torch.Tensor, factors: torch.Tensor, test_codes: torch.Tensor, test_factors: torch.Tensor,
        *, mode: str = "reference", seed: int = 0) -> dict[str, torch.Tensor]:
    """Disentanglement, completeness and informativeness of codes (..., N, d) for discrete factors
    (N, K); factors that never vary in the train split are skipped."""
    check_choice("dci.mode", mode, MODES)
    require_discrete_factors(factors, "dci")
    codes, test_codes = finite_codes(codes), finite_codes(test_codes)
    varies = varying_factor_mask(factors)
    importance, train_accuracy, test_accuracy = importance_matrix(
        codes, factors[:, varies], test_codes, test_factors[:, varies], mode=mode, seed=seed)
    return {"disentanglement": disentanglement(importance), "completeness": completeness(importance),
            "informativeness_train": train_accuracy.mean(-1), "informativeness_test": test_accuracy.mean(-1)}


class DCI(SampledMetric):
    """DCI: disentanglement, completeness and informativeness from boosted-tree importances."""

    name = "dci"

    def __init__(self, protocol: str = "paper", num_train: int = 10000, num_test: int = 5000,
                 mode: str = "reference", random_seed: int | None = None):
        super().__init__(protocol=protocol, num_train=num_train, num_test=check_count("dci.num_test", num_test),
                         random_seed=random_seed)
        self.mode = check_choice("dci.mode", mode, MODES)

    def score(self, train: Split, test: Split | None, seed: int):
        return (dci(train.codes, train.factors, test.codes, test.factors, mode=self.mode, seed=seed),
                {"mode": self.mode, **factor_details(train.factors)})
