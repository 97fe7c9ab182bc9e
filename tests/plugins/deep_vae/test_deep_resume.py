"""A deep run killed with SIGKILL at a random moment and started again with the same command ends bit-identical (CPU):
weights and every part of the record that does not describe the run's circumstances. The λβ-VAE (two stages) in the
default suite; FactorVAE (two optimiser groups, each with its own Adam state in the checkpoints) under -m slow."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_helpers import reproducible_part
from deep_test_helpers import tiny_factor_vae_gin, tiny_lbvae_gin

from dlbench import records

GIN = tiny_lbvae_gin(training_steps=30, beta_steps=40, log_every=5, checkpoint_every=5)
FACTOR_VAE_GIN = tiny_factor_vae_gin(training_steps=60, log_every=5, checkpoint_every=5)


def dlbench(tmp_path, cache: str, *args) -> subprocess.Popen:
    env = dict(os.environ, DLBENCH_CACHE_DIR=str(tmp_path / cache))
    return subprocess.Popen([sys.executable, "-m", "dlbench", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def state_of(run_dir):
    with np.load(run_dir / records.STATE_FILE) as arrays:
        return {name: arrays[name] for name in arrays.files}


def trials(tmp_path, count: int, gin: str = GIN, window: tuple[float, float] = (1.5, 6.0)) -> list[tuple[float, bool]]:
    """Kill moments drawn in `window` (seconds after the start), each with whether the rerun resumed a fit."""
    config = tmp_path / "run.gin"
    config.write_text(gin)
    reference = dlbench(tmp_path, "cache_reference", "run", str(config), "--out", str(tmp_path / "reference"),
                        "--quiet")
    assert reference.wait(timeout=600) == 0, reference.stderr.read()
    (reference_dir,) = [p for p in (tmp_path / "reference").iterdir() if p.is_dir()]
    expected, expected_state = records.read_record(reference_dir), state_of(reference_dir)
    rng = random.Random(7)
    moments = []
    for trial in range(count):
        out, cache = tmp_path / f"killed{trial}", f"cache{trial}"
        process = dlbench(tmp_path, cache, "run", str(config), "--out", str(out), "--quiet")
        moment = rng.uniform(*window)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        rerun = dlbench(tmp_path, cache, "run", str(config), "--out", str(out), "--quiet")
        assert rerun.wait(timeout=600) == 0, f"trial {trial} killed after {moment:.2f} s: {rerun.stderr.read()}"
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        record = records.read_record(run_dir)
        state = state_of(run_dir)
        for name, value in expected_state.items():
            assert np.array_equal(state[name], value, equal_nan=True), (trial, moment, name)
        assert reproducible_part(record) == reproducible_part(expected), (trial, moment)
        moments.append((moment, record["fit"]["resumed"]))
    return moments


def test_a_killed_deep_run_resumes_bit_identical(tmp_path):
    trials(tmp_path, 1)


@pytest.mark.slow
def test_a_killed_deep_run_resumes_bit_identical_at_many_moments(tmp_path):
    moments = trials(tmp_path, 6)
    print(f"6 SIGKILL trials (moment s, resumed) {sorted((round(m, 2), r) for m, r in moments)}: every rerun "
          "bit-identical")


@pytest.mark.slow
def test_a_killed_factor_vae_run_resumes_bit_identical(tmp_path):
    moments = trials(tmp_path, 3, FACTOR_VAE_GIN, window=(3.0, 14.0))  # the whole run takes ~18 s on 2 cores
    assert any(resumed for _, resumed in moments), moments  # a kill mid-fit, not only before or after it
    print(f"3 FactorVAE SIGKILL trials (moment s, resumed) {sorted((round(m, 2), r) for m, r in moments)}: every "
          "rerun bit-identical")
