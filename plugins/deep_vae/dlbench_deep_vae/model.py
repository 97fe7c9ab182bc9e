"""A deep model of this plugin: an objective's grid of convolutional VAEs (its axes × seeds) trained as stacks on
dlbench's engine, scored on the encoder mean.

Single-stage models train every (setting, seed) for model.training_steps. A model whose objective `continues`
another (the λβ-VAE) first trains the continued objective's grid (its own steps, `beta_steps`), then continues each
of its solutions for model.training_steps per setting of the remaining axes, with a fresh Adam.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from dlbench import (
    ConfigError,
    DiscreteGroundTruthDataset,
    FitContext,
    StateMismatchError,
    check_state_entry,
    load_run_state,
    read_record,
)
from dlbench.training import AdamSettings, SolutionCache, check_batch_size
from dlbench_deep_vae import networks, stages
from dlbench_deep_vae.grid import SolutionGrid
from dlbench_deep_vae.objective import Objective

PAPER_BATCH_SIZE = 64
PAPER_NUM_LATENT = 10
PAPER_BETA_STEPS = 150_000
IMAGE_SIZE = 64
# Solutions encoded together when scoring: one at a time on a CPU (faster there), a stack on a GPU.
EVALUATION_WIDTH = {"cpu": 1, "cuda": 32}
# A latent is active when its KL to the prior exceeds this (nats), as for active units.
ACTIVE_KL = 0.01


class DeepVAE:
    """An objective's grid of convolutional VAEs (see the module docstring)."""

    replicate_axes = ("seed",)

    def __init__(self, objective: type[Objective], axes: Mapping[str, list], objective_settings: Mapping[str, float],
                 architecture: str, likelihood: str, learning_rate: float, log_every: int, checkpoint_every: int,
                 stack_width: int | None, cache_stages: bool, beta_steps: int | None = None):
        self.objective = objective(**objective_settings)
        self.name = objective.model
        self.grid = SolutionGrid(axes)
        self.axis_parameters = {**{name: axis.parameter for name, axis in objective.axes.items()}, "seed": "seeds"}
        self.architecture, self.likelihood = architecture, likelihood
        self.adam = AdamSettings(learning_rate=learning_rate)
        self.log_every, self.checkpoint_every, self.stack_width = log_every, checkpoint_every, stack_width
        self.cache_stages, self.beta_steps = cache_stages, beta_steps
        self.resolved: dict[str, Any] = {}
        self.solution_state: dict[str, torch.Tensor] = {}
        self._stacks: list[networks.StackedConvVAE] = []

    @property
    def solution_axes(self) -> dict[str, list]:
        return dict(self.grid.axes)

    @property
    def solution_shape(self) -> tuple[int, ...]:
        return self.grid.shape

    @property
    def num_solutions(self) -> int:
        return len(self.grid)

    def hyperparameters(self) -> dict[str, Any]:
        grid = {self.axis_parameters[name]: values for name, values in self.grid.axes.items()}
        groups = [{"name": g.name, "objective": g.objective, **g.adam.describe()}
                  for g in self.objective.optimizer_groups(self.adam)]
        return {**grid, **self.objective.values, "architecture": self.architecture, "likelihood": self.likelihood,
                **self.adam.describe(), "optimizer_groups": groups, "beta_steps": self.beta_steps,
                "log_every": self.log_every, **self.resolved}

    # Fitting --------------------------------------------------------------------------------------------------

    def fit(self, dataset, context: FitContext) -> None:
        """Train every solution of the grid (see the module docstring)."""
        settings = self._stage_settings(dataset, context)
        steps = self.resolved["training_steps"]
        continued = self.objective.continues
        if continued is None:
            solutions = stages.trained_stage(settings, self.objective, self.grid, steps)
            final = stages.stacked_solutions(self.grid, solutions)
        else:
            first_objective = continued()
            first_grid = self.grid.sub([*continued.axes, "seed"])
            if self.resolved["init_from"]:
                first = self._initial_weights(dataset, first_grid)
            else:
                first = stages.trained_stage(settings, first_objective, first_grid, self.resolved["beta_steps"],
                                             later_model_steps=self.num_solutions * steps)
            final = stages.continued_stage(settings, self.objective, first_grid, first, steps)
        self._set_solutions(final["state"], final["tail"], final["frozen_at"], context.device)
        context.note(reconstruction=f"mean training {'BCE' if self.likelihood == 'bernoulli' else 'l2 loss'} over "
                     f"the last {stages.tail_steps(steps)} steps of the final stage")

    def _stage_settings(self, dataset, context: FitContext) -> stages.StageSettings:
        if not isinstance(dataset, DiscreteGroundTruthDataset) or len(dataset.observation_shape) != 3 \
                or dataset.observation_shape[0] not in (1, 3) \
                or tuple(dataset.observation_shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise ConfigError(f"model {self.name} needs a discrete dataset of 64x64 images with 1 or 3 channels; "
                              f"{dataset.name!r} has observations {tuple(dataset.observation_shape)}")
        training = context.training
        if training.init_from and self.objective.continues is None:
            raise ConfigError(f"model.init_from is not accepted by {self.name}; expected a model that continues a "
                              "first stage (lambda_beta_vae), which starts from a beta_vae run's solutions")
        self.resolved = {"batch_size": training.batch_size or PAPER_BATCH_SIZE,
                         "training_steps": training.training_steps or self.objective.default_steps,
                         "num_latent": training.num_latent or PAPER_NUM_LATENT,
                         "num_channels": dataset.observation_shape[0], "init_from": training.init_from}
        if self.objective.continues is not None:
            self.resolved["beta_steps"] = self.beta_steps or PAPER_BETA_STEPS
        check_batch_size(self.resolved["batch_size"], dataset)
        return stages.StageSettings(
            dataset, context, self.grid, self.architecture, self.likelihood, self.adam, self.resolved["batch_size"],
            self.resolved["num_latent"], self.resolved["num_channels"], self.log_every, self.checkpoint_every,
            self.stack_width, SolutionCache(stages.STAGE_CACHE) if self.cache_stages else None,
            context.output_dir / "tensorboard" if training.tensorboard else None)

    def _initial_weights(self, dataset, first_grid: SolutionGrid) -> dict[tuple, dict]:
        """The first stage's solutions from a finished beta_vae run (model.init_from), checked to be the same
        network trained on the same data for as many steps, holding every (β, seed) this grid needs."""
        run_dir = Path(self.resolved["init_from"])
        record = read_record(run_dir)
        where = f"model.init_from = {str(run_dir)!r}"
        source = self.objective.continues.model
        if record["model"]["name"] != source:
            raise ConfigError(f"{where} is a run of {record['model']['name']!r}, not accepted; expected a run of "
                              f"{source!r}, whose solutions are this model's first stage")
        other = record["model"]["hyperparameters"]
        mine = {"architecture": self.architecture, "likelihood": self.likelihood,
                "num_latent": self.resolved["num_latent"], "num_channels": self.resolved["num_channels"],
                "training_steps": self.resolved["beta_steps"]}
        for key, value in mine.items():
            if other.get(key) != value:
                raise ConfigError(f"{where} is not accepted: its {key} is {other.get(key)!r} and this model's "
                                  f"{'beta_steps' if key == 'training_steps' else key} {value!r}; expected a run of "
                                  "the same network and steps")
        facts = {k: v for k, v in dataset.describe().items() if k not in ("file", "cache", "note")}
        theirs = {k: v for k, v in record["dataset"].items() if k in facts}
        if theirs != facts:
            raise ConfigError(f"{where} is not accepted: it was trained on {theirs} and this run uses {facts}; "
                              "expected a run on the same dataset")
        return self._source_solutions(run_dir, record["solution_axes"], first_grid, where)

    @staticmethod
    def _source_solutions(run_dir: Path, axes: Mapping[str, list], first_grid: SolutionGrid,
                          where: str) -> dict[tuple, dict]:
        state = load_run_state(run_dir)
        solutions = {}
        for cell in first_grid.cells():
            missing = [f"{name} = {value:g}" for name, value in zip(first_grid.names, cell)
                       if value not in axes.get(name, [])]
            if missing:
                raise ConfigError(f"{where} has no solution {', '.join(missing)}; it holds "
                                  f"{', '.join(f'{n} {axes.get(n)}' for n in first_grid.names)}")
            index = tuple(axes[name].index(value) for name, value in zip(first_grid.names, cell))
            solutions[cell] = {"state": {k[len("network."):]: v[index].float() for k, v in state.items()
                                         if k.startswith("network.")}}
        return solutions

    def _set_solutions(self, states: Mapping[str, torch.Tensor], tails: Mapping[str, torch.Tensor],
                       frozen_at: torch.Tensor, device: torch.device) -> None:
        """Keep every solution's parameters and tail scores (flat solution axis in grid order) as the model's state,
        with the solution axes leading."""
        shape = self.solution_shape
        state = {f"network.{k}": v.reshape(*shape, *v.shape[1:]) for k, v in states.items()}
        state.update({f"tail.{k}": v.reshape(*shape, *v.shape[1:]).float() for k, v in tails.items()})
        state["frozen_at"] = frozen_at.reshape(shape).to(torch.int64)
        self._install(state, device)

    def _install(self, state: Mapping[str, torch.Tensor], device: torch.device) -> None:
        self.solution_state = {k: v.detach().cpu() for k, v in state.items()}
        num_latent, num_channels = self._network_sizes(self.solution_state)
        depth = len(self.solution_shape)
        flat = {k[len("network."):]: v.reshape(-1, *v.shape[depth:]) for k, v in self.solution_state.items()
                if k.startswith("network.")}
        width = EVALUATION_WIDTH.get(device.type, 1)
        self._stacks = []
        for start in range(0, self.num_solutions, width):
            part = [{k: v[i] for k, v in flat.items()} for i in range(start, min(start + width, self.num_solutions))]
            self._stacks.append(networks.StackedConvVAE.from_states(part, num_channels, num_latent, self.architecture)
                                .to(device).eval())

    @staticmethod
    def _network_sizes(state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
        """(num_latent, num_channels) read off the saved weights."""
        return state["network.mean_head.weight"].shape[-2], state["network.encoder_convs.0.weight"].shape[-3]

    # Using the fitted model -----------------------------------------------------------------------------------

    def _images(self, observations: torch.Tensor) -> torch.Tensor:
        if observations.dtype != torch.uint8:
            raise ConfigError(f"{self.name} encodes uint8 images as the dataset yields them, not {observations.dtype}")
        return observations.to(torch.float32) / 255

    def posterior_parameters(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of every solution: (*solution_shape, num, d) each."""
        images = self._images(observations)
        means, log_vars = [], []
        with torch.no_grad():
            for stack in self._stacks:
                mean, log_var = stack.encode(images.unsqueeze(0).expand(stack.num_solutions, *images.shape))
                means.append(mean)
                log_vars.append(log_var)
        shape = (*self.solution_shape, *images.shape[:1])
        return torch.cat(means).reshape(*shape, -1), torch.cat(log_vars).reshape(*shape, -1)

    def representation(self, observations: torch.Tensor) -> torch.Tensor:
        """The encoder mean μ of every solution, (*solution_shape, num, d), from uint8 images."""
        return self.posterior_parameters(observations)[0]

    def reconstructions(self, observations: torch.Tensor) -> torch.Tensor:
        """sigmoid(decode(μ)) of every solution as uint8 images, (*solution_shape, num, C, 64, 64)."""
        mean = self.representation(observations).reshape(self.num_solutions, len(observations), -1)
        return self._decode(mean).reshape(*self.solution_shape, *observations.shape)

    def traversal(self, observation: torch.Tensor, values: Sequence[float]) -> torch.Tensor:
        """Each solution's decoding of one image's μ with one latent at a time set to each of `values`:
        (*solution_shape, d, len(values), C, 64, 64) uint8."""
        mean = self.representation(observation.unsqueeze(0)).reshape(self.num_solutions, 1, -1)
        num_latent = mean.shape[-1]
        grid = torch.as_tensor(values, dtype=mean.dtype, device=mean.device)
        codes = mean.expand(-1, num_latent * len(values), -1).clone().view(self.num_solutions, num_latent,
                                                                           len(values), num_latent)
        for latent in range(num_latent):
            codes[:, latent, :, latent] = grid
        images = self._decode(codes.reshape(self.num_solutions, -1, num_latent))
        return images.reshape(*self.solution_shape, num_latent, len(values), *observation.shape)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        parts, start = [], 0
        with torch.no_grad():
            for stack in self._stacks:
                part = codes[start:start + stack.num_solutions]
                parts.append(torch.sigmoid(stack.decode(part)))
                start += stack.num_solutions
        return (torch.cat(parts) * 255 + 0.5).to(torch.uint8)

    def training_scores(self) -> dict[str, Any]:
        """The paper's reconstruction (mean training loss over the final stage's last steps), the loss and every
        other term over that window, KL per latent and the latents it counts active, and the step where a solution
        diverged."""
        tail = {k[len("tail."):]: v for k, v in self.solution_state.items() if k.startswith("tail.")}
        scores: dict[str, Any] = {"diverged_at_step": self.solution_state["frozen_at"]}
        if "recon" in tail:
            scores.update(reconstruction=tail.pop("recon"), loss=tail.pop("total"),
                          active_latents=(tail["kl_per_latent"] > ACTIVE_KL).sum(-1), **tail)
        return scores

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.solution_state)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore every solution, refusing a state whose names or shapes this grid and architecture would not
        produce (latent size and channels are read off the weights)."""
        if "network.mean_head.weight" not in state or "network.encoder_convs.0.weight" not in state:
            raise StateMismatchError(f"{self.name} state lacks the network's weights (it has {sorted(state)[:5]} ...)")
        num_latent, num_channels = self._network_sizes(state)
        shape = self.solution_shape
        template = networks.StackedConvVAE(1, num_channels, num_latent, self.architecture).state_dict()
        auxiliary = self.objective.auxiliary([0], num_latent)
        if auxiliary is not None:
            template.update({f"auxiliary.{k}": v for k, v in auxiliary.state_dict().items()})
        expected = {f"network.{k}": (*shape, *v.shape[1:]) for k, v in template.items()}
        expected["frozen_at"] = shape
        for name, entry_shape in expected.items():
            check_state_entry(state, name, entry_shape, owner=self.name)
        tails = {k for k in state if k.startswith("tail.")}
        for name in tails:
            check_state_entry(state, name, (*shape, *([num_latent] if name.endswith("per_latent") else [])),
                              owner=self.name)
        extra = sorted(set(state) - set(expected) - tails)
        if extra:
            raise StateMismatchError(f"{self.name} state has unexpected entries {extra[:5]}")
        device = next(iter(state.values())).device
        self._install({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, device)
