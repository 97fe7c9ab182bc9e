"""`dlbench bench metrics`: each metric on 10,000 (+ 5,000) samples, d = 10, K = 6, against a
straightforward per-pair numpy / scikit-learn implementation (disentanglement_lib's style), timed
in the same call. SAP's and DCI's `reference` modes run the baseline's own estimator per pair, so
only their `fast` modes are timed against it."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from dlbench.metrics.beta_vae import beta_vae_accuracy, beta_vae_features
from dlbench.metrics.dci import dci, reference_importance
from dlbench.metrics.factor_vae import factor_vae_votes, majority_vote_accuracy
from dlbench.metrics.mi_matching import mi_matching
from dlbench.metrics.mig import mig
from dlbench.metrics.modularity import explicitness, modularity
from dlbench.metrics.sap import reference_score_matrix, sap
from dlbench.metrics.unsupervised import gaussian_total_correlation, mean_pairwise_mutual_info

FACTOR_SIZES = (10, 10, 10, 8, 4, 15)  # Shapes3D's grid
NUM_CODES = 10
BATCH_SIZE = 64


def _factors(num: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.integers(0, size, num) for size in FACTOR_SIZES], 1)


def _codes(factors: np.ndarray, mixing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Realistic codes: a noisy linear mix of the normalised factors."""
    return (factors / np.array(FACTOR_SIZES)) @ mixing + 0.1 * rng.normal(size=(*factors.shape[:-1], NUM_CODES))


def _numpy_discretize(codes: np.ndarray) -> np.ndarray:
    return np.stack([np.digitize(code, np.histogram(code, 20)[1][:-1]) for code in codes.T], 1)


