"""The paper's β-VAE and λβ-VAE: a (β, λ, seed) grid of convolutional VAEs trained on dlbench's engine.

`beta_vae` trains each (β, seed) for model.training_steps. `lambda_beta_vae` follows the paper's protocol:
the β-VAE stage of each (β, seed) (lambda_beta_vae.beta_steps, 150,000 by default), then each λ
continues it for model.training_steps (50,000) with a fresh Adam. β stages are cached per solution
(dlbench.training.SolutionCache) under a hash of everything that determines them, so a λ sweep trains
each β-VAE once and later runs with an overlapping grid reuse them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dlbench import (
    ConfigError,
    DiscreteGroundTruthDataset,
    FitContext,
    StateMismatchError,
    check_binding,
    check_number,
    check_state_entry,
    load_state,
    read_record,
)
from dlbench.training import SolutionCache, TrainingPlan, train_stack
from dlbench_deep_vae import losses, networks

MODEL_NAMES = ("beta_vae", "lambda_beta_vae")
PAPER_BATCH_SIZE = 64
PAPER_NUM_LATENT = 10
PAPER_BETA_STEPS = 150_000
PAPER_LAMBDA_STEPS = 50_000
# The paper's reconstruction: the mean training BCE over the last 5,000 steps (the last tenth of a shorter run).
PAPER_TAIL_STEPS = 5_000
STAGE_CACHE = "beta_vae_stage"
IMAGE_SIZE = 64
# Solutions encoded together when scoring: one at a time on a CPU (faster there), a stack on a GPU.
EVALUATION_WIDTH = {"cpu": 1, "cuda": 32}
# A latent is active when its KL to the prior exceeds this (nats), as for active units.
ACTIVE_KL = 0.01
TAIL_TERMS = ("recon", "kl", "l2", "total", "kl_per_latent")


def tail_steps(steps: int) -> int:
    """The window of the reconstruction score: 5,000 steps, or the last tenth of a run shorter than 50,000."""
    return PAPER_TAIL_STEPS if steps >= 10 * PAPER_TAIL_STEPS else max(1, steps // 10)


def solution_seed(run_seed: int, seed: int) -> int:
    """The seed of solution `seed` of a run: its initial weights, data order and noise derive from it alone."""
    return int(np.random.SeedSequence([run_seed, seed]).generate_state(1)[0])


def _code_fingerprint() -> str:
    """The plugin's and the engine's source: a β stage trained by other code is another β stage."""
    import dlbench.training.data
    import dlbench.training.engine

    files = sorted(Path(__file__).parent.glob("*.py")) + [Path(dlbench.training.engine.__file__),
                                                          Path(dlbench.training.data.__file__)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class VAEStack:
    """The engine's StackProblem for a list of solutions: each with its initial seed (or weights), β and λ."""

    def __init__(self, init_seeds: Sequence[int], betas: Sequence[float], lambdas: Sequence[float], num_channels: int,
                 num_latent: int, architecture: str, likelihood: str,
                 initial_states: Sequence[Mapping[str, torch.Tensor]] | None = None):
        self.init_seeds, self.initial_states = list(init_seeds), initial_states
        self.betas = torch.tensor(betas, dtype=torch.float32)
        self.lambdas = torch.tensor(lambdas, dtype=torch.float32)
        self.num_channels, self.num_latent = num_channels, num_latent
        self.architecture, self.likelihood = architecture, likelihood

    def build(self, solutions: Sequence[int]) -> networks.StackedConvVAE:
        if self.initial_states is not None:
            return networks.StackedConvVAE.from_states([self.initial_states[s] for s in solutions], self.num_channels,
                                                       self.num_latent, self.architecture)
        return networks.StackedConvVAE.from_seeds([self.init_seeds[s] for s in solutions], self.num_channels,
                                                  self.num_latent, self.architecture)

    def loss_terms(self, network, solutions, observations, noise_generators) -> dict[str, torch.Tensor]:
        images = observations.to(torch.float32) / 255
        noise = networks.draw_noise(noise_generators, images.shape[1], self.num_latent, images.device)
        mean, log_var, logits = network(images, noise)
        index = torch.as_tensor(list(solutions))
        terms = losses.loss_terms(images, mean, log_var, logits, self.betas[index].to(images.device),
                                  self.lambdas[index].to(images.device), self.likelihood)
        terms["kl_per_latent"] = losses.kl_per_latent(mean, log_var)
        return terms


