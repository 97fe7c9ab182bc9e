"""The mutable state of one stack under training: its network, one optimiser per group, data order, noise streams,
frozen solutions and running sums of the loss terms; and one optimiser step of it.

A step has a host part (a new epoch's shuffle, a new block of noise, positions written into device tensors) and a
device part that reads and writes device tensors only, at fixed addresses; with `cuda_graphs` the device part is
captured once in a CUDA graph and replayed every later step."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch

from dlbench.errors import ConfigError
from dlbench.fitting import FitContext
from dlbench.training.data import ShuffledBatches
from dlbench.training.noise import NoiseStreams
from dlbench.training.problem import OptimizerGroup, StepBatch
from dlbench.training.seeds import DATA_ORDER, NOISE, derived_seed

# Eager steps before a step is captured in a CUDA graph (after a start or a resume): lazy initialisations, the
# optimisers' state and the noise blocks' first draws happen there, on a side stream as capture requires.
GRAPH_WARMUP_STEPS = 3


def group_parameters(network: torch.nn.Module, groups: Sequence[OptimizerGroup]) -> list[list[torch.nn.Parameter]]:
    """Each group's parameters: those named under its prefixes, or for a group without prefixes every parameter no
    other group claims. A parameter in two groups, or in none, is a mistake in the plan."""
    named = dict(network.named_parameters())
    claimed: dict[str, str] = {}
    members: list[list[str]] = []
    for group in groups:
        names = [name for name in named if any(name.startswith(prefix) for prefix in group.parameters)]
        for name in names:
            if name in claimed:
                raise ConfigError(f"parameter {name!r} is in optimiser groups {claimed[name]!r} and {group.name!r}; "
                                  "expected each parameter in one group")
            claimed[name] = group.name
        members.append(names)
    rest = [name for name in named if name not in claimed]
    catch_all = [index for index, group in enumerate(groups) if not group.parameters]
    if len(catch_all) > 1 or (rest and not catch_all):
        raise ConfigError(f"optimiser groups {[g.name for g in groups]} leave parameters {rest[:3]} unassigned or "
                          "claim them twice; expected one group without prefixes at most, taking the rest")
    if catch_all:
        members[catch_all[0]] = rest
    return [[named[name] for name in names] for names in members]


def capture_cuda_graph(step: Callable[[], dict[str, torch.Tensor]], stream) -> tuple[Any, dict[str, torch.Tensor]]:
    """`step` captured in a CUDA graph on `stream`, the stream its warm-up ran on (cuBLAS creates a handle per stream,
    which must not happen during capture); capture runs nothing: the graph, and the outputs each replay rewrites."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        outputs = step()
    return graph, outputs