def _numpy_mutual_info(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.array([[mutual_info_score(b, a) for b in second.T] for a in first.T])


def _baseline_mig(codes, factors):
    mutual_info = _numpy_mutual_info(_numpy_discretize(codes), factors)
    entropy = np.array([mutual_info_score(factor, factor) for factor in factors.T])
    ordered = np.sort(mutual_info, axis=0)[::-1]
    return np.mean((ordered[0] - ordered[1]) / entropy)


def _baseline_i_m(codes, factors):
    mutual_info = _numpy_mutual_info(_numpy_discretize(codes), factors)
    rows, columns = linear_sum_assignment(mutual_info, maximize=True)
    return mutual_info[rows, columns].sum()


def _baseline_modularity_explicitness(codes, factors, test_codes, test_factors):
    squared = _numpy_mutual_info(_numpy_discretize(codes), factors) ** 2
    largest = squared.max(1)
    modularity_score = np.mean(1 - (squared.sum(1) - largest) / (largest * (squared.shape[1] - 1)))
    mean, deviation = codes.mean(0), codes.std(0)
    codes, test_codes = (codes - mean) / deviation, (test_codes - mean) / deviation
    aucs = []
    for factor, test_factor in zip(factors.T, test_factors.T):
        model = LogisticRegression().fit(codes, factor)
        aucs.append([roc_auc_score(label_binarize(labels, classes=model.classes_), model.predict_proba(split))
                     for split, labels in ((codes, factor), (test_codes, test_factor))])
    return modularity_score, np.mean(aucs, 0)


def _baseline_sap(codes, factors, test_codes, test_factors):
    ordered = np.sort(reference_score_matrix(*map(torch.from_numpy, (codes, test_codes, factors, test_factors)))[0]
                      .numpy(), axis=0)
    return np.mean(ordered[-1] - ordered[-2])


def _baseline_dci(codes, factors, test_codes, test_factors):
    return reference_importance(*map(torch.from_numpy, (codes, test_codes, factors, test_factors)), 0)


def _baseline_factor_vae(batch_codes, fixed, global_variance, eval_batch_codes, eval_fixed):
    active = np.sqrt(global_variance) >= 0.05
    votes = []
    for batches, fixed_factors in ((batch_codes, fixed), (eval_batch_codes, eval_fixed)):
        counts = np.zeros((len(FACTOR_SIZES), NUM_CODES), dtype=np.int64)
        for batch, factor in zip(batches, fixed_factors):
            ratio = np.var(batch, axis=0, ddof=1)[active] / global_variance[active]
            counts[factor, np.argmin(ratio)] += 1
        votes.append(counts)
    classifier = np.argmax(votes[0], axis=0)
    return [np.sum(v[classifier, np.arange(v.shape[1])]) / np.sum(v) for v in votes]


def _baseline_beta_vae(first, second, labels, eval_first, eval_second, eval_labels):
    points = [np.stack([np.mean(np.abs(a - b), axis=0) for a, b in zip(x, y)])
              for x, y in ((first, second), (eval_first, eval_second))]
    model = LogisticRegression(random_state=0).fit(points[0], labels)
    return model.score(points[0], labels), model.score(points[1], eval_labels)


def _baseline_unsupervised(codes):
    covariance = np.cov(codes.T)
    total_correlation = 0.5 * (np.sum(np.log(np.diag(covariance))) - np.linalg.slogdet(covariance)[1])
    discrete = _numpy_discretize(codes)
    mutual_info = _numpy_mutual_info(discrete, discrete)
    np.fill_diagonal(mutual_info, 0)
    return total_correlation, mutual_info.sum() / (NUM_CODES ** 2 - NUM_CODES)


def _seconds(compute: Callable[[], Any]) -> float:
    started = time.perf_counter()
    compute()
    return time.perf_counter() - started


def bench(quick: bool = False) -> list[dict[str, Any]]:
    """Timings of every metric against its baseline; ratio = baseline / ours."""
    num_train, num_test = (2000, 1000) if quick else (10000, 5000)
    num_votes, num_eval_votes = (1000, 500) if quick else (10000, 5000)
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(len(FACTOR_SIZES), NUM_CODES))
    factors, test_factors = _factors(num_train, rng), _factors(num_test, rng)
    codes, test_codes = _codes(factors, mixing, rng), _codes(test_factors, mixing, rng)
    split = tuple(map(torch.from_numpy, (codes, factors, test_codes, test_factors)))
    fixed = rng.integers(0, len(FACTOR_SIZES), num_votes)
    eval_fixed = rng.integers(0, len(FACTOR_SIZES), num_eval_votes)
    batches = [_codes(_factors(num * BATCH_SIZE, rng).reshape(num, BATCH_SIZE, -1), mixing, rng)
               for num in (num_votes, num_eval_votes, num_votes, num_eval_votes)]
    global_variance = np.var(codes, axis=0, ddof=1)
    vote_tensors = [torch.from_numpy(x) for x in (batches[0], fixed, global_variance, batches[1], eval_fixed)]

    def factor_vae_ours():
        train = factor_vae_votes(vote_tensors[0], vote_tensors[1], vote_tensors[2], len(FACTOR_SIZES))
        evaluated = factor_vae_votes(vote_tensors[3], vote_tensors[4], vote_tensors[2], len(FACTOR_SIZES))
        return majority_vote_accuracy(train, evaluated)

    def beta_vae_ours(mode):
        first, eval_first, second, eval_second = map(torch.from_numpy, batches)
        return beta_vae_accuracy(beta_vae_features(first, second), torch.from_numpy(fixed),
                                 beta_vae_features(eval_first, eval_second), torch.from_numpy(eval_fixed), mode=mode)

    def modularity_explicitness_ours(mode):
        return modularity(split[0], split[1]), explicitness(*split, mode=mode)

    cases = [
        ("mig", lambda: mig(split[0], split[1]), lambda: _baseline_mig(codes, factors)),
        ("i_m", lambda: mi_matching(split[0], split[1]), lambda: _baseline_i_m(codes, factors)),
        ("unsupervised", lambda: (gaussian_total_correlation(split[0]), mean_pairwise_mutual_info(split[0])),
         lambda: _baseline_unsupervised(codes)),
        ("factor_vae_score", factor_vae_ours, lambda: _baseline_factor_vae(batches[0], fixed, global_variance,
                                                                            batches[1], eval_fixed)),
        ("sap_score (fast)", lambda: sap(*split, mode="fast"),
         lambda: _baseline_sap(codes, factors, test_codes, test_factors)),
        ("dci (fast)", lambda: dci(*split, mode="fast"),
         lambda: _baseline_dci(codes, factors, test_codes, test_factors)),
    ]
    for mode in ("reference", "fast"):
        cases += [
            (f"beta_vae_score ({mode})", lambda mode=mode: beta_vae_ours(mode),
             lambda: _baseline_beta_vae(batches[0], batches[2], fixed, batches[1], batches[3], eval_fixed)),
            (f"modularity_explicitness ({mode})", lambda mode=mode: modularity_explicitness_ours(mode),
             lambda: _baseline_modularity_explicitness(codes, factors, test_codes, test_factors)),
        ]
    # The first torch calls of a process pay one-off initialisation; keep it out of the first row.
    mig(split[0][:100], split[1][:100])
    results = []
    for name, ours, baseline in cases:
        seconds, baseline_seconds = _seconds(ours), _seconds(baseline)
        results.append({"name": f"metrics: {name}", "seconds": seconds, "baseline_seconds": baseline_seconds,
                        "ratio": baseline_seconds / seconds,
                        "note": f"N={num_train}+{num_test}, d={NUM_CODES}, K={len(FACTOR_SIZES)}, "
                                f"{torch.get_num_threads()} threads, device cpu"})
    return results
