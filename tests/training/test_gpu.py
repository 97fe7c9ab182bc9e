"""CUDA checks of the training engine and the deep models (run by scripts/gpu_check.sh on a GPU machine)."""
from __future__ import annotations

import pytest
import torch

from dlbench import FitContext, create_dataset
from dlbench.training import TrainingPlan, train_stack
from dlbench.training.memory import choose_stack_width
from dlbench_deep_vae.models.lambda_beta_vae import LambdaBetaVAE
from dlbench_deep_vae.problem import VAEProblem

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


def problem(num: int, init_seeds=None) -> VAEProblem:
    return VAEProblem(LambdaBetaVAE(), {"beta": torch.full((num,), 4.0), "lambda": torch.full((num,), 2.0)},
                      init_seeds or list(range(num)), 3, 10, "paper", "bernoulli")


def test_the_stand_in_and_its_batches_stay_on_the_gpu():
    dataset = create_dataset("shapes3d", source="procedural", device=CUDA)
    factors, observations = dataset.sample(64, torch.Generator(device=CUDA).manual_seed(0))
    assert factors.is_cuda and observations.is_cuda and observations.dtype == torch.uint8


def test_a_gpu_stack_is_wide_and_equals_its_solutions_trained_alone(tmp_path):
    dataset = create_dataset("shapes3d", source="procedural", device=CUDA)
    seeds = (0, 1, 2, 3)
    plan = TrainingPlan("gpu", seeds, 50, 64, log_every=25, tail_steps=10)
    assert choose_stack_width(problem(4), plan, dataset, CUDA) == 4
    stacked = train_stack(problem(4), plan, dataset, FitContext(CUDA, 0, tmp_path / "stack", progress=False))
    alone = train_stack(problem(1, init_seeds=[2]),
                        TrainingPlan("gpu", (2,), 50, 64, log_every=25, tail_steps=10, stack_width=1), dataset,
                        FitContext(CUDA, 0, tmp_path / "alone", progress=False))
    for name, value in alone.parameters.items():
        gap = (stacked.parameters[name][2] - value[0]).abs()
        assert gap.max() <= 5e-4 and gap.mean() <= 2e-6, (name, gap.max().item())


def test_gpu_training_matches_cpu_training_to_rounding(tmp_path):
    cpu_dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 2, 4, 6, 6))
    gpu_dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 2, 4, 6, 6), device=CUDA)
    plan = TrainingPlan("device", (5,), 30, 16, log_every=10, tail_steps=5, stack_width=1)
    on_cpu = train_stack(problem(1), plan, cpu_dataset, FitContext("cpu", 0, tmp_path / "cpu", progress=False))
    on_gpu = train_stack(problem(1), plan, gpu_dataset, FitContext(CUDA, 0, tmp_path / "gpu", progress=False))
    # The data order and noise come from generators on each device, so the batches differ: compare the losses.
    assert abs(on_cpu.tail_means["recon"].item() - on_gpu.tail_means["recon"].item()) \
        < 0.05 * on_cpu.tail_means["recon"].item()
