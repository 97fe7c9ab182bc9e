"""What stands in for a GPU on the CPU: one engine step counted operation by operation (a dispatch-mode counter). A
step a GPU can queue (or capture) makes no host reads, and its operation count does not grow with the stack's width."""
from __future__ import annotations

import pytest
import torch

from dlbench import FitContext, create_dataset, create_model
from dlbench.training.opcount import OperationCounter, check_capturable_step
from dlbench.training.stack import TrainingStack
from dlbench_deep_vae.stages import StageSettings

# Measured on the β-VAE (beta_vae, paper architecture, batch 64, d = 10), the running sums of the loss terms
# included: 228 operations at S = 1 and 235 at S = 4 and 16 (channels-last packing is a no-op for one 1-channel
# solution); FactorVAE 435 and 442. The engine before issue 18 made 671, 679 and 869, with 26 host reads each (Adam's
# step count read back per parameter), and its running sums outside the step.
BUDGET = {"beta_vae": 245, "factor_vae": 455}
GRID_PARAMETER = {"beta_vae": "betas", "factor_vae": "gammas"}


def counted_step(model_name: str, width: int, tmp_path) -> OperationCounter:
    dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 6, 8, 8, 8))
    model = create_model(model_name, **{GRID_PARAMETER[model_name]: [float(v) for v in range(1, width + 1)]},
                         seeds=[0], cache_stages=False)
    context = FitContext("cpu", 0, tmp_path / f"{model_name}{width}", progress=False)
    settings = StageSettings(dataset, context, model.grid, "paper", "bernoulli", model.adam, 64, 10, 1, 10, 100,
                             width, None)
    cells, seeds = model.grid.cells(), list(range(width))
    stack = TrainingStack(settings.problem(model.objective, model.grid, cells, seeds),
                          settings.plan("budget", model.objective, seeds, 1000, [list(c) for c in cells]), dataset,
                          context, seeds)
    stack.train_step()  # the first step also creates the optimisers' state
    with OperationCounter() as counter:
        stack.train_step()
    with OperationCounter() as host_part:  # what a CUDA graph's replay leaves to the host, within a noise block
        stack.noise.begin_step(stack.step)
        stack.batches.begin_step(stack.step)
    counter.host_part = host_part
    return counter


@pytest.mark.parametrize("model_name", sorted(BUDGET))
def test_a_step_makes_no_host_reads_and_a_constant_number_of_operations(model_name, tmp_path):
    counts = {width: counted_step(model_name, width, tmp_path) for width in (1, 4, 16)}
    for width, counter in counts.items():
        assert counter.host_reads == 0, (width, {k: v for k, v in counter.counts.items() if v})
        assert counter.host_inputs == 0, (width, counter.counts)
        assert counter.operations <= BUDGET[model_name], (width, counter.operations)
        assert counter.host_part.operations == 2, counter.host_part.counts  # the step's two offsets written
    assert counts[4].operations == counts[16].operations
    assert counts[1].operations <= counts[4].operations


def test_the_counter_sees_host_reads_and_operations():
    with OperationCounter() as counter:
        values = torch.arange(5.0) * 2
        total = values.sum().item()
        torch.nonzero(values)
        torch.tensor([1.0, 2.0])
    assert total == 20 and counter.host_reads == 2 and counter.operations >= 4 and counter.host_inputs == 1


def zoo_stage(model_name: str, grid: str, tmp_path):
    """The problem and plan of a two-solution stage of a zoo model on the dSprites stand-in."""
    dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 6, 8, 8, 8))
    model = create_model(model_name, **{grid: [1.0, 2.0]}, seeds=[0], cache_stages=False)
    settings = StageSettings(dataset, FitContext("cpu", 0, tmp_path, progress=False), model.grid, "paper",
                             "bernoulli", model.adam, 64, 10, 1, 10, 100, 2, None)
    cells = model.grid.cells()
    return (settings.problem(model.objective, model.grid, cells, [0, 1]),
            settings.plan("capture", model.objective, [0, 1], 1000, [list(c) for c in cells]), dataset)


ZOO = [("beta_vae", "betas"), ("lambda_beta_vae", "betas"), ("beta_tc_vae", "betas"), ("factor_vae", "gammas"),
       ("dip_vae_i", "lambda_ods"), ("dip_vae_ii", "lambda_ods"), ("annealed_vae", "c_maxes")]


@pytest.mark.parametrize("model_name, grid", ZOO, ids=[name for name, _ in ZOO])
def test_every_zoo_step_makes_no_host_reads_and_no_tensor_from_host_data(model_name, grid, tmp_path):
    """What a GPU queue and a CUDA graph capture need of every model's step."""
    check_capturable_step(*zoo_stage(model_name, grid, tmp_path))


class ReadsTheHost:
    """A problem whose step logs its loss with .item() and makes a tensor from a Python float."""

    def __init__(self, problem):
        self.problem = problem
        self.build = problem.build

    def loss_terms(self, network, batch):
        terms = self.problem.loss_terms(network, batch)
        self.last_total = terms["total"].sum().item()
        terms["total"] = terms["total"] * torch.tensor(1.0)
        return terms


def test_the_capture_check_names_what_a_step_reads_from_the_host(tmp_path):
    problem, plan, dataset = zoo_stage("beta_vae", "betas", tmp_path)
    with pytest.raises(AssertionError, match=r"ReadsTheHost makes host reads or tensors from host data "
                                             r"\(\{'aten._local_scalar_dense': 1, 'tensor from host data': 1\}\)"):
        check_capturable_step(ReadsTheHost(problem), plan, dataset)
