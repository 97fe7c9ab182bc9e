"""Synthetic run records shaped like the runner's (the current schema, digest included) with scores the
caller chooses: for the tests of the results store, the leaderboard and the report, and for the results
benchmark. Nothing here trains or scores a model."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dlbench.records import EXACT_METRICS, SCHEMA, TRAINING_SCORES, to_jsonable, write_record

PROVENANCE = {"protocol": "fixture", "note": "synthetic scores written by dlbench.leaderboard.fixtures"}


def synthetic_record(*, model: str, dataset: str, source: str, solution_axes: Mapping[str, list[Any]],
                     replicate_axes: list[str], scores: Mapping[str, Any] | None = None,
                     exact: Mapping[str, Any] | None = None, training: Mapping[str, Any] | None = None,
                     hyperparameters: Mapping[str, Any] | None = None, dataset_details: Mapping[str, Any] | None = None,
                     seed: int = 0, distribution: str = "dlbench-fixture", version: str = "0.1.0",
                     device: str = "cpu") -> dict[str, Any]:
    """A record (without its digest, which write_run adds) whose metrics hold `scores` ("metric.score" →
    array of the solution axes' shape), the model's `exact` scores and its `training` scores."""
    metrics: dict[str, Any] = {}
    if exact:
        metrics[EXACT_METRICS] = {"mode": "exact", "values": dict(exact)}
    if training:
        metrics[TRAINING_SCORES] = {"mode": "training", "values": dict(training)}
    for name, values in (scores or {}).items():
        metric, score = name.split(".", 1)
        metrics.setdefault(metric, {"provenance": {"metric": metric, **PROVENANCE}, "seconds": 0.0})[score] = values
    metrics = to_jsonable(metrics)
    hyperparameters = dict(hyperparameters or {})
    identity = {"model": model, "dataset": dataset, "source": source, "axes": solution_axes, "seed": seed,
                "hyperparameters": hyperparameters, "metrics": metrics}
    fit_hash = hashlib.sha256(json.dumps(to_jsonable(identity), sort_keys=True).encode()).hexdigest()[:10]
    config = f'model.name = "{model}"\ndataset.name = "{dataset}"\n'
    return {
        "schema": SCHEMA,
        "run_id": f"{model}-{dataset}-seed{seed}-{fit_hash}",
        "fit_hash": fit_hash,
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": model, "plugin": model, "distribution": distribution, "version": version,
                  "hyperparameters": hyperparameters},
        "dataset": {"name": dataset, "source": source, **(dataset_details or {})},
        "seed": seed,
        "solution_axes": {name: list(labels) for name, labels in solution_axes.items()},
        "replicate_axes": list(replicate_axes),
        "metrics": metrics,
        "metrics_history": [],
        "timings": {"fit_seconds": 1.0, "evaluate_seconds": 1.0, "total_seconds": 2.0},
        "fit": {"seconds": 1.0, "segments": []},
        "environment": {"python": "3", "device": device, "packages": {"dlbench": "0.1.0", "torch": "2.13.0"}},
        "config_files": [],
        "bindings": [],
        "config": config,
        "operative_config": config,
        "files": [],
    }


def write_run(result_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Write `record` (digest added) as RESULT_DIR/<run id>/record.json; return the run directory."""
    run_dir = Path(result_dir) / record["run_id"]
    write_record(run_dir, record)
    return run_dir


def deep_record(dataset: str, source: str, betas: list[float], lambdas: list[float], seeds: list[int],
                scores: Mapping[str, np.ndarray], *, model: str = "lambda_beta_vae", beta_steps: int = 150_000,
                training_steps: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """A λβ-VAE-shaped record (axes beta × lambda × seed; seed the replicate axis; by default the paper's steps).
    `scores` maps "mig.mig", "sap_score.sap", "i_m.i_m" and "training.reconstruction" to arrays of that shape."""
    return zoo_record(model, dataset, source, {"beta": betas, "lambda": lambdas}, seeds, scores,
                      training_steps=training_steps, seed=seed, hyperparameters={"beta_steps": beta_steps})


def zoo_record(model: str, dataset: str, source: str, settings: Mapping[str, list[Any]], seeds: list[int],
               scores: Mapping[str, np.ndarray], *, training_steps: int = 300_000, seed: int = 0,
               hyperparameters: Mapping[str, Any] | None = None, device: str = "cpu") -> dict[str, Any]:
    """A record of any deep model: its own setting axes (e.g. factor_vae's {"gamma": [...]}) then seed, the
    replicate axis; its grid is in its hyperparameters under the axes' plural names, as the plugins keep it.
    `scores` maps "metric.score" (and "training.<score>") to arrays of the axes' shape."""
    registered = {name: values for name, values in scores.items() if not name.startswith(f"{TRAINING_SCORES}.")}
    training = {name.split(".", 1)[1]: values for name, values in scores.items()
                if name.startswith(f"{TRAINING_SCORES}.")}
    grid = {f"{name}s": list(values) for name, values in settings.items()}
    return synthetic_record(
        model=model, dataset=dataset, source=source, seed=seed, replicate_axes=["seed"],
        solution_axes={**settings, "seed": seeds}, scores=registered, training=training, device=device,
        hyperparameters={**grid, "seeds": seeds, "training_steps": training_steps, "num_latent": 10,
                         "batch_size": 64, **(hyperparameters or {})},
        dataset_details={"num_observations": 1000 if source != "official" else 480000})


def linear_record(betas: list[float], lambdas: list[float], num_starts: int, exact: Mapping[str, np.ndarray],
                  *, solvers: tuple[str, ...] = ("fixed_point",), n: int = 100, seed: int = 0) -> dict[str, Any]:
    """A linear-Gaussian-shaped record (axes solver × beta × lambda × start; start the replicate axis)
    whose exact scores are `exact` (nll, sap, i_m, b_norm, b_norm_ratio, no_minimiser, ...)."""
    return synthetic_record(
        model="linear_gaussian_vae", dataset="linear_gaussian", source="synthetic", seed=seed,
        replicate_axes=["start"], exact=exact, distribution="dlbench-linear-gaussian",
        solution_axes={"solver": list(solvers), "beta": betas, "lambda": lambdas, "start": list(range(num_starts))},
        hyperparameters={"betas": betas, "lambdas": lambdas, "solvers": list(solvers), "num_starts": num_starts,
                         "num_latent": 10, "max_half_steps": 100_000},
        dataset_details={"n": n, "s": 5, "noise_var": 0.05, "instance_seed": 42})
