"""A linear-Gaussian problem instance (Γ, Σ_V, σ²) and the dataset that samples from it."""
from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbench import ConfigError, DataError, atomic_write, check_binding, check_number, check_seed, require_memory

INSTANCE_KEYS = ("Gamma", "Sigma_V", "noise_var")


@dataclass(frozen=True)
class Instance:
    """Y = Γ V + N with V ~ N(0, Σ_V), N ~ N(0, σ² I): the paper's data model, in float64."""

    gamma: torch.Tensor  # (n, s)
    sigma_v: torch.Tensor  # (s, s), diagonal
    noise_var: float

    @property
    def n(self) -> int:
        return self.gamma.shape[0]

    @property
    def s(self) -> int:
        return self.gamma.shape[1]

    @functools.cached_property
    def sigma_y(self) -> torch.Tensor:
        """Σ_Y = Γ Σ_V Γᵀ + σ² I."""
        identity = torch.eye(self.n, dtype=self.gamma.dtype, device=self.gamma.device)
        return self.gamma @ self.sigma_v @ self.gamma.T + self.noise_var * identity

    @functools.cached_property
    def cov_y_v(self) -> torch.Tensor:
        """Cov(Y, V) = Γ Σ_V."""
        return self.gamma @ self.sigma_v

    @functools.cached_property
    def _low_rank_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ_V Γᵀ and (σ² Σ_V⁻¹ + ΓᵀΓ)⁻¹ Γᵀ, both s×n."""
        core = self.noise_var * torch.linalg.inv(self.sigma_v) + self.gamma.T @ self.gamma
        return self.sigma_v @ self.gamma.T, torch.linalg.solve(core, self.gamma.T)

    def times_sigma_y(self, X: torch.Tensor) -> torch.Tensor:
        """X Σ_Y for X (..., k, n), in O(kns) through Σ_Y = Γ Σ_V Γᵀ + σ² I."""
        return (X @ self.gamma) @ self._low_rank_factors[0] + self.noise_var * X

    def times_precision_y(self, X: torch.Tensor) -> torch.Tensor:
        """X Σ_Y⁻¹ for X (..., k, n), in O(kns) by Woodbury:
        Σ_Y⁻¹ = σ⁻² (I − Γ (σ² Σ_V⁻¹ + ΓᵀΓ)⁻¹ Γᵀ)."""
        return (X - (X @ self.gamma) @ self._low_rank_factors[1]) / self.noise_var

    def entropy_y(self) -> float:
        """h(Y) = ½ log det(2πe Σ_Y), in nats: the NLL of the collapsed solution."""
        logdet = torch.linalg.slogdet(self.sigma_y).logabsdet.item()
        return 0.5 * (self.n * math.log(2 * math.pi * math.e) + logdet)

    def to(self, device: torch.device) -> "Instance":
        return Instance(self.gamma.to(device), self.sigma_v.to(device), self.noise_var)

    @staticmethod
    def draw(n: int, s: int, noise_var: float, seed: int) -> "Instance":
        """Γ with i.i.d. N(0, 1) entries and Σ_V = diag(u), u ~ Uniform(0.1, 1), from `seed`."""
        rng = np.random.default_rng(seed)
        gamma = rng.standard_normal((n, s))
        variances = rng.uniform(0.1, 1.0, size=s)
        return Instance(torch.from_numpy(gamma), torch.from_numpy(np.diag(variances)),
                        float(noise_var))

    def save(self, path: str | Path) -> None:
        arrays = {"Gamma": self.gamma.cpu().numpy(), "Sigma_V": self.sigma_v.cpu().numpy(),
                  "noise_var": np.float64(self.noise_var)}
        atomic_write(Path(path), lambda stream: np.savez(stream, **arrays))

    @staticmethod
    def load(path: str | Path) -> "Instance":
        """Read an instance .npz (keys Gamma n×s, Sigma_V s×s, noise_var scalar); never unpickles."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"instance file {str(path)!r} not found; give an .npz with keys "
                            f"{', '.join(INSTANCE_KEYS)}")
        if not zipfile.is_zipfile(path):  # numpy would guess "pickle" for any other bytes
            raise DataError(f"instance file {str(path)!r} is not an .npz archive; give an .npz "
                            f"with keys {', '.join(INSTANCE_KEYS)}")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                missing = [k for k in INSTANCE_KEYS if k not in arrays.files]
                if missing:
                    raise DataError(f"instance file {str(path)!r} lacks the keys {missing}; "
                                    f"expected {', '.join(INSTANCE_KEYS)}")
                gamma, sigma_v, noise_var = (arrays[k] for k in INSTANCE_KEYS)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"instance file {str(path)!r} is not a readable .npz "
                            f"({str(exc).splitlines()[0]})") from None
        _check_instance_arrays(path, gamma, sigma_v, noise_var)
        return Instance(torch.from_numpy(gamma.astype(np.float64)),
                        torch.from_numpy(sigma_v.astype(np.float64)), float(noise_var))


