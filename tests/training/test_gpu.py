"""CUDA checks of the training engine and the deep models (run by scripts/gpu_check.sh on a GPU machine).

The comparisons run in strict float32 (the `strict_float32` fixture): TF32 off for convolutions and matmuls, cuDNN's
deterministic algorithms, no autotuning. TF32 rounds to 10 mantissa bits and the non-deterministic algorithms sum in a
varying order, either of which would swamp the rounding-level agreement asserted here. The CPU and the GPU are given
the same observations and the same noise, drawn on the CPU, so only their arithmetic differs.
"""
from __future__ import annotations

import pytest
import torch
from engine_helpers import interrupt_at_save

from dlbench import FitContext, FitInterrupted, create_dataset
from dlbench.training import StepBatch, TrainingPlan, train_stack
from dlbench.training.memory import choose_stack_width
from dlbench.training.noise import NoiseStreams
from dlbench_deep_vae.models.lambda_beta_vae import LambdaBetaVAE
from dlbench_deep_vae.problem import VAEProblem

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
SMALL_GRID = (1, 3, 2, 4, 6, 6)  # dSprites stand-in, 864 images


def problem(num: int, init_seeds=None, num_channels: int = 3) -> VAEProblem:
    return VAEProblem(LambdaBetaVAE(), {"beta": torch.full((num,), 4.0), "lambda": torch.full((num,), 2.0)},
                      init_seeds or list(range(num)), num_channels, 10, "paper", "bernoulli")


@pytest.fixture
def strict_float32():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = True, False, False, False
    yield
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def _policy() -> str:
    return (f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} matmul.allow_tf32="
            f"{torch.backends.cuda.matmul.allow_tf32} cudnn.deterministic={torch.backends.cudnn.deterministic}")


def train_on_fixed_batches(device, steps: int, num_solutions: int = 2, batch_size: int = 16):
    """`steps` Adam steps of a λβ-VAE stack through the plugin's own `loss_terms`, on observations and noise drawn
    on the CPU (the same whatever the device): the losses (steps, S) and the final parameters, on the CPU."""
    dataset = create_dataset("dsprites", source="procedural", factor_sizes=SMALL_GRID)
    _, observations = dataset.sample(steps * num_solutions * batch_size, torch.Generator().manual_seed(0))
    observations = observations.view(steps, num_solutions, batch_size, *observations.shape[1:])
    vae = problem(num_solutions, num_channels=1)
    solutions = list(range(num_solutions))
    network = vae.build(solutions).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    # CPU streams: the draws are moved to the device.
    noise = NoiseStreams([torch.Generator().manual_seed(100 + s) for s in solutions], torch.device(device))
    losses = []
    for step in range(steps):
        noise.begin_step(step)
        batch = StepBatch(observations[step].to(device), torch.tensor(step, device=device), solutions, noise)
        total = vae.loss_terms(network, batch)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        optimizer.step()
        losses.append(total.detach().cpu())
    return torch.stack(losses), {name: value.detach().cpu() for name, value in network.state_dict().items()}


def test_the_fixed_batch_training_of_the_device_comparison_runs_on_the_cpu():
    """The CPU half of the CPU-vs-GPU comparison below, run by the default suite so that it keeps working: finite
    losses, and Adam moved every weight from where the problem builds it."""
    losses, parameters = train_on_fixed_batches("cpu", steps=2, batch_size=8)
    assert losses.shape == (2, 2) and bool(torch.isfinite(losses).all()), losses
    initial = problem(2, num_channels=1).build([0, 1]).state_dict()
    assert all(not torch.equal(parameters[name], value) for name, value in initial.items())


@pytest.mark.gpu
@needs_cuda
def test_the_stand_in_and_its_batches_stay_on_the_gpu():
    dataset = create_dataset("shapes3d", source="procedural", device=CUDA)
    factors, observations = dataset.sample(64, torch.Generator(device=CUDA).manual_seed(0))
    assert factors.is_cuda and observations.is_cuda and observations.dtype == torch.uint8


