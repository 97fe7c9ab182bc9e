"""`bench_results`: a grouped query over 10,000 solutions (1,000 with `quick`) answered from the SQLite index
(already built; the call still hashes every record's bytes to see that none changed) against re-reading,
re-validating and flattening every JSON record, as a store without an index would. Both answers are compared
before timing."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dlbench.leaderboard.fixtures import deep_record, write_run
from dlbench.records import RECORD_FILE
from dlbench.results import HEADLINE_METRICS, Results, load_record, open_index
from dlbench.results.statistics import summary
from dlbench.summary import scalar_scores

BETAS, LAMBDAS, SEEDS = [1.0, 4.0, 8.0, 16.0, 32.0], [0.0, 2.0, 4.0, 6.0, 8.0], list(range(10))
SOLUTIONS_PER_RECORD = len(BETAS) * len(LAMBDAS) * len(SEEDS)
DATASETS = (("dsprites", "official"), ("dsprites", "procedural"), ("shapes3d", "procedural"), ("mpi3d", "official"))
# Scores beside the headline ones, so that a record is as wide as a run scored with the whole metric suite.
EXTRA_SCORES = ("dci.disentanglement", "dci.completeness", "dci.informativeness", "factor_vae_score.eval_accuracy",
                "beta_vae_score.eval_accuracy", "modularity_explicitness.modularity", "unsupervised.total_correlation")
WHERE, GROUP_BY = "beta>=8", ("dataset", "source", "beta", "lambda")
REPEATS = 3


def _write_records(result_dir: Path, num_records: int) -> None:
    rng = np.random.default_rng(0)
    shape = (len(BETAS), len(LAMBDAS), len(SEEDS))
    names = ("mig.mig", "sap_score.sap", "i_m.i_m", "training.reconstruction", *EXTRA_SCORES)
    for number in range(num_records):
        dataset, source = DATASETS[number % len(DATASETS)]
        scores = {name: rng.random(shape) for name in names}
        write_run(result_dir, deep_record(dataset, source, BETAS, LAMBDAS, SEEDS, scores, seed=number))


def _from_index(result_dir: Path) -> dict[tuple[Any, ...], tuple[float, float, int]]:
    with Results([result_dir]) as results:
        groups = results.groups(WHERE, GROUP_BY, list(HEADLINE_METRICS))
    return {(*g.key, metric): g.statistics[metric] for g in groups for metric in HEADLINE_METRICS}


def _from_records(result_dir: Path) -> dict[tuple[Any, ...], tuple[float, float, int]]:
    """The same answer from the JSON records alone: read and check each, flatten, filter, group."""
    values: dict[tuple[Any, ...], list[float]] = {}
    for path in sorted(result_dir.rglob(RECORD_FILE)):
        record, _ = load_record(path)
        axes = record["solution_axes"]
        scores = scalar_scores(record)
        for index in np.ndindex(*(len(labels) for labels in axes.values())):
            labels = {name: axes[name][i] for name, i in zip(axes, index)}
            if not labels["beta"] >= 8:
                continue
            for alias, metric in HEADLINE_METRICS.items():
                value = next((scores[name][index] for name in metric.scores if name in scores), np.nan)
                key = (record["dataset"]["name"], record["dataset"]["source"], labels["beta"], labels["lambda"], alias)
                values.setdefault(key, []).append(float(value))
    return {key: summary(np.array(group)) for key, group in values.items()}


def _best_time(function: Callable[[], Any]) -> tuple[float, Any]:
    best, answer = float("inf"), None
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = function()
        best = min(best, time.perf_counter() - started)
    return best, answer


def bench_results(quick: bool = False) -> list[dict[str, Any]]:
    num_solutions = 1_000 if quick else 10_000
    num_records = -(-num_solutions // SOLUTIONS_PER_RECORD)
    with tempfile.TemporaryDirectory(prefix="dlbench-bench-results-") as temp:
        result_dir = Path(temp)
        _write_records(result_dir, num_records)
        started = time.perf_counter()
        open_index(result_dir)[0].close()
        build_seconds = time.perf_counter() - started
        ours, indexed = _best_time(lambda: _from_index(result_dir))
        baseline, recomputed = _best_time(lambda: _from_records(result_dir))
    if indexed.keys() != recomputed.keys() or not all(
            np.allclose(indexed[key], recomputed[key], equal_nan=True) for key in indexed):
        raise AssertionError("the indexed and the re-read answers differ")
    return [{"name": "results_grouped_query", "seconds": ours, "baseline_seconds": baseline,
             "ratio": baseline / ours,
             "note": f"{num_records * SOLUTIONS_PER_RECORD} solutions in {num_records} records, --where '{WHERE}' "
                     f"--group {','.join(GROUP_BY)}, 4 metrics; index built once in {build_seconds:.2f} s"}]
