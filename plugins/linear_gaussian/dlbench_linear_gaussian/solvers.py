"""The paper's two solvers, batched over every random start and (β, λ) cell at once.

Each solution is an independent problem that shares only the data instance, so a batch of P
solutions is one tensor computation; a solution that has stopped leaves the working batch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from dlbench_linear_gaussian.instance import Instance
from dlbench_linear_gaussian.objective import loss_and_gradients, spectral_norm, symmetrize

# Σ = L Lᵀ + JITTER·I keeps the AdamW parametrisation's covariances positive definite.
JITTER = 5e-5
# A run whose tr Σ_W⁻¹ grew by over 1/0.9 in its second half is still collapsing.
COLLAPSE_RATIO = 0.9


@dataclass
class SolverResult:
    A: torch.Tensor
    B: torch.Tensor
    sigma_z: torch.Tensor
    sigma_w: torch.Tensor
    iterations: torch.Tensor  # (P,) half-steps (fixed point) or optimiser steps (AdamW)
    stopped: torch.Tensor  # (P,) bool: the stopping rule was met before the iteration cap
    no_minimiser: torch.Tensor  # (P,) bool: Σ_W was still collapsing towards 0 at the stop
    b_norm_trajectory: torch.Tensor  # (P, T) float32 ‖B‖₂ after each iteration, NaN-padded


@dataclass
class Checkpointer:
    """Hands a long solver's state to `save` every `interval` seconds, and gives back the state
    of an interrupted run (`resume`) so that the solver continues where it stopped."""

    save: Callable[[dict[str, torch.Tensor]], None]
    resume: dict[str, torch.Tensor] | None = None
    interval: float = 60.0
    _last: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        if time.monotonic() - self._last < self.interval:
            return False
        self._last = time.monotonic()
        return True


def random_spd(num: int, dim: int, generator: torch.Generator, dtype=torch.float64,
               device=None) -> torch.Tensor:
    """Random SPD matrices drawn as scikit-learn's make_spd_matrix does: U (1 + diag(u)) Vᵀ from
    the SVD of XᵀX, with X and u uniform on [0, 1)."""
    uniform = torch.rand(num, dim, dim, generator=generator, dtype=dtype, device=device)
    left, _, right = torch.linalg.svd(uniform.mT @ uniform)
    spectrum = 1.0 + torch.rand(num, dim, generator=generator, dtype=dtype, device=device)
    return left @ torch.diag_embed(spectrum) @ right


def fixed_point_starts(num: int, m: int, n: int, generator: torch.Generator, device=None):
    """B₀ with entries Uniform[0, 1) and a random SPD Σ_W₀."""
    B = torch.rand(num, m, n, generator=generator, dtype=torch.float64, device=device)
    return B, random_spd(num, m, generator, device=device)


def _inverse_spd(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of SPD matrices. For a batch of m×m systems, multiplying by the explicit inverse
    is several times faster on CPU than torch's batched cholesky_solve, at no loss that matters
    for these well-conditioned m×m matrices."""
    return torch.cholesky_inverse(torch.linalg.cholesky(matrix))