@pytest.mark.gpu
@needs_cuda
def test_a_gpu_stack_is_wide_and_equals_its_solutions_trained_alone(tmp_path, strict_float32):
    dataset = create_dataset("shapes3d", source="procedural", device=CUDA)
    seeds = (0, 1, 2, 3)
    plan = TrainingPlan("gpu", seeds, 50, 64, log_every=25, tail_steps=10)
    assert choose_stack_width(problem(4), plan, dataset, CUDA) == 4
    stacked = train_stack(problem(4), plan, dataset, FitContext(CUDA, 0, tmp_path / "stack", progress=False))
    alone = train_stack(problem(1, init_seeds=[2]),
                        TrainingPlan("gpu", (2,), 50, 64, log_every=25, tail_steps=10, stack_width=1), dataset,
                        FitContext(CUDA, 0, tmp_path / "alone", progress=False))
    for name, value in alone.parameters.items():
        # The same data and noise (both follow the solution's seed alone); grouped and single convolutions round
        # differently and Adam turns a rounding-size gradient into a step of lr = 1e-4 now and then: the CPU's
        # tolerance (tests/training/test_engine.py, there measured 2.1e-4 and 6e-7 after 200 steps).
        gap = (stacked.parameters[name][2] - value[0]).abs()
        assert gap.max() <= 5e-4 and gap.mean() <= 2e-6, (name, gap.max().item(), gap.mean().item(), _policy())


@pytest.mark.gpu
@needs_cuda
def test_gpu_training_matches_cpu_training_on_the_same_batches(strict_float32):
    steps = 20
    cpu_losses, cpu_parameters = train_on_fixed_batches("cpu", steps)
    gpu_losses, gpu_parameters = train_on_fixed_batches(CUDA, steps)
    # cuDNN and the CPU's kernels sum in different orders (float32 rounding, ~1e-6 relative per step), which 20 Adam
    # steps of lr = 1e-4 can turn into at most a few full steps on a weight whose gradient is near zero: losses
    # within 1e-4 relative at every step, weights within 1e-3 at most and 1e-5 on average.
    assert torch.allclose(gpu_losses, cpu_losses, rtol=1e-4, atol=0), ((gpu_losses - cpu_losses).abs().max(),
                                                                       _policy())
    for name, value in cpu_parameters.items():
        gap = (gpu_parameters[name] - value).abs()
        assert gap.max() <= 1e-3 and gap.mean() <= 1e-5, (name, gap.max().item(), gap.mean().item(), _policy())


def _graphs_fit(dataset, path, after_checkpoint=None, **modes):
    plan = TrainingPlan("graphs", (0, 1), 120, 16, log_every=10, checkpoint_every=40, tail_steps=10, stack_width=2,
                        **modes)
    context = FitContext(CUDA, 0, path, progress=False, after_checkpoint=after_checkpoint)
    return train_stack(problem(2, num_channels=1), plan, dataset, context), context


def _assert_close_fits(one, other):
    for name, value in one.parameters.items():
        # Replayed kernels are the eager ones, but a captured cuBLAS call may choose another algorithm (another
        # workspace): the stack's tolerance (above).
        gap = (other.parameters[name] - value).abs()
        assert gap.max() <= 5e-4 and gap.mean() <= 2e-6, (name, gap.max().item(), gap.mean().item(), _policy())


@pytest.mark.gpu
@needs_cuda
def test_a_cuda_graph_trains_as_eager_steps_and_resumes(tmp_path, strict_float32):
    # 864 images, 54 batches an epoch: the 120 steps cross two epochs and a noise block.
    dataset = create_dataset("dsprites", source="procedural", factor_sizes=SMALL_GRID, device=CUDA)
    eager, eager_context = _graphs_fit(dataset, tmp_path / "eager")
    graphed, graphed_context = _graphs_fit(dataset, tmp_path / "graphed", cuda_graphs=True)
    eager_curve = torch.tensor([point["total"] for point in eager_context.history])
    graphed_curve = torch.tensor([point["total"] for point in graphed_context.history])
    assert torch.allclose(graphed_curve, eager_curve, rtol=1e-4, atol=0), (graphed_curve - eager_curve).abs().max()
    _assert_close_fits(eager, graphed)
    with pytest.raises(FitInterrupted):  # after the layout's and step 40's and step 80's checkpoints
        _graphs_fit(dataset, tmp_path / "resumed", after_checkpoint=interrupt_at_save(3), cuda_graphs=True)
    resumed, resumed_context = _graphs_fit(dataset, tmp_path / "resumed", cuda_graphs=True)
    assert resumed_context.resumed
    _assert_close_fits(graphed, resumed)
