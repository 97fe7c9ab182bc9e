"""Conformance checks that plugin authors run in their own test suites, chosen by what an object implements
(as scikit-learn's `check_estimator`):

    from dlbench.testing import ModelUnderTest, parametrize_with_checks

    @parametrize_with_checks([ModelUnderTest(lambda: MyVAE(training_steps=20), my_small_dataset,
                                             known_failures={"check_resume": "fit has no checkpoints yet"})])
    def test_my_vae_conforms(subject, check, tmp_path):
        check(subject, tmp_path)

Each check is a small function that raises AssertionError saying what the contract wanted; a known
failure becomes a strict xfail carrying its reason. `check_model`, `check_dataset` and `check_metric`
run every applicable check in one call.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from dlbench.config import TrainingSettings
from dlbench.errors import DlbenchError
from dlbench.fitting import FitContext, FitInterrupted
from dlbench.interfaces import (
    DiscreteGroundTruthDataset,
    ExactMetricsModel,
    GroundTruthDataset,
    Metric,
    Model,
    PosteriorModel,
    TrainingScoresModel,
)
from dlbench.records import load_state, save_state, to_jsonable

NUM_OBSERVATIONS = 16
MODEL_MEMBERS = "name, replicate_axes, solution_axes, fit, representation, hyperparameters, state_dict, " \
                "load_state_dict"


@dataclass
class ModelUnderTest:
    """A model factory, the dataset it is fitted on, the core's training settings for it (model.batch_size,
    model.training_steps, encoder.num_latent: keep an SGD-trained model's checks small), and the checks it is known
    to fail (name -> reason)."""

    factory: Callable[[], Model]
    dataset: Callable[[], GroundTruthDataset] | GroundTruthDataset
    name: str | None = None
    seed: int = 0
    known_failures: Mapping[str, str] = field(default_factory=dict)
    training: TrainingSettings | None = None

    def build_dataset(self) -> GroundTruthDataset:
        return self.dataset if isinstance(self.dataset, GroundTruthDataset) else self.dataset()


@dataclass
class DatasetUnderTest:
    factory: Callable[[], GroundTruthDataset]
    name: str | None = None
    known_failures: Mapping[str, str] = field(default_factory=dict)


@dataclass
class MetricUnderTest:
    """A metric factory and a (small) model it scores."""

    factory: Callable[[], Metric]
    model: ModelUnderTest
    name: str | None = None
    known_failures: Mapping[str, str] = field(default_factory=dict)


def _fit(subject: ModelUnderTest, workdir: Path, seed: int | None = None, **context_options) -> tuple[Model, Any]:
    model = subject.factory()
    dataset = subject.build_dataset()
    context = FitContext(dataset.device, subject.seed if seed is None else seed, workdir, progress=False,
                         training=subject.training, **context_options)
    model.fit(dataset, context)
    return model, dataset


def _observations(dataset: GroundTruthDataset, num: int = NUM_OBSERVATIONS, seed: int = 0) -> torch.Tensor:
    return dataset.sample(num, torch.Generator(device=dataset.device).manual_seed(seed))[1]


def _solution_shape(model: Model) -> tuple[int, ...]:
    return tuple(len(labels) for labels in model.solution_axes.values())


def _codes(model: Model, observations: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.representation(observations)


# Models -----------------------------------------------------------------------------------------------------


def check_model_protocol(subject: ModelUnderTest, workdir: Path) -> None:
    model = subject.factory()
    assert isinstance(model, Model), (
        f"{type(model).__name__} lacks members of dlbench.interfaces.Model: it needs {MODEL_MEMBERS}")
    unknown = [axis for axis in model.replicate_axes if axis not in model.solution_axes]
    assert not unknown, f"replicate axes {unknown} are not solution axes {list(model.solution_axes)}"


def check_representation(subject: ModelUnderTest, workdir: Path) -> None:
    """Codes of shape (*solution_shape, num, d), floating point, finite, on the dataset's device."""
    model, dataset = _fit(subject, workdir)
    codes = _codes(model, _observations(dataset))
    solution_shape = _solution_shape(model)
    assert codes.shape[:-1] == (*solution_shape, NUM_OBSERVATIONS), (
        f"representation has shape {tuple(codes.shape)}; expected {(*solution_shape, NUM_OBSERVATIONS)} + (d,) for "
        f"solution axes {list(model.solution_axes)} and {NUM_OBSERVATIONS} observations")
    assert codes.is_floating_point(), f"representation has dtype {codes.dtype}; expected floating point codes"
    assert codes.device.type == dataset.device.type, f"representation is on {codes.device}, the dataset on " \
        f"{dataset.device}"
    assert torch.isfinite(codes).all(), "representation has NaN or infinite codes"


