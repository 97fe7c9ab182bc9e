"""What every metric shares: argument checks, input validation, provenance and result formatting."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import torch

from dlbench.config import check_binding, check_seed
from dlbench.errors import ConfigError, DataError
from dlbench.resources import require_memory
from dlbench.version import distribution_version

MODES = ("reference", "fast")


def check_choice(binding: str, value: Any, allowed: Sequence[Any]) -> Any:
    check_binding(value in allowed, binding, value, f"one of {', '.join(map(repr, allowed))}")
    return value


def check_count(binding: str, value: Any, minimum: int = 1) -> int:
    check_binding(not isinstance(value, bool) and isinstance(value, int) and value >= minimum, binding, value,
                  f"an integer >= {minimum}")
    return value


def finite_codes(codes: torch.Tensor, minimum_codes: int = 1) -> torch.Tensor:
    """The codes in float64, refused with a DataError when they cannot be scored."""
    if codes.ndim < 2 or codes.shape[-2] < 2:
        raise DataError(f"codes of shape {tuple(codes.shape)} cannot be scored; need (..., num >= 2, d)")
    if codes.shape[-1] < minimum_codes:
        raise DataError(f"codes of shape {tuple(codes.shape)} have {codes.shape[-1]} latent dimensions; "
                        f"this metric needs at least {minimum_codes}")
    # Any NaN or inf makes the sum non-finite, and one pass of summing is cheaper than counting;
    # a finite sum settles it, an overflowing one falls through to the count.
    bad = 0 if torch.isfinite(codes.sum()) else (~torch.isfinite(codes)).sum().item()
    if bad:
        raise DataError(f"codes contain {bad} NaN or infinite values (of {codes.numel()}); "
                        "a diverged model cannot be scored")
    return codes.to(torch.float64)


def top_two_gap(scores: torch.Tensor) -> torch.Tensor:
    """Per factor, largest minus second largest score over codes: (..., d, K) -> (..., K). MIG and SAP (sampled and
    exact) are means of this gap."""
    top_two = scores.topk(2, dim=-2).values
    return top_two[..., 0, :] - top_two[..., 1, :]


def _varies(factors: torch.Tensor) -> torch.Tensor:
    if factors.ndim != 2:
        raise DataError(f"factors of shape {tuple(factors.shape)} cannot be scored; need (num, K)")
    return (factors != factors[:1]).any(0)


def constant_factors(factors: torch.Tensor) -> list[int]:
    """Indices of the factor columns (num, K) that take a single value."""
    return torch.nonzero(~_varies(factors)).flatten().tolist()


def varying_factor_mask(factors: torch.Tensor) -> torch.Tensor:
    """Which factor columns take more than one value: a factor that never varies carries no
    information, so per-factor averages skip it (and the record lists it as skipped)."""
    varies = _varies(factors)
    if not varies.any():
        raise DataError(f"none of the {factors.shape[1]} factors varies over the sample; "
                        "at least one non-constant factor is needed")
    return varies


def varying_factors(factors: torch.Tensor) -> torch.Tensor:
    return factors[:, varying_factor_mask(factors)]


def require_discrete_factors(factors: torch.Tensor, metric: str) -> None:
    if factors.is_floating_point():
        raise ConfigError(f"{metric} needs discrete factors (class indices) but the dataset's factors "
                          "are continuous; use mig, i_m, sap_score (continuous) or unsupervised")


def per_solution(compute: Callable[..., tuple[torch.Tensor, ...]], batched: Sequence[torch.Tensor],
                 *arguments: Any) -> tuple[torch.Tensor, ...]:
    """Run `compute(*one_solution_slices, *arguments)` once per solution of a batched model, where
    each tensor of `batched` is (*solution_shape, a, b) (codes: (*solution_shape, num, d)), and stack
    the results to (*solution_shape, ...). For estimators that cannot batch (scikit-learn, trees)."""
    solution_shape = batched[0].shape[:-2]
    flat = [tensor.reshape(-1, *tensor.shape[-2:]) for tensor in batched]
    outputs = [compute(*solution, *arguments) for solution in zip(*flat)]
    return tuple(torch.stack(values).reshape((*solution_shape, *values[0].shape)) for values in zip(*outputs))


def json_scores(scores: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Scores as JSON-ready values: a float (int for counts) per single model, nested lists with
    the solution shape for a batched model."""
    return {name: value.item() if value.ndim == 0 else value.tolist() for name, value in scores.items()}


def provenance(**entries: Any) -> dict[str, Any]:
    """How a score was produced, for the record: the metric's settings plus version and time."""
    return {**entries, "dlbench_version": distribution_version(),
            "computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def estimator_seed(seed: int) -> int:
    """A recorded seed as scikit-learn's random_state, which must be below 2**32."""
    return seed % 2**32


def check_metric_seed(binding: str, random_seed: Any) -> int | None:
    return None if random_seed is None else check_seed(binding, random_seed)


def require_sample_memory(model, dataset, num_samples: int, what: str) -> None:
    """Refuse a metric whose samples (factors, and codes of every solution in float64) cannot fit in memory, before
    drawing any: one observation is encoded (with its own generator, so the metric's draws are unchanged) to learn
    the code size."""
    factors, observations = dataset.sample(1, torch.Generator(device=dataset.device).manual_seed(0))
    codes = model.representation(observations)
    per_sample = 8 * (codes.numel() + factors.numel())
    require_memory(per_sample * num_samples, dataset.device, f"{what} with {num_samples:,} samples", per_sample,
                   "samples")


def metric_generator(random_seed: int | None, generator: torch.Generator,
                     device: torch.device) -> tuple[torch.Generator, int]:
    """The metric's own seeded generator when `random_seed` is bound, else the run's generator."""
    if random_seed is None:
        return generator, generator.initial_seed()
    return torch.Generator(device=device).manual_seed(random_seed), random_seed