def _check_instance_arrays(path: Path, gamma, sigma_v, noise_var) -> None:
    where = f"instance file {str(path)!r}"
    numeric = all(np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
                  for a in (gamma, sigma_v, noise_var))
    if not numeric:
        raise DataError(f"{where}: Gamma, Sigma_V and noise_var must be numeric arrays "
                        "(real integers or floats)")
    if gamma.ndim != 2 or 0 in gamma.shape:
        raise DataError(f"{where}: Gamma has shape {gamma.shape}; expected (n, s)")
    n, s = gamma.shape
    if sigma_v.shape != (s, s):
        raise DataError(f"{where}: Sigma_V has shape {sigma_v.shape}; expected ({s}, {s}) "
                        f"to match Gamma {gamma.shape}")
    if noise_var.shape != ():
        raise DataError(f"{where}: noise_var has shape {noise_var.shape}; expected a scalar")
    if not (np.isfinite(gamma).all() and np.isfinite(sigma_v).all() and np.isfinite(noise_var)):
        raise DataError(f"{where}: contains NaN or infinite values")
    if not float(noise_var) > 0:
        raise DataError(f"{where}: noise_var = {float(noise_var)}; expected > 0")
    if n < s:
        raise DataError(f"{where}: n = {n} < s = {s}; expected at least as many observed "
                        "dimensions as factors")
    if not np.allclose(sigma_v, sigma_v.T) or np.linalg.eigvalsh(sigma_v).min() <= 0:
        raise DataError(f"{where}: Sigma_V is not symmetric positive definite")
    if np.count_nonzero(sigma_v - np.diag(np.diagonal(sigma_v))):
        raise DataError(f"{where}: Sigma_V is not diagonal; the factors are independent, "
                        "Sigma_V = diag(u)")


class LinearGaussianDataset:
    """Ground-truth factors V and observations Y = Γ V + N of one linear-Gaussian instance."""

    name = "linear_gaussian"
    source = "synthetic"

    def __init__(self, instance: Instance, device: torch.device, instance_file: str | None,
                 seed: int | None):
        self.instance = instance.to(device)
        self.device = device
        self.factor_names = tuple(f"v{j}" for j in range(instance.s))
        self.observation_shape = (instance.n,)
        self._instance_file = instance_file
        self._seed = seed
        # Σ_V is diagonal, so independent factors are white noise times their standard deviations.
        self._factor_scale = torch.sqrt(torch.diagonal(self.instance.sigma_v))

    def sample(self, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(V (num, s), Y (num, n)) in float64, drawn on the device."""
        instance = self.instance
        white = torch.randn(num, instance.s + instance.n, generator=generator,
                            dtype=torch.float64, device=self.device)
        factors = white[:, :instance.s] * self._factor_scale
        noise = white[:, instance.s:] * math.sqrt(instance.noise_var)
        return factors, factors @ instance.gamma.T + noise

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "n": self.instance.n,
                "s": self.instance.s, "noise_var": self.instance.noise_var,
                "instance_seed": self._seed, "instance_file": self._instance_file,
                "entropy_y": self.instance.entropy_y()}


def linear_gaussian(n: int = 100, s: int = 5, noise_var: float = 0.05, seed: int = 42,
                    instance_file: str | None = None, save_instance: str | None = None,
                    source: str = "auto", device: torch.device = torch.device("cpu")):
    """Linear-Gaussian factors V and observations Y = ΓV + N (the paper's exact model).

    Args:
        n: observed dimension.
        s: number of factors (n >= s).
        noise_var: observation noise variance σ².
        seed: seed of the drawn instance (Γ and Σ_V).
        instance_file: an .npz instance to use instead (keys Gamma, Sigma_V, noise_var).
        save_instance: write the instance used to this .npz file.
    """
    check_binding(source in ("auto", "synthetic"), "dataset.source", source,
                  '"auto" or "synthetic" (the linear-Gaussian data are always synthetic)')
    if instance_file is not None:
        instance = Instance.load(instance_file)
        seed = None
    else:
        check_number("linear_gaussian.n", n, minimum=1, integer=True)
        check_number("linear_gaussian.s", s, minimum=1, integer=True)
        if n < s:
            raise ConfigError(f"linear_gaussian.n = {n} < linear_gaussian.s = {s}; expected n >= s")
        check_number("linear_gaussian.noise_var", noise_var, above=0)
        check_seed("linear_gaussian.seed", seed)
        # Σ_Y and its factorisations are n × n float64 matrices.
        require_memory(3 * 8 * n * n, "cpu", f"linear_gaussian.n = {n:,}", None)
        instance = Instance.draw(n, s, noise_var, seed)
    if save_instance is not None:
        instance.save(save_instance)
    return LinearGaussianDataset(instance, device, instance_file, seed)