def fixed_point(instance: Instance, beta: torch.Tensor, lam: torch.Tensor, B: torch.Tensor,
                sigma_w: torch.Tensor, tol: float, max_half_steps: int,
                progress: bool = False) -> SolverResult:
    """Alternate the stationarity equations, decoder first, until a half-step moves both of its
    matrices by at most `tol` (Frobenius) or `max_half_steps` half-steps have run.

    Decoder: A = Σ_Y Bᵀ Σ_X⁻¹, Σ_Z = (Σ_Y⁻¹ + Bᵀ Σ_W⁻¹ B)⁻¹; encoder: B = (βI + AᵀMA)⁻¹ AᵀM,
    Σ_W = (I + AᵀMA/β)⁻¹ with M = Σ_Z⁻¹ + 2λI. By Woodbury, Σ_Z = Σ_Y − A C with C = B Σ_Y, and
    Aᵀ Σ_Z⁻¹ = Aᵀ Σ_Y⁻¹ + (AᵀBᵀ) Σ_W⁻¹ B, and Σ_Y is low rank plus σ² I: no n×n matrix is
    inverted or even formed per solution, except Σ_Z's change for the stopping rule.
    """
    num, m, n = B.shape
    device, dtype = B.device, B.dtype
    identity_m = torch.eye(m, dtype=dtype, device=device)

    final = {"A": torch.zeros(num, n, m, dtype=dtype, device=device),
             "C": torch.zeros(num, m, n, dtype=dtype, device=device),
             "B": B.clone(), "sigma_w": sigma_w.clone()}
    iterations = torch.full((num,), max_half_steps, dtype=torch.int64, device=device)
    stopped = torch.zeros(num, dtype=torch.bool, device=device)
    b_norms = [spectral_norm(B).float()]
    # tr Σ_W⁻¹ grows without bound exactly when Σ_W's smallest eigenvalue collapses to 0.
    precision_w_traces = [torch.diagonal(_inverse_spd(sigma_w), dim1=-2, dim2=-1).sum(-1)]

    active = torch.arange(num, device=device)
    beta_active, lam_active = beta.clone(), lam.clone()
    A = C = None
    bar = tqdm(total=max_half_steps, desc="fixed point", disable=not progress, leave=False)
    for half_step in range(1, max_half_steps + 1):
        if half_step % 2 == 1:
            new_C = instance.times_sigma_y(B)
            sigma_x = new_C @ B.mT + sigma_w
            new_A = (_inverse_spd(sigma_x) @ new_C).mT
            if A is None:  # the first half-step has no previous decoder to compare with
                done = torch.zeros(len(active), dtype=torch.bool, device=device)
            else:
                done = torch.linalg.matrix_norm(new_A - A) <= tol
                if done.any():  # Σ_Z's n×n change is formed only where A already passed
                    sigma_z_change = A[done] @ C[done] - new_A[done] @ new_C[done]
                    done[done.clone()] = torch.linalg.matrix_norm(sigma_z_change) <= tol
            A, C = new_A, new_C
        else:
            a_precision_z = (instance.times_precision_y(A.mT)
                             + (A.mT @ B.mT) @ (_inverse_spd(sigma_w) @ B))
            a_weight = a_precision_z + 2 * lam_active[:, None, None] * A.mT
            gram = symmetrize(a_weight @ A)
            scaled_beta = beta_active[:, None, None]
            new_B = _inverse_spd(scaled_beta * identity_m + gram) @ a_weight
            new_sigma_w = _inverse_spd(identity_m + gram / scaled_beta)
            done = ((torch.linalg.matrix_norm(new_B - B) <= tol)
                    & (torch.linalg.matrix_norm(new_sigma_w - sigma_w) <= tol))
            B, sigma_w = new_B, new_sigma_w
            b_norms.append(_scatter(spectral_norm(B).float(), active, num))
            precision_w_traces.append(
                _scatter(m + torch.diagonal(gram, dim1=-2, dim2=-1).sum(-1) / beta_active,
                         active, num))
        bar.update(1)
        rule_met = done
        if half_step == max_half_steps:
            done = torch.ones_like(done)
        if done.any():
            finished = active[done]
            for name, value in (("A", A), ("C", C), ("B", B), ("sigma_w", sigma_w)):
                final[name][finished] = value[done]
            iterations[finished] = half_step
            stopped[finished] = rule_met[done]
            keep = ~done
            active = active[keep]
            if len(active) == 0:
                break
            A, C, B, sigma_w = (t[keep] for t in (A, C, B, sigma_w))
            beta_active, lam_active = beta_active[keep], lam_active[keep]
    bar.close()
    sigma_z = symmetrize(instance.sigma_y - final["A"] @ final["C"])
    return SolverResult(final["A"], final["B"], sigma_z, final["sigma_w"], iterations, stopped,
                        _still_collapsing(torch.stack(precision_w_traces, dim=1), iterations),
                        torch.stack(b_norms, dim=1))


