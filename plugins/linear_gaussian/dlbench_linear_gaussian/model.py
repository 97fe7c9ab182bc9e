"""The linear-Gaussian β-VAE / λβ-VAE model: a grid of (solver, β, λ, start) solutions."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from dlbench import (
    ConfigError,
    FitContext,
    StateMismatchError,
    axis_grid,
    check_binding,
    check_number,
    check_state_entry,
    require_memory,
)
from dlbench.training.seeds import derived_seed
from dlbench_linear_gaussian import objective, solvers
from dlbench_linear_gaussian.instance import Instance, LinearGaussianDataset

SOLVERS = ("fixed_point", "adamw")
# The paper's settings for its two sizes; any other n gets the n = 50 (tighter) settings.
PAPER_SETTINGS = {
    100: {"tol": 1e-5, "max_half_steps": 100_000, "adamw_iterations": 50_000,
          "clip_norms": (2.0, 3.0)},
    50: {"tol": 1e-6, "max_half_steps": 50_000, "adamw_iterations": 30_000,
         "clip_norms": (1.0, 2.0)},
}
SOLUTION_TENSORS = ("A", "B", "sigma_z", "sigma_w")
FLAG_TENSORS = ("iterations", "stopped", "no_minimiser")


# Memory per solution, in float64 matrices of each size: the solvers' state and temporaries (AdamW holds the most:
# parameters, gradients, two Adam moments, Σ and its factors).
MATRICES_PER_SOLUTION = {"n_by_n": 6, "n_by_m": 12, "m_by_m": 12}


def _numbers(values, binding: str, accepted: str, valid) -> tuple[float, ...]:
    ok = isinstance(values, (list, tuple)) and len(values) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and valid(v) for v in values)
    check_binding(ok, binding, values, accepted)
    return tuple(float(v) for v in values)


class LinearGaussianVAE:
    """Exact linear-Gaussian β-VAE / λβ-VAE (λ = 0 is the β-VAE), solved by fixed-point
    iteration and/or AdamW for every (β, λ) cell and random start as one batched computation."""

    name = "linear_gaussian_vae"
    replicate_axes = ("start",)
    # The factory parameter that lists each solution axis's values, so a sweep can split a run along it.
    axis_parameters = {"solver": "solvers", "beta": "betas", "lambda": "lambdas"}

    def __init__(self, betas, lambdas, solvers_used, num_starts, num_latent, tol, max_half_steps,
                 adamw_iterations, learning_rate, weight_decay, clip_norms, adamw_record_every,
                 plateau_tol):
        self.betas = betas
        self.lambdas = lambdas
        self.solvers = solvers_used
        self.num_starts = num_starts
        self.num_latent = num_latent
        self._requested = {"tol": tol, "max_half_steps": max_half_steps,
                           "adamw_iterations": adamw_iterations, "clip_norms": clip_norms}
        self.settings: dict[str, Any] = {}
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.adamw_record_every = adamw_record_every
        self.plateau_tol = plateau_tol
        self.instance: Instance | None = None
        self.solution: dict[str, torch.Tensor] = {}

    @property
    def solution_axes(self) -> dict[str, list]:
        return {"solver": list(self.solvers), "beta": list(self.betas),
                "lambda": list(self.lambdas), "start": list(range(self.num_starts))}

    @property
    def solution_shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.solution_axes.values())

    def hyperparameters(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "lambdas": list(self.lambdas),
                "solvers": list(self.solvers), "num_starts": self.num_starts,
                "num_latent": self.num_latent, **self.settings,
                "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "adamw_record_every": self.adamw_record_every, "plateau_tol": self.plateau_tol}

    def _resolve_settings(self, n: int) -> None:
        paper = PAPER_SETTINGS.get(n, PAPER_SETTINGS[50])
        self.settings = {key: paper[key] if value is None else value
                         for key, value in self._requested.items()}
        self.settings["clip_norms"] = list(self.settings["clip_norms"])

    def _grid(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """β and λ of every solution of one solver, flattened in (β, λ, start) order."""
        return axis_grid(self.betas, self.lambdas, repeat=self.num_starts, device=device)

    def fit(self, dataset, context: FitContext) -> None:
        """Solve every (solver, β, λ, start); each finished solver is a checkpoint, and AdamW also saves its
        progress every minute, so an interrupted fit resumes where it stopped."""
        device, seed = context.device, context.seed
        unused = context.training.given()
        if unused:
            binding = next(iter(unused))
            raise ConfigError(f"{binding} = {unused[binding]!r} is not accepted: linear_gaussian_vae is solved in "
                              "closed form, not trained by SGD; set linear_gaussian_vae's own parameters instead")
        if not isinstance(dataset, LinearGaussianDataset):
            raise ConfigError(f"model linear_gaussian_vae needs dataset.name = "
                              f"'linear_gaussian', not {dataset.name!r}")
        self.instance = dataset.instance.to(device)
        n, m = self.instance.n, self.num_latent
        if m < 2:
            raise ConfigError(f"linear_gaussian_vae.num_latent = {m}: SAP compares the two "
                              "most informative latents; expected >= 2")
        self._resolve_settings(n)
        count = len(self.betas) * len(self.lambdas) * self.num_starts
        per_solution = 8 * (MATRICES_PER_SOLUTION["n_by_n"] * n * n + MATRICES_PER_SOLUTION["n_by_m"] * n * m
                            + MATRICES_PER_SOLUTION["m_by_m"] * m * m)
        require_memory(per_solution * count, device, f"linear_gaussian_vae with {count:,} solutions per solver "
                       f"(n = {n}, m = {m})", per_solution, "solutions (cells × num_starts)")
        beta, lam = self._grid(device)
        per_solver = []
        for index, solver in enumerate(self.solvers):
            result = context.load_checkpoint(f"solver_{solver}", map_location=device)
            if result is None:  # an interrupted run resumes after its finished solvers
                result = self._solve(solver, beta, lam, n, m, derived_seed(seed, index), context)
                context.save_checkpoint(f"solver_{solver}", result)
            per_solver.append(result)
        self.solution = _stack_solvers(per_solver, self.solution_shape)

    def _solve(self, solver, beta, lam, n, m, seed, context: FitContext) -> dict[str, torch.Tensor]:
        # Starts are drawn on the CPU so that a seed gives the same starts on every device.
        generator = torch.Generator().manual_seed(seed)
        count = len(beta)
        device, progress = context.device, context.progress
        if solver == "fixed_point":
            B, sigma_w = (t.to(device) for t in solvers.fixed_point_starts(count, m, n, generator))
            result = solvers.fixed_point(self.instance, beta, lam, B, sigma_w,
                                         self.settings["tol"], self.settings["max_half_steps"],
                                         progress)
        else:
            starts = (t.to(device) for t in solvers.adamw_starts(count, m, n, generator))
            # AdamW is the long solver (minutes on a GPU for the paper's grid): it saves its
            # progress every minute, and an interrupted run continues from there.
            partial = f"solver_{solver}.partial"
            checkpointer = solvers.Checkpointer(save=lambda state: context.save_checkpoint(partial, state),
                                                resume=context.load_checkpoint(partial, map_location=device))
            result = solvers.adamw(self.instance, beta, lam, *starts,
                                   iterations=self.settings["adamw_iterations"],
                                   learning_rate=self.learning_rate,
                                   weight_decay=self.weight_decay,
                                   clip_norms=tuple(self.settings["clip_norms"]),
                                   record_every=self.adamw_record_every,
                                   plateau_tol=self.plateau_tol, progress=progress,
                                   checkpointer=checkpointer)
        return {"A": result.A, "B": result.B, "sigma_z": result.sigma_z,
                "sigma_w": result.sigma_w, "iterations": result.iterations,
                "stopped": result.stopped, "no_minimiser": result.no_minimiser,
                "b_norm_trajectory": result.b_norm_trajectory}

    def _flat(self) -> dict[str, torch.Tensor]:
        """Every solution tensor with the solution axes flattened into one batch axis."""
        dims = len(self.solution_shape)
        return {k: v.reshape(-1, *v.shape[dims:]) for k, v in self.solution.items()}

    def exact_metrics(self) -> dict[str, torch.Tensor]:
        flat = self._flat()
        beta, lam = self._grid(flat["A"].device)
        repeats = len(self.solvers)
        scores = objective.exact_metrics(flat["A"], flat["B"], flat["sigma_z"], flat["sigma_w"],
                                         self.instance, beta.repeat(repeats), lam.repeat(repeats))
        scores["iterations"] = flat["iterations"]
        scores["stopped"] = flat["stopped"]
        scores["no_minimiser"] = flat["no_minimiser"]
        scores["converged"] = flat["stopped"] & ~flat["no_minimiser"]
        scores = {k: v.reshape(self.solution_shape) for k, v in scores.items()}
        scores["b_norm_ratio"] = self._last_contraction()
        return scores

    def _last_contraction(self) -> torch.Tensor:
        """‖B_T‖₂ / ‖B_{T−1}‖₂ over the last two fixed-point iterations of each start: 1/β where
        the encoder collapses, 1 at an informative fixed point. NaN for AdamW, whose trajectory
        is sampled every adamw_record_every steps, and for starts with a single iteration."""
        trajectory = self.solution["b_norm_trajectory"].double()
        recorded = (~trajectory.isnan()).sum(-1, keepdim=True)
        last = trajectory.gather(-1, (recorded - 1).clamp(min=0)).squeeze(-1)
        previous = trajectory.gather(-1, (recorded - 2).clamp(min=0)).squeeze(-1)
        ratio = torch.where(recorded.squeeze(-1) >= 2, last / previous, float("nan"))
        is_fixed_point = torch.tensor([s == "fixed_point" for s in self.solvers],
                                      device=ratio.device)
        return torch.where(is_fixed_point.view(-1, 1, 1, 1), ratio, float("nan"))

    def representation(self, observations: torch.Tensor) -> torch.Tensor:
        """The encoder mean X = B Y of every solution: (*solution_shape, num, m)."""
        return observations.to(self.solution["B"].dtype) @ self.solution["B"].mT

    def posterior_parameters(self, observations: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder N(BY, Σ_W): its mean and the log of Σ_W's diagonal, per latent."""
        mean = self.representation(observations)
        log_variance = torch.log(torch.diagonal(self.solution["sigma_w"], dim1=-2, dim2=-1))
        return mean, log_variance.unsqueeze(-2).expand_as(mean)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.solution)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore a fit, refusing any entry whose shape or dtype this configuration would not produce."""
        missing = [name for name in (*SOLUTION_TENSORS, *FLAG_TENSORS, "b_norm_trajectory") if name not in state]
        if missing:
            raise StateMismatchError(f"linear_gaussian_vae state lacks {missing}")
        if tuple(state["B"].shape[:4]) != self.solution_shape:
            raise StateMismatchError(f"linear_gaussian_vae state has solution shape {tuple(state['B'].shape[:4])}; "
                                     f"this config expects {self.solution_shape}")
        m, n = self.num_latent, state["B"].shape[-1]
        shape = self.solution_shape
        expected = {"A": ((*shape, n, m), torch.float64), "B": ((*shape, m, n), torch.float64),
                    "sigma_z": ((*shape, n, n), torch.float64), "sigma_w": ((*shape, m, m), torch.float64),
                    "iterations": (shape, torch.int64), "stopped": (shape, torch.bool),
                    "no_minimiser": (shape, torch.bool), "b_norm_trajectory": ((*shape, None), torch.float32)}
        for name, (entry_shape, dtype) in expected.items():
            check_state_entry(state, name, entry_shape, dtype, owner=self.name)
        extra = sorted(set(state) - set(expected))
        if extra:
            raise StateMismatchError(f"linear_gaussian_vae state has unexpected entries {extra}")
        self.solution = dict(state)


def _stack_solvers(results: Sequence[Mapping[str, torch.Tensor]],
                   solution_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """One tensor per quantity with the solution axes leading; trajectories NaN-padded."""
    longest = max(r["b_norm_trajectory"].shape[1] for r in results)
    stacked = {}
    for key in results[0]:
        parts = []
        for result in results:
            value = result[key]
            if key == "b_norm_trajectory":
                value = torch.nn.functional.pad(value, (0, longest - value.shape[1]),
                                                value=float("nan"))
            parts.append(value)
        joined = torch.stack(parts)
        stacked[key] = joined.reshape(*solution_shape, *joined.shape[2:])
    return stacked


def linear_gaussian_vae(betas: Sequence[float] = (1, 4, 8, 16, 32),
                        lambdas: Sequence[float] = (0,),
                        solvers: Sequence[str] = ("fixed_point",),
                        num_starts: int = 50, num_latent: int = 10,
                        tol: float | None = None, max_half_steps: int | None = None,
                        adamw_iterations: int | None = None, learning_rate: float = 1e-3,
                        weight_decay: float = 0.01, clip_norms: Sequence[float] | None = None,
                        adamw_record_every: int = 10, plateau_tol: float = 1e-5):
    """Exact linear-Gaussian β-VAE / λβ-VAE, batched over (solver, β, λ, start).

    Args:
        betas: the β grid (KL weights > 0).
        lambdas: the λ grid (weights >= 0 of the auxiliary L2 reconstruction penalty; λ = 0 is the β-VAE).
        solvers: "fixed_point" (the stationarity equations) and/or "adamw" (the closed-form loss).
        num_starts: random starts per (β, λ) cell.
        num_latent: latent dimension m.
        tol: fixed-point stopping tolerance per half-step (default: the paper's for n).
        max_half_steps: fixed-point half-step cap (default: the paper's for n).
        adamw_iterations: AdamW steps (default: the paper's for n).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        clip_norms: per-start gradient clip norms for [A, B] and [L_Z, L_W] (default: the paper's for n).
        adamw_record_every: AdamW steps between recorded ‖B‖₂ values.
        plateau_tol: relative best-loss change over the last tenth of AdamW below which it has converged.
    """
    betas = _numbers(betas, "linear_gaussian_vae.betas", "a non-empty list of numbers > 0",
                     lambda v: v > 0)
    lambdas = _numbers(lambdas, "linear_gaussian_vae.lambdas", "a non-empty list of numbers >= 0",
                       lambda v: v >= 0)
    check_binding(isinstance(solvers, (list, tuple)) and len(solvers) > 0
                  and all(s in SOLVERS for s in solvers) and len(set(solvers)) == len(solvers),
                  "linear_gaussian_vae.solvers", solvers,
                  f"a non-empty list of distinct names from {list(SOLVERS)}")
    for binding, value in (("num_starts", num_starts), ("num_latent", num_latent),
                           ("max_half_steps", max_half_steps),
                           ("adamw_iterations", adamw_iterations),
                           ("adamw_record_every", adamw_record_every)):
        if value is not None or binding in ("num_starts", "num_latent", "adamw_record_every"):
            check_number(f"linear_gaussian_vae.{binding}", value, minimum=1, integer=True)
    for binding, value in (("tol", tol), ("learning_rate", learning_rate),
                           ("plateau_tol", plateau_tol)):
        if value is not None:
            check_number(f"linear_gaussian_vae.{binding}", value, above=0)
    check_number("linear_gaussian_vae.weight_decay", weight_decay, minimum=0)
    if clip_norms is not None:
        clip_norms = _numbers(clip_norms, "linear_gaussian_vae.clip_norms",
                              "two numbers > 0: the [A, B] and [L_Z, L_W] clip norms",
                              lambda v: v > 0)
        check_binding(len(clip_norms) == 2, "linear_gaussian_vae.clip_norms", clip_norms,
                      "two numbers > 0: the [A, B] and [L_Z, L_W] clip norms")
    return LinearGaussianVAE(betas, lambdas, tuple(solvers), num_starts, num_latent, tol,
                             max_half_steps, adamw_iterations, learning_rate, weight_decay,
                             clip_norms, adamw_record_every, plateau_tol)