class TrainingStack:
    """One stack of solutions under training (see the module docstring)."""

    def __init__(self, problem, plan, dataset, context: FitContext, solutions: list[int]):
        self.problem, self.plan, self.solutions = problem, plan, solutions
        device = context.device
        self.network = problem.build(solutions).to(device)
        # What the step calls: the network itself, or its compiled twin (same parameters; the state dict stays plain).
        self.forward = torch.compile(self.network) if plan.compile else self.network
        # A captured graph replays kernels, not Python: autocast must not cache casts of the weights between steps.
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=plan.precision == "bf16",
                                       cache_enabled=not plan.cuda_graphs)
        self.groups = plan.optimizer_groups
        self.group_parameters = group_parameters(self.network, self.groups)
        self.optimizers = [group.adam.build(parameters, capturable=plan.cuda_graphs)
                           for group, parameters in zip(self.groups, self.group_parameters)]
        seeds = [plan.seeds[s] for s in solutions]
        self.batches = ShuffledBatches(dataset, [derived_seed(seed, DATA_ORDER) for seed in seeds], plan.batch_size,
                                       total_steps=plan.steps)
        if plan.cuda_graphs and self.batches.resident is None:
            raise ConfigError(f"training.cuda_graphs = True needs every observation of {dataset.name} resident on "
                              f"{device}, and they do not fit in its free memory; set training.cuda_graphs = False")
        self.graph: Any = None  # the captured device part of a step, with the loss terms it writes
        self.graph_terms: dict[str, torch.Tensor] = {}
        self.eager_steps = 0  # since the start or the last resume
        self.side_stream = None  # a GPU's warm-up and capture stream
        self.noise = NoiseStreams([torch.Generator(device=device).manual_seed(derived_seed(seed, NOISE))
                                   for seed in seeds], device)
        self.frozen = torch.zeros(len(solutions), dtype=torch.bool, device=device)
        self.frozen_at = torch.full((len(solutions),), -1, dtype=torch.int64, device=device)
        self.frozen_weight = torch.zeros(len(solutions), device=device)  # 1.0 for a frozen solution
        self.step_index = torch.zeros((), dtype=torch.int64, device=device)  # the step, kept on the device
        # Running sums of the loss terms, filled in place by the step (a captured graph keeps their addresses).
        self.log_sums: dict[str, torch.Tensor] = {}
        self.tail_sums: dict[str, torch.Tensor] = {}
        self.tail_start = plan.steps - min(plan.tail_steps, plan.steps)
        self.step = 0

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "network": self.network.state_dict(),
                "optimizers": {group.name: optimizer.state_dict()
                               for group, optimizer in zip(self.groups, self.optimizers)},
                "batches": self.batches.state(), "noise": self.noise.state(),
                "frozen": self.frozen, "frozen_at": self.frozen_at, "log_sums": self.log_sums,
                "tail_sums": self.tail_sums}

    def load(self, state: Mapping[str, Any]) -> None:
        device = self.frozen.device
        self.step = state["step"]
        self.step_index.fill_(self.step)
        self.network.load_state_dict(state["network"])
        for group, optimizer in zip(self.groups, self.optimizers):
            optimizer.load_state_dict(state["optimizers"][group.name])
        self.batches.load_state(state["batches"])
        self.noise.load_state(state["noise"])
        self.frozen.copy_(state["frozen"])
        self.frozen_weight.copy_(self.frozen)
        self.frozen_at.copy_(state["frozen_at"])
        self.log_sums = {k: v.to(device) for k, v in state["log_sums"].items()}
        self.tail_sums = {k: v.to(device) for k, v in state["tail_sums"].items()}
        self.graph, self.graph_terms, self.eager_steps = None, {}, 0  # the optimisers' state tensors are new ones

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimiser step of every group; the step's loss terms (a frozen solution's as NaN, valid until the next
        step). Nothing here reads a value back to the host, and the number of operations does not depend on the
        stack's width, so a GPU can queue steps back to back."""
        self.noise.begin_step(self.step)
        self.batches.begin_step(self.step)
        if self.graph is not None:
            self.graph.replay()
            terms = self.graph_terms
        elif self.plan.cuda_graphs:
            terms = self._capture() if self.eager_steps >= GRAPH_WARMUP_STEPS else self._side_stream_step()
        else:
            terms = self._device_step()
        self.step += 1
        return terms

    def _side_stream_step(self) -> dict[str, torch.Tensor]:
        """An eager step before capture, on the capture's side stream on a GPU (as capture requires)."""
        device = self.frozen.device
        if device.type != "cuda":
            terms = self._device_step()
        else:
            main = torch.cuda.current_stream(device)
            self.side_stream = self.side_stream or torch.cuda.Stream(device)
            self.side_stream.wait_stream(main)
            with torch.cuda.stream(self.side_stream):
                terms = self._device_step()
            main.wait_stream(self.side_stream)
        self.eager_steps += 1
        return terms

    def _capture(self) -> dict[str, torch.Tensor]:
        """Capture this step's device part and replay it (on the current stream) for this step."""
        try:
            self.graph, self.graph_terms = capture_cuda_graph(self._device_step, self.side_stream)
        except RuntimeError as exc:  # a host read or a host copy in the problem's step: CUDA refuses it mid-capture
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"training.cuda_graphs = True: a step of {type(self.problem).__name__} cannot be "
                              f"captured in a CUDA graph ({reason}); dlbench.training.opcount.check_capturable_step "
                              "names what it reads from the host; or set training.cuda_graphs = False") from exc
        self.graph.replay()
        return self.graph_terms

    def _device_step(self) -> dict[str, torch.Tensor]:
        batch = StepBatch(self.batches.current_observations(), self.step_index, self.solutions, self.noise)
        with self.autocast:
            terms = self.problem.loss_terms(self.forward, batch)
        objectives = [terms[group.objective] for group in self.groups]
        self._freeze_diverged(objectives)
        gradients = self._gradients(objectives)
        held = self._snapshot()
        for parameters, grads, optimizer in zip(self.group_parameters, gradients, self.optimizers):
            for parameter, gradient in zip(parameters, grads):
                parameter.grad = gradient
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self._restore_frozen(held)
        shown = {key: torch.where(self._frozen_view(value), torch.nan, value.detach()) for key, value in terms.items()}
        self._add_to_sums(shown)
        self.step_index.add_(1)
        return shown

    def _add_to_sums(self, terms: Mapping[str, torch.Tensor]) -> None:
        """The step's terms added, in float64 on the device, to the sums since the last log and, from the first step
        of the tail on, to the tail's sums (the stage's final scores)."""
        values = {key: value.double() for key, value in terms.items()}
        for sums in (self.log_sums, self.tail_sums):
            if not sums:  # the first step: the sums take the terms' keys and shapes
                sums.update({key: torch.zeros_like(value) for key, value in values.items()})
        torch._foreach_add_([self.log_sums[key] for key in values], list(values.values()))
        in_tail = self.step_index >= self.tail_start
        torch._foreach_add_([self.tail_sums[key] for key in values],
                            [torch.where(in_tail, value, 0.0) for value in values.values()])

    def _freeze_diverged(self, objectives: Sequence[torch.Tensor]) -> None:
        """A solution any of whose objectives is not finite is frozen from this step on (on the device)."""
        finite = torch.stack([torch.isfinite(objective.detach()) for objective in objectives]).all(dim=0)
        newly = ~finite & ~self.frozen
        self.frozen_at.copy_(torch.where(newly, self.step_index, self.frozen_at))
        self.frozen |= newly
        self.frozen_weight.copy_(self.frozen)

    def _gradients(self, objectives: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Each group's gradient of its own objective, summed over the stack (each solution gets exactly its own
        gradient), with respect to its own parameters only; a frozen solution's is zero (its loss may be NaN, and NaN
        reaches its gradient even through a zero weight), so the optimiser's step leaves everything finite."""
        gradients = []
        for index, (objective, parameters) in enumerate(zip(objectives, self.group_parameters)):
            kept = torch.where(self.frozen, torch.zeros_like(objective), objective)
            grads = torch.autograd.grad(kept.sum(), parameters, retain_graph=index < len(objectives) - 1,
                                        allow_unused=True)
            # Contiguous: the fused optimisers index a gradient as if laid out like its parameter (a channels-last
            # gradient of a grouped convolution was applied to the wrong weights).
            gradients.append([torch.where(self._frozen_view(g), 0.0, g).contiguous() if g is not None else None
                              for g in grads])
        return gradients

    def _frozen_view(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.frozen.view(-1, *[1] * (tensor.ndim - 1))

    def _stacked_tensors(self) -> list[torch.Tensor]:
        """Every tensor with a leading solution axis that an optimiser step changes: parameters and their states."""
        tensors = [p.data for parameters in self.group_parameters for p in parameters]
        for optimizer in self.optimizers:
            for state in optimizer.state.values():
                tensors += [value for value in state.values() if isinstance(value, torch.Tensor) and value.ndim
                            and value.shape[0] == len(self.solutions)]
        return tensors

    def _snapshot(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        tensors = self._stacked_tensors()
        return tensors, torch._foreach_mul(tensors, 1.0)

    def _restore_frozen(self, held: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        """A frozen solution keeps the parameters and optimiser state it had before the step, whatever the optimiser
        did: one interpolation with weight exactly 1 (put back) or 0 (kept) per solution, exact for finite values."""
        tensors, before = held
        weights = [self.frozen_weight.view(-1, *[1] * (tensor.ndim - 1)) for tensor in tensors]
        torch._foreach_lerp_(tensors, before, weights)