def _scatter(values: torch.Tensor, active: torch.Tensor, num: int) -> torch.Tensor:
    """Values of the active solutions placed in a length-`num` vector, NaN elsewhere."""
    full = torch.full((num,), float("nan"), dtype=values.dtype, device=values.device)
    full[active] = values
    return full


def _still_collapsing(precision_w_traces: torch.Tensor, half_steps: torch.Tensor) -> torch.Tensor:
    """True where tr Σ_W⁻¹ still grew by over 1/COLLAPSE_RATIO in the second half of the run.
    Where no finite minimiser exists (β = 1, λ > 0), Σ_W's smallest eigenvalue decays like 1/k,
    so the trace doubles whenever the run doubles; at a true fixed point it has settled."""
    last = (half_steps // 2).clamp(min=1)
    middle = (last // 2).clamp(min=1)
    rows = torch.arange(len(half_steps), device=half_steps.device)
    return (precision_w_traces[rows, middle] / precision_w_traces[rows, last]) < COLLAPSE_RATIO


def adamw_starts(num: int, m: int, n: int, generator: torch.Generator, device=None):
    """A, B ~ N(0, 1) and L_Z, L_W the Cholesky factors of random SPD matrices."""
    def normal(*shape):
        return torch.randn(num, *shape, generator=generator, dtype=torch.float64, device=device)

    L_Z = torch.linalg.cholesky(random_spd(num, n, generator, device=device))
    L_W = torch.linalg.cholesky(random_spd(num, m, generator, device=device))
    return normal(n, m), normal(m, n), L_Z, L_W


def _clip_per_solution(gradients: list[torch.Tensor], max_norm: float) -> None:
    """clip_grad_norm_ applied to each solution's own gradients (in place)."""
    total = torch.sqrt(sum(g.pow(2).sum((-2, -1)) for g in gradients))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)[:, None, None]
    for g in gradients:
        g.mul_(scale)


def adamw(instance: Instance, beta: torch.Tensor, lam: torch.Tensor, A: torch.Tensor,
          B: torch.Tensor, L_Z: torch.Tensor, L_W: torch.Tensor, iterations: int,
          learning_rate: float, weight_decay: float, clip_norms: tuple[float, float],
          record_every: int, plateau_tol: float, progress: bool = False,
          checkpointer: Checkpointer | None = None) -> SolverResult:
    """AdamW on the closed-form loss with Σ = L Lᵀ + JITTER·I and L kept lower-triangular;
    gradient norms clipped per solution, [A, B] and [L_Z, L_W] separately; the lowest-loss
    iterate seen is returned. A solution whose best Σ_W sits on the JITTER floor would have gone
    lower: it is flagged as having no minimiser. With a checkpointer, a resumed run continues
    bit for bit where the interrupted one stopped."""
    sigma_y = instance.sigma_y
    n, m = A.shape[-2], A.shape[-1]
    identity_n = torch.eye(n, dtype=A.dtype, device=A.device)
    identity_m = torch.eye(m, dtype=A.dtype, device=A.device)
    params = [t.clone() for t in (A, B, L_Z, L_W)]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=weight_decay)
    jitter_n, jitter_m = JITTER * identity_n, JITTER * identity_m
    num = A.shape[0]
    state = {
        "next_step": torch.tensor(0),
        "best_loss": torch.full((num,), float("inf"), dtype=A.dtype, device=A.device),
        "best_A": A.clone(), "best_B": B.clone(), "best_sigma_z": torch.zeros_like(L_Z),
        "best_sigma_w": torch.zeros_like(L_W),
        "trajectory": torch.zeros(num, 0, device=A.device)}
    if checkpointer is not None and checkpointer.resume is not None:
        state = _restore_adamw(checkpointer.resume, params, optimizer)
    plateau_start = int(0.9 * iterations)
    state.setdefault("best_before_plateau", state["best_loss"])
    trajectory = list(state["trajectory"].unbind(1))
    first_step = int(state["next_step"])
    for step in tqdm(range(first_step, iterations + 1), desc="adamw", disable=not progress,
                     leave=False, initial=first_step, total=iterations + 1):
        A_t, B_t, L_Z_t, L_W_t = params
        sigma_z = torch.baddbmm(jitter_n, L_Z_t, L_Z_t.mT)
        sigma_w = torch.baddbmm(jitter_m, L_W_t, L_W_t.mT)
        terms, grads = loss_and_gradients(A_t, B_t, sigma_z, sigma_w, sigma_y, beta, lam,
                                          with_gradients=step < iterations,
                                          cholesky_factors=(L_Z_t, L_W_t))
        improved = terms["loss"] < state["best_loss"]
        state["best_loss"] = torch.where(improved, terms["loss"], state["best_loss"])
        for name, value in (("A", A_t), ("B", B_t), ("sigma_z", sigma_z), ("sigma_w", sigma_w)):
            state[f"best_{name}"] = torch.where(improved[:, None, None], value,
                                                state[f"best_{name}"])
        if step == plateau_start:
            state["best_before_plateau"] = state["best_loss"].clone()
        if step % record_every == 0:
            trajectory.append(spectral_norm(B_t).float())
        if step == iterations:  # the last iterate is scored, not stepped from
            break
        param_grads = [grads["A"], grads["B"], grads["L_Z"], grads["L_W"]]
        _clip_per_solution(param_grads[:2], clip_norms[0])
        _clip_per_solution(param_grads[2:], clip_norms[1])
        for param, grad in zip(params, param_grads):
            param.grad = grad
        optimizer.step()
        params[2].tril_()
        params[3].tril_()
        if checkpointer is not None and checkpointer.due():
            state["next_step"] = torch.tensor(step + 1)
            state["trajectory"] = torch.stack(trajectory, dim=1)
            checkpointer.save(_adamw_checkpoint(state, params, optimizer))
    best_loss = state["best_loss"]
    floor = torch.linalg.eigvalsh(state["best_sigma_w"])[:, 0] <= 2 * JITTER
    # Plateau: over the last tenth of the run the best loss improved by at most plateau_tol
    # (relative), so more iterations would not change the answer.
    plateaued = state["best_before_plateau"] - best_loss <= plateau_tol * (1 + best_loss.abs())
    return SolverResult(state["best_A"], state["best_B"], state["best_sigma_z"],
                        state["best_sigma_w"],
                        torch.full((num,), iterations, dtype=torch.int64, device=A.device),
                        plateaued, floor, torch.stack(trajectory, dim=1))


ADAM_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


def _adamw_checkpoint(state, params, optimizer) -> dict[str, torch.Tensor]:
    """Everything a resumed AdamW run needs, as one flat dict of tensors."""
    saved = dict(state)
    for index, param in enumerate(params):
        saved[f"param_{index}"] = param.detach()
        for key in ADAM_STATE_KEYS:
            saved[f"adam_{index}_{key}"] = optimizer.state[param][key]
    return saved


def _restore_adamw(saved, params, optimizer) -> dict[str, torch.Tensor]:
    state = dict(saved)
    for index, param in enumerate(params):
        with torch.no_grad():
            param.copy_(state.pop(f"param_{index}"))
        optimizer.state[param] = {key: state.pop(f"adam_{index}_{key}").clone()
                                  for key in ADAM_STATE_KEYS}
        # torch keeps a non-capturable AdamW's step counts on the CPU.
        optimizer.state[param]["step"] = optimizer.state[param]["step"].cpu()
    return state