class DeepVAE:
    """A (β, λ, seed) grid of convolutional VAEs (see the module docstring)."""

    replicate_axes = ("seed",)
    axis_parameters = {"beta": "betas", "lambda": "lambdas", "seed": "seeds"}

    def __init__(self, name: str, betas, lambdas, seeds, architecture: str, likelihood: str, learning_rate: float,
                 beta_steps: int | None, log_every: int, checkpoint_every: int, stack_width: int | None,
                 cache_stages: bool):
        self.name = name
        self.betas, self.lambdas, self.seeds = list(betas), list(lambdas), list(seeds)
        self.architecture, self.likelihood = architecture, likelihood
        self.learning_rate, self.beta_steps = learning_rate, beta_steps
        self.log_every, self.checkpoint_every, self.stack_width = log_every, checkpoint_every, stack_width
        self.cache_stages = cache_stages
        self.resolved: dict[str, Any] = {}
        self.solution_state: dict[str, torch.Tensor] = {}
        self._stacks: list[networks.StackedConvVAE] = []

    @property
    def solution_axes(self) -> dict[str, list]:
        return {"beta": list(self.betas), "lambda": list(self.lambdas), "seed": list(self.seeds)}

    @property
    def solution_shape(self) -> tuple[int, ...]:
        return len(self.betas), len(self.lambdas), len(self.seeds)

    @property
    def num_solutions(self) -> int:
        return math.prod(self.solution_shape)

    def hyperparameters(self) -> dict[str, Any]:
        return {"betas": self.betas, "lambdas": self.lambdas, "seeds": self.seeds, "architecture": self.architecture,
                "likelihood": self.likelihood, "learning_rate": self.learning_rate, "optimizer": "adam",
                "adam_betas": [0.9, 0.999], "adam_eps": 1e-8, "beta_steps": self.beta_steps,
                "log_every": self.log_every, **self.resolved}

    # Fitting --------------------------------------------------------------------------------------------------

    def fit(self, dataset, context: FitContext) -> None:
        """Train every (β, λ, seed): the β stage of each (β, seed) (cached, or model.init_from's weights), then
        each λ's continuation with a fresh Adam (for beta_vae, only when it starts from model.init_from)."""
        settings = self._resolve(dataset, context)
        cells = [(beta, seed) for beta in self.betas for seed in self.seeds]
        if settings["init_from"]:
            stage = self._initial_weights(settings, cells)
        else:
            stage = self._beta_stage(dataset, context, settings, cells)
        if self.name == "beta_vae" and not settings["init_from"]:
            final = {"state": _stack([stage[cell]["state"] for cell in cells]),
                     "tail": _stack([stage[cell]["tail"] for cell in cells]),
                     "frozen_at": torch.stack([stage[cell]["frozen_at"] for cell in cells])}
        else:
            final = self._continuation(dataset, context, settings, stage)
        self._set_solutions(final["state"], final["tail"], final["frozen_at"], context.device)
        context.note(reconstruction=f"mean training {'BCE' if self.likelihood == 'bernoulli' else 'l2 loss'} over "
                     f"the last {tail_steps(settings['training_steps'])} steps of the final stage")

    def _resolve(self, dataset, context: FitContext) -> dict[str, Any]:
        if not isinstance(dataset, DiscreteGroundTruthDataset) or len(dataset.observation_shape) != 3 \
                or dataset.observation_shape[0] not in (1, 3) \
                or tuple(dataset.observation_shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise ConfigError(f"model {self.name} needs a discrete dataset of 64x64 images with 1 or 3 channels; "
                              f"{dataset.name!r} has observations {tuple(dataset.observation_shape)}")
        training = context.training
        default_steps = PAPER_BETA_STEPS if self.name == "beta_vae" else PAPER_LAMBDA_STEPS
        self.resolved = {"batch_size": training.batch_size or PAPER_BATCH_SIZE,
                         "training_steps": training.training_steps or default_steps,
                         "num_latent": training.num_latent or PAPER_NUM_LATENT,
                         "num_channels": dataset.observation_shape[0], "init_from": training.init_from}
        if self.name == "lambda_beta_vae":
            self.resolved["beta_steps"] = self.beta_steps or PAPER_BETA_STEPS
        if self.resolved["batch_size"] > len(dataset):
            raise ConfigError(f"model.batch_size = {self.resolved['batch_size']} is not accepted; expected at most "
                              f"the dataset's {len(dataset):,} observations")
        return {**self.resolved, "tensorboard_dir": context.output_dir / "tensorboard"
                if training.tensorboard else None}

    def _plan(self, name: str, seeds: list[int], steps: int, settings: dict, labels: list,
              later_model_steps: int = 0) -> TrainingPlan:
        return TrainingPlan(name=name, seeds=tuple(seeds), steps=steps, batch_size=settings["batch_size"],
                            learning_rate=self.learning_rate, log_every=min(self.log_every, steps),
                            checkpoint_every=self.checkpoint_every, tail_steps=tail_steps(steps),
                            stack_width=self.stack_width, tensorboard_dir=settings["tensorboard_dir"],
                            labels=tuple(labels), later_model_steps=later_model_steps)

    def _stage_identity(self, dataset, settings: dict, beta: float, seed: int, run_seed: int, steps: int) -> dict:
        facts = {k: v for k, v in dataset.describe().items() if k not in ("file", "cache", "note")}
        return {"dataset": facts, "architecture": self.architecture, "num_latent": settings["num_latent"],
                "num_channels": settings["num_channels"], "likelihood": self.likelihood, "beta": beta,
                "seed": seed, "run_seed": run_seed, "steps": steps, "batch_size": settings["batch_size"],
                "optimizer": ["adam", self.learning_rate, 0.9, 0.999, 1e-8], "tail_steps": tail_steps(steps),
                "plugin": importlib.metadata.version("dlbench-deep-vae"), "code": _code_fingerprint()}

    def _beta_stage(self, dataset, context: FitContext, settings: dict, cells) -> dict[tuple, dict]:
        """{(β, seed): {"state", "tail", "frozen_at", "history"}}: each β-VAE from the cache, or trained (only the
        missing ones, as one stage) and cached."""
        steps = settings["training_steps"] if self.name == "beta_vae" else settings["beta_steps"]
        cache = SolutionCache(STAGE_CACHE)
        found, missing, keys = {}, [], {}
        for beta, seed in cells:
            identity = self._stage_identity(dataset, settings, beta, seed, context.seed, steps)
            keys[(beta, seed)] = (cache.key(identity), identity)
            cached = cache.load(*keys[(beta, seed)]) if self.cache_stages else None
            if cached is None:
                missing.append((beta, seed))
            else:
                found[(beta, seed)] = cached
                for point in cached["history"]:  # the reused stage's curves still belong in this run's record
                    context.log(point["step"], **{k: v for k, v in point.items() if k != "step"})
        if missing:
            seeds = [solution_seed(context.seed, seed) for _, seed in missing]
            labels = [[beta, 0.0, seed] for beta, seed in missing]
            problem = VAEStack(seeds, [beta for beta, _ in missing], [0.0] * len(missing), settings["num_channels"],
                               settings["num_latent"], self.architecture, self.likelihood)
            stage_name = "beta_stage-" + hashlib.sha256(repr(missing).encode()).hexdigest()[:8]
            continuation = 0 if self.name == "beta_vae" else self.num_solutions * settings["training_steps"]
            outcome = train_stack(problem, self._plan(stage_name, seeds, steps, settings, labels, continuation),
                                  dataset, context)
            for index, cell in enumerate(missing):
                solution = {"state": {k: v[index].clone() for k, v in outcome.parameters.items()},
                            "tail": {k: v[index].clone() for k, v in outcome.tail_means.items()},
                            "frozen_at": outcome.frozen_at[index].clone(),
                            "history": _history_of(context, stage_name, labels[index])}
                if self.cache_stages:
                    cache.store(*keys[cell], solution)
                found[cell] = solution
        context.note(beta_stages={"reused": [_cell_note(c, keys) for c in cells if c not in missing],
                                  "trained": [_cell_note(c, keys) for c in missing], "cache": str(cache.directory)})
        return found

    def _initial_weights(self, settings: dict, cells) -> dict[tuple, dict]:
        """The (β, seed) weights of another finished run (model.init_from), checked to be the same network."""
        run_dir = Path(settings["init_from"])
        record = read_record(run_dir)
        other = record["model"]["hyperparameters"]
        where = f"model.init_from = {str(run_dir)!r}"
        if record["model"]["name"] not in MODEL_NAMES:
            raise ConfigError(f"{where} is a run of {record['model']['name']!r}, not accepted; expected a run of "
                              f"{' or '.join(MODEL_NAMES)}")
        mine = {"architecture": self.architecture, "num_latent": settings["num_latent"],
                "num_channels": settings["num_channels"]}
        for key, value in mine.items():
            if other.get(key) != value:
                raise ConfigError(f"{where} is not accepted: its {key} is {other.get(key)!r} and this model's "
                                  f"{value!r}; expected a run of the same network")
        axes = record["solution_axes"]
        lambda_index = axes["lambda"].index(0.0) if 0.0 in axes["lambda"] else 0
        state = load_state(run_dir / "state.npz")
        weights = {}
        for beta, seed in cells:
            if beta not in axes["beta"] or seed not in axes["seed"]:
                raise ConfigError(f"{where} has no solution β = {beta:g}, seed = {seed}; it holds betas "
                                  f"{axes['beta']} and seeds {axes['seed']}")
            index = (axes["beta"].index(beta), lambda_index, axes["seed"].index(seed))
            weights[(beta, seed)] = {"state": {k[len("network."):]: v[index].float() for k, v in state.items()
                                               if k.startswith("network.")}}
        return weights

    def _continuation(self, dataset, context: FitContext, settings: dict, stage: dict) -> dict[str, Any]:
        """Every (β, λ, seed) continued from its (β, seed) weights for model.training_steps with a fresh Adam."""
        cells = [(beta, lam, seed) for beta in self.betas for lam in self.lambdas for seed in self.seeds]
        # Each λ of one (β, seed) sees the same data: the continuation's seeds depend on the solution seed only.
        seeds = [solution_seed(context.seed, seed) + 1 for _, _, seed in cells]
        problem = VAEStack(seeds, [beta for beta, _, _ in cells], [lam for _, lam, _ in cells],
                           settings["num_channels"], settings["num_latent"], self.architecture, self.likelihood,
                           initial_states=[stage[(beta, seed)]["state"] for beta, _, seed in cells])
        plan = self._plan("lambda_stage" if self.name == "lambda_beta_vae" else "continuation", seeds,
                          settings["training_steps"], settings, [list(cell) for cell in cells])
        outcome = train_stack(problem, plan, dataset, context)
        return {"state": outcome.parameters, "tail": outcome.tail_means, "frozen_at": outcome.frozen_at}

    def _set_solutions(self, states: Mapping[str, torch.Tensor], tails: Mapping[str, torch.Tensor],
                       frozen_at: torch.Tensor, device: torch.device) -> None:
        """Keep every solution's parameters and tail scores (flat solution axis in (β, λ, seed) order) as the
        model's state, with the solution axes leading."""
        shape = self.solution_shape
        state = {f"network.{k}": v.reshape(*shape, *v.shape[1:]) for k, v in states.items()}
        state.update({f"tail.{k}": v.reshape(*shape, *v.shape[1:]).float() for k, v in tails.items()})
        state["frozen_at"] = frozen_at.reshape(shape).to(torch.int64)
        self._install(state, device)

    def _install(self, state: Mapping[str, torch.Tensor], device: torch.device) -> None:
        self.solution_state = {k: v.detach().cpu() for k, v in state.items()}
        num_latent, num_channels = self._network_sizes(self.solution_state)
        flat = {k[len("network."):]: v.reshape(-1, *v.shape[3:]) for k, v in self.solution_state.items()
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
        """(μ, log σ²) of every solution: (nβ, nλ, nseed, num, d) each."""
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
        """The encoder mean μ of every solution, (nβ, nλ, nseed, num, d), from uint8 images."""
        return self.posterior_parameters(observations)[0]

    def reconstructions(self, observations: torch.Tensor) -> torch.Tensor:
        """sigmoid(decode(μ)) of every solution as uint8 images, (nβ, nλ, nseed, num, C, 64, 64)."""
        mean = self.representation(observations).reshape(self.num_solutions, len(observations), -1)
        return self._decode(mean).reshape(*self.solution_shape, *observations.shape)

    def traversal(self, observation: torch.Tensor, values: Sequence[float]) -> torch.Tensor:
        """Each solution's decoding of one image's μ with one latent at a time set to each of `values`:
        (nβ, nλ, nseed, d, len(values), C, 64, 64) uint8."""
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
        """The paper's reconstruction (mean training loss over the final stage's last steps), the other loss terms
        over that window, KL per latent and the latents it counts active, and the step where a solution diverged."""
        tail = {k[len("tail."):]: v for k, v in self.solution_state.items() if k.startswith("tail.")}
        scores: dict[str, Any] = {"diverged_at_step": self.solution_state["frozen_at"]}
        if "recon" in tail:
            scores.update(reconstruction=tail["recon"], kl=tail["kl"], l2=tail["l2"], loss=tail["total"],
                          kl_per_latent=tail["kl_per_latent"],
                          active_latents=(tail["kl_per_latent"] > ACTIVE_KL).sum(-1))
        return scores

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.solution_state)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore every solution, refusing a state whose names or shapes this grid and architecture would not
        produce (latent size and channels are read off the weights)."""
        if "network.mean_head.weight" not in state or "network.encoder_convs.0.weight" not in state:
            raise StateMismatchError(f"{self.name} state lacks the network's weights (it has {sorted(state)[:5]} ...)")
        num_latent, num_channels = self._network_sizes(state)
        template = networks.StackedConvVAE(1, num_channels, num_latent, self.architecture).state_dict()
        shape = self.solution_shape
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


def _model(name: str, betas, lambdas, seeds, architecture, likelihood, learning_rate, beta_steps, log_every,
           checkpoint_every, stack_width, cache_stages) -> DeepVAE:
    def numbers(values, binding: str, accepted: str, valid, integer: bool = False):
        ok = isinstance(values, (list, tuple)) and len(values) > 0 and len(set(values)) == len(values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and valid(v)
            and (not integer or isinstance(v, int)) for v in values)
        check_binding(ok, f"{name}.{binding}", values, accepted)
        return [int(v) if integer else float(v) for v in values]

    betas = numbers(betas, "betas", "a non-empty list of distinct numbers > 0", lambda v: v > 0)
    lambdas = numbers(lambdas, "lambdas", "a non-empty list of distinct numbers >= 0", lambda v: v >= 0)
    seeds = numbers(seeds, "seeds", "a non-empty list of distinct integers >= 0", lambda v: 0 <= v < 2**63,
                    integer=True)
    check_binding(architecture in networks.ARCHITECTURES, f"{name}.architecture", architecture,
                  " or ".join(map(repr, networks.ARCHITECTURES)))
    check_binding(likelihood in losses.LIKELIHOODS, f"{name}.likelihood", likelihood,
                  " or ".join(map(repr, losses.LIKELIHOODS)))
    check_number(f"{name}.learning_rate", learning_rate, above=0)
    for binding, value in (("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        check_number(f"{name}.{binding}", value, minimum=1, integer=True)
    for binding, value in (("beta_steps", beta_steps), ("stack_width", stack_width)):
        if value is not None:
            check_number(f"{name}.{binding}", value, minimum=1, integer=True)
    check_binding(isinstance(cache_stages, bool), f"{name}.cache_stages", cache_stages, "True or False")
    return DeepVAE(name, betas, lambdas, seeds, architecture, likelihood, learning_rate, beta_steps, log_every,
                   checkpoint_every, stack_width, cache_stages)


def _stack(parts: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([part[key] for part in parts]) for key in parts[0]}


def _cell_note(cell, keys) -> dict:
    return {"beta": cell[0], "seed": cell[1], "key": keys[cell][0]}


def _history_of(context: FitContext, stage: str, label) -> list[dict]:
    """One solution's points of a stage's loss history (to keep with its cached weights)."""
    points = []
    for entry in context.history:
        if entry.get("stage") == stage and label in entry["solutions"]:
            position = entry["solutions"].index(label)
            points.append({key: [value[position]] if isinstance(value, list) and key != "solutions" else value
                           for key, value in entry.items() if key not in ("solutions",)}
                          | {"solutions": [label], "stage": "beta_stage"})
    return points


def beta_vae(betas: Sequence[float] = (1, 4, 8, 16, 32), seeds: Sequence[int] = tuple(range(10)),
             architecture: str = "paper", likelihood: str = "bernoulli", learning_rate: float = 1e-4,
             log_every: int = 500, checkpoint_every: int = 2000, stack_width: int | None = None,
             cache_stages: bool = True):
    """β-VAE: the paper's convolutional VAE with the KL weighted by β, a (β, seed) grid trained as stacks.

    Args:
        betas: the β grid (KL weights > 0).
        seeds: the seeds grid: each seed's initial weights, data order and noise.
        architecture: "paper" (four k4 convs) or "dlib_conv" (disentanglement_lib's kernels 4, 4, 2, 2).
        likelihood: "bernoulli" (binary cross-entropy on the logits, the paper's) or "l2" (squared error).
        learning_rate: Adam's learning rate (betas 0.9, 0.999; eps 1e-8).
        log_every: steps between the loss history's points (means over the steps since the last).
        checkpoint_every: steps between resume checkpoints.
        stack_width: solutions trained as one stack (default: the engine's choice for the device).
        cache_stages: reuse and store trained (β, seed) solutions in the shared stage cache ($DLBENCH_CACHE_DIR).
    """
    return _model("beta_vae", betas, (0,), seeds, architecture, likelihood, learning_rate, None, log_every,
                  checkpoint_every, stack_width, cache_stages)


def lambda_beta_vae(betas: Sequence[float] = (1, 4, 8, 16, 32), lambdas: Sequence[float] = (0, 2, 4, 6, 8),
                    seeds: Sequence[int] = tuple(range(10)), architecture: str = "paper",
                    likelihood: str = "bernoulli", learning_rate: float = 1e-4, beta_steps: int | None = None,
                    log_every: int = 500, checkpoint_every: int = 2000, stack_width: int | None = None,
                    cache_stages: bool = True):
    """λβ-VAE: the β-VAE plus λ·‖x − sigmoid(logits)‖², continued from each (β, seed)'s β-VAE per λ.

    Args:
        betas: the β grid (KL weights > 0).
        lambdas: the λ grid (weights >= 0 of the L2 reconstruction penalty; λ = 0 continues the β-VAE).
        seeds: the seeds grid: each seed's initial weights, data order and noise.
        architecture: "paper" (four k4 convs) or "dlib_conv" (disentanglement_lib's kernels 4, 4, 2, 2).
        likelihood: "bernoulli" (binary cross-entropy on the logits, the paper's) or "l2" (squared error).
        learning_rate: Adam's learning rate (betas 0.9, 0.999; eps 1e-8), both stages.
        beta_steps: steps of the β-VAE stage (default 150,000); model.training_steps sets the λ stage (50,000).
        log_every: steps between the loss history's points (means over the steps since the last).
        checkpoint_every: steps between resume checkpoints.
        stack_width: solutions trained as one stack (default: the engine's choice for the device).
        cache_stages: reuse and store the β stages in the shared stage cache ($DLBENCH_CACHE_DIR).
    """
    return _model("lambda_beta_vae", betas, lambdas, seeds, architecture, likelihood, learning_rate, beta_steps,
                  log_every, checkpoint_every, stack_width, cache_stages)
