"""Shared by tests that drive the CLI: a tiny linear experiment and a tiny deep one, the bad-input check (exit 2,
one line, nothing changed), and the part of a record that an interrupted run must reproduce."""
from __future__ import annotations

import hashlib
from pathlib import Path

from dlbench.cli import main

TINY_LINEAR_GIN = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 12
linear_gaussian.s = 3
linear_gaussian.seed = 3
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 4
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.solvers = ["fixed_point"]
linear_gaussian_vae.num_starts = 3
linear_gaussian_vae.max_half_steps = 600
"""


def tiny_deep_gin(betas: list[float], steps: int) -> str:
    """A λβ-VAE small enough for a test: a 3-latent β stage per β, then one λ, each of `steps` steps, no metrics."""
    return f"""
dataset.name = "dsprites"
dataset.source = "procedural"
dsprites.factor_sizes = [1, 3, 2, 4, 6, 6]
model.name = "lambda_beta_vae"
model.batch_size = 8
model.training_steps = {steps}
encoder.num_latent = 3
lambda_beta_vae.beta_steps = {steps}
lambda_beta_vae.betas = {betas}
lambda_beta_vae.lambdas = [2]
lambda_beta_vae.seeds = [0]
evaluation.metrics = []
"""


def checksums(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def assert_one_line_failure(argv, root: Path, capsys, expected: str | None = None, before: dict | None = None):
    before = checksums(root) if before is None else before
    code = main([str(part) for part in argv])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code} for {argv}; stderr: {err}"
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("dlbench: error: "), err
    if expected is not None:
        assert expected in err, err
    after = checksums(root)
    changed = [name for name in before if after.get(name) != before[name]]
    assert not changed, f"{argv} changed or removed existing files {changed}"
    return err


# What differs between two runs of one config however they went: when, how long, the fit's segments, the machine,
# and the digest that covers them.
CIRCUMSTANTIAL = ("created", "timings", "fit", "environment", "digest")


def reproducible_part(record: dict) -> dict:
    """The record without its circumstances (each metric's seconds and time of scoring too): a run interrupted
    anywhere and resumed must equal this exactly."""
    part = {key: value for key, value in record.items() if key not in CIRCUMSTANTIAL}
    part["metrics"] = {}
    for name, result in record["metrics"].items():
        result = {key: value for key, value in result.items() if key != "seconds"}
        if "provenance" in result:
            result["provenance"] = {k: v for k, v in result["provenance"].items() if k != "computed_at"}
        part["metrics"][name] = result
    return part