def check_detached_outputs(subject: ModelUnderTest, workdir: Path) -> None:
    """Metrics call `representation` under inference mode and read its codes as plain data: it must work there and
    never hand out tensors that carry an autograd graph."""
    model, dataset = _fit(subject, workdir)
    observations = _observations(dataset)
    inside = _codes(model, observations)
    outside = model.representation(observations)
    assert not outside.requires_grad, "representation returns a tensor that requires grad; detach it (or compute " \
        "it under torch.no_grad / inference_mode)"
    assert torch.equal(inside, outside), "representation differs between inference mode and normal mode"


def check_determinism(subject: ModelUnderTest, workdir: Path) -> None:
    """Two fits from the same seed give the same representation."""
    first, dataset = _fit(subject, workdir / "first")
    second, _ = _fit(subject, workdir / "second")
    observations = _observations(dataset)
    assert torch.equal(_codes(first, observations), _codes(second, observations)), (
        "two fits with the same seed give different representations; derive every random draw from "
        "context.seed")


def check_state_round_trip(subject: ModelUnderTest, workdir: Path) -> None:
    """A model restored from its state_dict (through state.npz) gives the same representation."""
    model, dataset = _fit(subject, workdir)
    observations = _observations(dataset)
    state_file = workdir / "conformance_state.npz"
    save_state(state_file, model.state_dict())
    restored = subject.factory()
    restored.load_state_dict(load_state(state_file, dataset.device))
    assert torch.equal(_codes(restored, observations), _codes(model, observations)), (
        "a model restored from its state_dict gives a different representation")


