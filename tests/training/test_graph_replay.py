"""What stands in for CUDA graphs on the CPU: the engine's `cuda_graphs` mode with the capture done by make_fx, which
records the aten operations of a step's device part on the stack's own tensors, as a CUDA capture records kernels on
fixed addresses; each later step replays that record. Such a stack must train exactly as the eager engine does. A
device part that depended on Python state changing from step to step (a batch offset, a noise position, a tensor made
anew) would replay a stale value: the comparisons cross noise blocks, epochs and a resume, where those change."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from dlbench import FitContext, create_dataset, create_model
from dlbench.errors import ConfigError
from dlbench.training import stack as stack_module
from dlbench.training.stack import GRAPH_WARMUP_STEPS, TrainingStack
from dlbench_deep_vae.stages import StageSettings

GRID_PARAMETER = {"beta_vae": "betas", "factor_vae": "gammas"}
BATCH = 16
NOISE_BLOCK = 8
STEPS = 40


def training_stack(model_name: str, tmp_path, name: str, cuda_graphs: bool = False) -> TrainingStack:
    dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 6, 4, 2, 2))  # 18 batches an epoch
    model = create_model(model_name, **{GRID_PARAMETER[model_name]: [2.0, 8.0]}, seeds=[0], cache_stages=False)
    context = FitContext("cpu", 0, tmp_path / name, progress=False)
    settings = StageSettings(dataset, context, model.grid, "paper", "bernoulli", model.adam, BATCH, 4, 1, 10, 100,
                             2, None)
    cells, seeds = model.grid.cells(), [0, 1]
    plan = settings.plan("replay", model.objective, seeds, STEPS, [list(c) for c in cells])  # the last 4 the tail
    stack = TrainingStack(settings.problem(model.objective, model.grid, cells, seeds),
                          dataclasses.replace(plan, cuda_graphs=cuda_graphs), dataset, context, seeds)
    stack.noise.block_steps = NOISE_BLOCK  # short blocks: a few steps cross several
    return stack


class TracedGraph:
    """A step's device part recorded once by make_fx, standing for a captured CUDA graph: `replay()` runs the record
    and writes its loss terms into the same tensors every time. make_fx runs what it records (a CUDA capture does
    not), so what the step wrote is put back."""

    def __init__(self, stack: TrainingStack, step):
        written = stack._stacked_tensors() + [stack.step_index, stack.frozen, stack.frozen_at, stack.frozen_weight] + \
            [value for optimizer in stack.optimizers for state in optimizer.state.values()
             for value in state.values() if isinstance(value, torch.Tensor) and value.ndim == 0] + \
            [*stack.log_sums.values(), *stack.tail_sums.values()]
        saved = [tensor.clone() for tensor in written]
        self.record = make_fx(lambda: step())()  # a bound method would be traced with `self` as an input
        for tensor, value in zip(written, saved):
            tensor.copy_(value)
        self.outputs = {key: torch.empty_like(value) for key, value in self.record().items()}
        for tensor, value in zip(written, saved):
            tensor.copy_(value)
        self.captures = 1

    def replay(self) -> None:
        for key, value in self.record().items():
            self.outputs[key].copy_(value)


@pytest.fixture
def traced_capture(monkeypatch):
    """The engine's CUDA capture replaced by make_fx's record; yields the records made."""
    made = []

    def capture(step, stream):
        graph = TracedGraph(step.__self__, step)
        made.append(graph)
        return graph, graph.outputs

    monkeypatch.setattr(stack_module, "capture_cuda_graph", capture)
    return made


def totals(stack: TrainingStack, steps: int) -> list[torch.Tensor]:
    return [stack.train_step()["total"].clone() for _ in range(steps)]


@pytest.mark.parametrize("model_name", sorted(GRID_PARAMETER))
def test_a_captured_step_replayed_trains_as_the_eager_engine_across_blocks_epochs_and_a_resume(model_name, tmp_path,
                                                                                                 traced_capture):
    eager = training_stack(model_name, tmp_path, "eager")
    graphed = training_stack(model_name, tmp_path, "graphed", cuda_graphs=True)
    # Four noise blocks and two epochs begin within 40 steps; the resume (a checkpoint loaded into a new stack at a
    # step inside a block and an epoch) captures again after its own warm-up steps.
    eager_totals = totals(eager, STEPS)
    graphed_totals = totals(graphed, 21)
    assert len(traced_capture) == 1 and graphed.graph is traced_capture[0]
    resumed = training_stack(model_name, tmp_path, "resumed", cuda_graphs=True)
    resumed.load(graphed.state())
    graphed_totals += totals(resumed, STEPS - 21)
    assert len(traced_capture) == 2
    assert torch.equal(torch.stack(graphed_totals), torch.stack(eager_totals))
    for (name, value), other in zip(eager.network.state_dict().items(), resumed.network.state_dict().values()):
        assert torch.equal(value, other), name
    assert resumed.tail_start == STEPS - 4
    for key, value in eager.log_sums.items():  # the running sums are part of the replayed step
        assert torch.equal(resumed.log_sums[key], value), key
        assert torch.equal(resumed.tail_sums[key], eager.tail_sums[key]), key
        assert bool((eager.tail_sums[key] != 0).any()), key


def test_the_replay_check_catches_a_step_that_reads_python_state(tmp_path, traced_capture):
    """The comparison above fails for a device part that slices its batch at a Python offset (as the engine did
    before CUDA graphs): the record keeps the offset of the step it recorded."""
    eager = training_stack("beta_vae", tmp_path, "eager")
    graphed = training_stack("beta_vae", tmp_path, "stale", cuda_graphs=True)
    batches = graphed.batches
    batches.current_indices = lambda: batches.permutations[:, int(batches.offset):int(batches.offset) + BATCH]
    eager_totals, graphed_totals = totals(eager, GRAPH_WARMUP_STEPS + 3), totals(graphed, GRAPH_WARMUP_STEPS + 3)
    assert torch.equal(graphed_totals[GRAPH_WARMUP_STEPS], eager_totals[GRAPH_WARMUP_STEPS])  # the captured step
    assert not torch.equal(graphed_totals[-1], eager_totals[-1])


def test_a_step_that_cannot_be_captured_is_refused_in_one_line(tmp_path, monkeypatch):
    def capture_refused(step, stream):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nCUDA kernel errors ...")

    monkeypatch.setattr(stack_module, "capture_cuda_graph", capture_refused)
    stack = training_stack("beta_vae", tmp_path, "refused", cuda_graphs=True)
    with pytest.raises(ConfigError) as refused:
        totals(stack, GRAPH_WARMUP_STEPS + 1)
    assert str(refused.value) == (
        "training.cuda_graphs = True: a step of VAEProblem cannot be captured in a CUDA graph (CUDA error: operation "
        "not permitted when stream is capturing); dlbench.training.opcount.check_capturable_step names what it reads "
        "from the host; or set training.cuda_graphs = False")
