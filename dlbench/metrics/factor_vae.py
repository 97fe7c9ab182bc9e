"""FactorVAE score (Kim & Mnih 2018), as disentanglement_lib's `compute_factor_vae`.

Global variance of each code over num_variance_estimate samples; codes with std < 0.05 are
pruned. Each vote picks a factor k, draws batch_size factor vectors sharing the value of k, and
votes for the active code with the smallest (variance in the batch / global variance). A
majority-vote classifier (code -> factor) is read off the train votes; its accuracy on the train
and on the eval votes is the score. All votes are computed at once in torch.
"""
from __future__ import annotations

from typing import Any

import torch

from dlbench.interfaces import GroundTruthDataset, Model
from dlbench.metrics.base import (
    check_count,
    check_metric_seed,
    finite_codes,
    json_scores,
    metric_generator,
    provenance,
    require_sample_memory,
)
from dlbench.metrics.sampling import (
    SUPERVISED_ALTERNATIVE,
    check_protocol,
    encode_factors,
    require_discrete_dataset,
    sample_and_encode,
)

PRUNE_THRESHOLD = 0.05


def factor_vae_votes(batch_codes: torch.Tensor, fixed_factor: torch.Tensor, global_variance: torch.Tensor,
                     num_factors: int, prune_threshold: float = PRUNE_THRESHOLD) -> torch.Tensor:
    """Vote counts (..., K, d): batch_codes (..., V, B, d) of V batches each sharing the factor
    fixed_factor (V,), global_variance (..., d)."""
    batch_codes = finite_codes(batch_codes)
    active = global_variance.sqrt() >= prune_threshold
    ratio = batch_codes.var(-2) / global_variance.unsqueeze(-2)  # (..., V, d)
    chosen = torch.where(active.unsqueeze(-2), ratio, torch.inf).argmin(-1)  # (..., V)
    num_codes = batch_codes.shape[-1]
    cells = (fixed_factor.to(chosen.device) * num_codes + chosen).reshape(-1, chosen.shape[-1])
    offsets = torch.arange(len(cells), device=cells.device).unsqueeze(-1) * (num_factors * num_codes)
    votes = torch.bincount((cells + offsets).flatten(), minlength=len(cells) * num_factors * num_codes)
    return votes.view(*chosen.shape[:-1], num_factors, num_codes)


def majority_vote_accuracy(train_votes: torch.Tensor, eval_votes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, eval) accuracy (...) of the classifier code -> most voted factor in train_votes."""
    classifier = train_votes.argmax(-2, keepdim=True)
    return tuple(votes.gather(-2, classifier).sum((-1, -2)).to(torch.float64) / votes.sum((-1, -2))
                 for votes in (train_votes, eval_votes))


class FactorVAEScore:
    """FactorVAE score: accuracy of a majority vote naming the fixed factor from the least-varying code.

    Args:
        protocol: how factors are sampled ("dlib": per factor).
        batch_size: codes per vote that share the fixed factor.
        num_train: votes that train the majority-vote classifier.
        num_eval: votes that evaluate it.
        num_variance_estimate: samples for each code's global variance.
        prune_threshold: codes with a global standard deviation below this are inactive.
        random_seed: the metric's own sampling seed (default: the run's evaluation.random_seed).
    """

    name = "factor_vae_score"

    def __init__(self, protocol: str = "dlib", batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                 num_variance_estimate: int = 10000, prune_threshold: float = PRUNE_THRESHOLD,
                 random_seed: int | None = None):
        self.protocol = check_protocol("factor_vae_score.protocol", protocol, ("dlib",))
        self.batch_size = check_count("factor_vae_score.batch_size", batch_size, minimum=2)
        self.num_train = check_count("factor_vae_score.num_train", num_train)
        self.num_eval = check_count("factor_vae_score.num_eval", num_eval)
        self.num_variance_estimate = check_count("factor_vae_score.num_variance_estimate", num_variance_estimate, 2)
        self.prune_threshold = float(prune_threshold)
        self.random_seed = check_metric_seed("factor_vae_score.random_seed", random_seed)

    def _votes(self, model, dataset, num_votes, global_variance, generator) -> torch.Tensor:
        num_factors = len(dataset.factor_sizes)
        fixed_factor = torch.randint(num_factors, (num_votes,), generator=generator, device=generator.device)
        factors = dataset.sample_factors(num_votes * self.batch_size, generator).view(num_votes, self.batch_size, -1)
        fixed = torch.nn.functional.one_hot(fixed_factor, num_factors).bool().to(factors.device).unsqueeze(1)
        factors = torch.where(fixed, factors[:, :1], factors).flatten(0, 1)
        codes = encode_factors(model.representation, dataset, factors)
        return factor_vae_votes(codes.unflatten(-2, (num_votes, self.batch_size)), fixed_factor,
                                global_variance, num_factors, self.prune_threshold)

    def __call__(self, model: Model, dataset: GroundTruthDataset, *, generator: torch.Generator) -> dict[str, Any]:
        grid = require_discrete_dataset(dataset, self.name, SUPERVISED_ALTERNATIVE)
        require_sample_memory(model, grid, (self.num_train + self.num_eval) * self.batch_size
                              + self.num_variance_estimate, self.name)
        generator, seed = metric_generator(self.random_seed, generator, dataset.device)
        global_variance = finite_codes(
            sample_and_encode(model.representation, dataset, self.num_variance_estimate, generator).codes).var(-2)
        train_votes = self._votes(model, grid, self.num_train, global_variance, generator)
        eval_votes = self._votes(model, grid, self.num_eval, global_variance, generator)
        train_accuracy, eval_accuracy = majority_vote_accuracy(train_votes, eval_votes)
        num_active = (global_variance.sqrt() >= self.prune_threshold).sum(-1)
        # With no active code there is nothing to vote with: the reference scores 0.
        scores = {"train_accuracy": torch.where(num_active > 0, train_accuracy, 0.0),
                  "eval_accuracy": torch.where(num_active > 0, eval_accuracy, 0.0),
                  "num_active_dims": num_active}
        return {**json_scores(scores),
                "provenance": provenance(metric=self.name, protocol=self.protocol, seed=seed,
                                         batch_size=self.batch_size,
                                         num_train=self.num_train, num_eval=self.num_eval,
                                         num_variance_estimate=self.num_variance_estimate,
                                         prune_threshold=self.prune_threshold)}