def _damaged(state: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """The state with its largest entry's shape changed (axes swapped, or one row dropped)."""
    name = max(state, key=lambda key: (state[key].numel(), key))
    tensor = state[name]
    if tensor.ndim >= 2 and tensor.shape[-1] != tensor.shape[-2]:
        changed = tensor.transpose(-1, -2).contiguous()
    else:
        changed = tensor.reshape(-1)[:-1] if tensor.numel() > 1 else tensor.reshape(1, 1, 1)
    return name, {**state, name: changed}


def check_state_validation(subject: ModelUnderTest, workdir: Path) -> None:
    """load_state_dict refuses a state whose entry has the wrong shape (an edited or damaged state file)."""
    model, _ = _fit(subject, workdir)
    name, damaged = _damaged(model.state_dict())
    try:
        subject.factory().load_state_dict(damaged)
    except DlbenchError:
        return
    raise AssertionError(f"load_state_dict accepted {name!r} with shape {tuple(damaged[name].shape)}; it must "
                         "refuse a state that does not fit the configuration with a dlbench.RecordError")


def check_resume(subject: ModelUnderTest, workdir: Path) -> None:
    """A fit interrupted right after a checkpoint, started again on the same workdir, ends as the fit that was never
    interrupted. A fit on dlbench's engine (whose checkpoints say how far their stage is) is interrupted after its
    first mid-training checkpoint and must have one; any other fit after its first checkpoint."""
    reference, dataset = _fit(subject, workdir / "reference")
    progress_seen = []

    def interrupt() -> None:
        progress = context.last_checkpoint_progress
        progress_seen.append(progress)
        if progress is None or 0 < progress < 1:
            raise FitInterrupted

    context = FitContext(dataset.device, subject.seed, workdir / "interrupted", progress=False,
                         training=subject.training, after_checkpoint=interrupt)
    try:
        subject.factory().fit(dataset, context)
    except FitInterrupted:
        pass
    assert progress_seen, "fit saved no checkpoint through context.save_checkpoint, so an interrupted fit cannot resume"
    assert progress_seen[-1] is None or 0 < progress_seen[-1] < 1, (
        "fit saved no mid-training checkpoint (only checkpoints before the first step or after the last), so an "
        "interrupted fit trains again from the start: save one every N steps (the engine's checkpoint_every)")
    model = subject.factory()
    context = FitContext(dataset.device, subject.seed, workdir / "interrupted", progress=False,
                         training=subject.training)
    model.fit(dataset, context)
    assert context.resumed, "the restarted fit did not load its checkpoint (context.load_checkpoint)"
    observations = _observations(dataset)
    assert torch.equal(_codes(model, observations), _codes(reference, observations)), (
        "a fit resumed from its checkpoint gives a different representation than the uninterrupted fit")


def check_hyperparameters(subject: ModelUnderTest, workdir: Path) -> None:
    hyperparameters = subject.factory().hyperparameters()
    assert isinstance(hyperparameters, dict) and hyperparameters, "hyperparameters() must return a non-empty dict"
    json.dumps(to_jsonable(hyperparameters), allow_nan=False)


def _check_solution_scores(scores: Mapping[str, Any], model: Model, method: str) -> None:
    """Each tensor score leads with the solution shape (a score per latent may add an axis)."""
    shape = _solution_shape(model)
    for name, value in scores.items():
        if isinstance(value, torch.Tensor):
            assert tuple(value.shape[:len(shape)]) == shape, f"{method}()[{name!r}] has shape {tuple(value.shape)}; " \
                f"expected the solution shape {shape} first"
    json.dumps(to_jsonable(scores))


def check_exact_metrics(subject: ModelUnderTest, workdir: Path) -> None:
    model, _ = _fit(subject, workdir)
    _check_solution_scores(model.exact_metrics(), model, "exact_metrics")


def check_training_scores(subject: ModelUnderTest, workdir: Path) -> None:
    model, _ = _fit(subject, workdir)
    _check_solution_scores(model.training_scores(), model, "training_scores")


def check_posterior(subject: ModelUnderTest, workdir: Path) -> None:
    """posterior_parameters gives the representation as its mean, and a finite log variance of the same shape."""
    model, dataset = _fit(subject, workdir)
    observations = _observations(dataset)
    with torch.inference_mode():
        mean, log_variance = model.posterior_parameters(observations)
    assert torch.equal(mean, _codes(model, observations)), "posterior mean differs from the representation"
    assert log_variance.shape == mean.shape and torch.isfinite(log_variance).all(), \
        "posterior log variance must be finite and shaped like the mean"


def model_checks(model: Model) -> list[Callable]:
    checks = [check_model_protocol, check_representation, check_detached_outputs, check_determinism,
              check_state_round_trip, check_state_validation, check_resume, check_hyperparameters]
    if isinstance(model, ExactMetricsModel):
        checks.append(check_exact_metrics)
    if isinstance(model, TrainingScoresModel):
        checks.append(check_training_scores)
    if isinstance(model, PosteriorModel):
        checks.append(check_posterior)
    return checks


# Datasets ---------------------------------------------------------------------------------------------------


def check_dataset_protocol(subject: DatasetUnderTest, workdir: Path) -> None:
    dataset = subject.factory()
    assert isinstance(dataset, GroundTruthDataset), (
        f"{type(dataset).__name__} lacks members of dlbench.interfaces.GroundTruthDataset: it needs name, source, "
        "factor_names, observation_shape, device, sample, describe")
    facts = dataset.describe()
    json.dumps(to_jsonable(facts), allow_nan=False)
    assert facts.get("name") == dataset.name and facts.get("source") == dataset.source, \
        "describe() must report the dataset's name and source"
    assert dataset.source in ("official", "procedural", "synthetic"), \
        f"source {dataset.source!r}; expected official, procedural or synthetic"


def check_dataset_sample(subject: DatasetUnderTest, workdir: Path) -> None:
    """sample(num, generator): factors (num, K) and observations (num, *observation_shape) on the device, the same
    for the same seed."""
    dataset = subject.factory()
    factors, observations = dataset.sample(5, torch.Generator(device=dataset.device).manual_seed(3))
    assert tuple(factors.shape) == (5, len(dataset.factor_names)), f"factors have shape {tuple(factors.shape)}"
    assert tuple(observations.shape) == (5, *dataset.observation_shape), \
        f"observations have shape {tuple(observations.shape)}; expected (5, *{dataset.observation_shape})"
    assert factors.device.type == observations.device.type == dataset.device.type, "samples are not on the device"
    again = dataset.sample(5, torch.Generator(device=dataset.device).manual_seed(3))
    assert torch.equal(factors, again[0]) and torch.equal(observations, again[1]), \
        "the same generator seed gives different samples"


def check_discrete_grid(subject: DatasetUnderTest, workdir: Path) -> None:
    """Index -> factors -> observations agree with sampling, and the grid's corners map to its corner classes."""
    dataset = subject.factory()
    sizes = torch.tensor(dataset.factor_sizes, device=dataset.device)
    assert len(dataset) == int(sizes.prod()), \
        f"len() is {len(dataset)}; the factor sizes multiply to {int(sizes.prod())}"
    corners = dataset.factors_from_indices(torch.tensor([0, len(dataset) - 1], device=dataset.device))
    assert corners.dtype == torch.int64 and torch.equal(corners[0], torch.zeros_like(sizes)) \
        and torch.equal(corners[1], sizes - 1), \
        "factors_from_indices must map 0 and len-1 to the first and last classes"
    factors, observations = dataset.sample(4, torch.Generator(device=dataset.device).manual_seed(5))
    assert factors.dtype == torch.int64 and bool(((factors >= 0) & (factors < sizes)).all()), \
        "sampled factors must be int64 classes within the factor sizes"
    assert torch.equal(dataset.observations_from_factors(factors), observations), \
        "observations_from_factors disagrees with sample"


def dataset_checks(dataset: GroundTruthDataset) -> list[Callable]:
    checks = [check_dataset_protocol, check_dataset_sample]
    if isinstance(dataset, DiscreteGroundTruthDataset):
        checks.append(check_discrete_grid)
    return checks


# Metrics ----------------------------------------------------------------------------------------------------


def _score(subject: MetricUnderTest, model: Model, dataset: GroundTruthDataset) -> dict[str, Any]:
    metric = subject.factory()
    with torch.inference_mode():
        return dict(metric(model, dataset, generator=torch.Generator(device=dataset.device).manual_seed(7)))


def check_metric_result(subject: MetricUnderTest, workdir: Path) -> None:
    """A metric returns JSON-ready scores shaped like the model's solutions plus its provenance, the same for the
    same seed."""
    metric = subject.factory()
    assert isinstance(metric, Metric), f"{type(metric).__name__} lacks members of dlbench.interfaces.Metric"
    model, dataset = _fit(subject.model, workdir)
    result = _score(subject, model, dataset)
    assert isinstance(result.get("provenance"), dict), "a metric result needs a 'provenance' dict"
    json.dumps(to_jsonable(result), allow_nan=False)
    shape = _solution_shape(model)
    scores = {k: v for k, v in result.items() if k != "provenance" and isinstance(v, (int, float, list, torch.Tensor))}
    assert scores, "a metric result holds no scores"
    for name, value in scores.items():
        if isinstance(value, (list, torch.Tensor)) and shape:
            found = tuple(torch.as_tensor(value).shape[:len(shape)])
            assert found == shape, f"score {name!r} has leading shape {found}; expected the solution shape {shape}"
    again = _score(subject, model, dataset)
    assert to_jsonable(scores) == to_jsonable({k: again[k] for k in scores}), "the same seed gives other scores"


def metric_checks(metric: Metric) -> list[Callable]:
    return [check_metric_result]


# Running them -----------------------------------------------------------------------------------------------


def _checks_for(subject) -> list[Callable]:
    if isinstance(subject, ModelUnderTest):
        return model_checks(subject.factory())
    if isinstance(subject, DatasetUnderTest):
        return dataset_checks(subject.factory())
    if isinstance(subject, MetricUnderTest):
        return metric_checks(subject.factory())
    raise TypeError(f"expected a ModelUnderTest, DatasetUnderTest or MetricUnderTest, not {type(subject).__name__}")


def _subject_id(subject) -> str:
    if subject.name:
        return subject.name
    built = subject.factory()
    return getattr(built, "name", type(built).__name__)


def parametrize_with_checks(subjects: Sequence[ModelUnderTest | DatasetUnderTest | MetricUnderTest]):
    """A pytest parametrize decorator over (subject, check) with ids "<subject>-<check>"; a subject's known
    failures are strict xfails with their reasons (so a fixed failure is noticed)."""
    import pytest

    params = []
    for subject in subjects:
        subject_id = _subject_id(subject)
        for check in _checks_for(subject):
            reason = subject.known_failures.get(check.__name__)
            marks = [pytest.mark.xfail(reason=reason, strict=True, raises=AssertionError)] if reason else []
            params.append(pytest.param(subject, check, id=f"{subject_id}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize("subject, check", params)


def _run_all(subject, workdir: Path) -> None:
    for check in _checks_for(subject):
        if check.__name__ not in subject.known_failures:
            check_dir = Path(workdir) / check.__name__
            check_dir.mkdir(parents=True, exist_ok=True)
            check(subject, check_dir)


def check_model(factory: Callable[[], Model], dataset, workdir: Path, *, seed: int = 0,
                known_failures: Mapping[str, str] | None = None) -> Model:
    """Run every check that applies to the model; return a model fitted on `dataset`."""
    subject = ModelUnderTest(factory, dataset, seed=seed, known_failures=known_failures or {})
    _run_all(subject, workdir)
    return _fit(subject, Path(workdir) / "fitted")[0]


def check_dataset(factory: Callable[[], GroundTruthDataset], workdir: Path) -> None:
    _run_all(DatasetUnderTest(factory), workdir)


def check_metric(factory: Callable[[], Metric], model: ModelUnderTest, workdir: Path) -> None:
    _run_all(MetricUnderTest(factory, model), workdir)
